/**
 * Node plugins on a real node (Postgres, actors, HTTP): their migrations, jobs, children and routes,
 * and a start-up that fails half-way leaving nothing behind.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { ConfigError, PluginError, RouteConflictError } from '@partita/core';
import type { Behavior } from '@partita/actors';
import {
  defineJob,
  definePlugin,
  startNode,
  type NodeOptions,
  type NodePlugin,
  type PartitaNode,
  type PluginContext,
} from '@partita/runtime';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { capturingLogger, freshSchema, tempDataDir, until, type TestSchema } from '../../../test/helpers/index.js';

const FIXTURES = new URL('./fixtures/plugins/', import.meta.url);

/** Options for a one-partition node whose pool connections carry a name of their own (counted in pg_stat_activity). */
function nodeOptions(db: TestSchema, app: string, extra: Partial<NodeOptions> = {}): NodeOptions {
  return {
    postgres: { connectionString: db.url, max: 4, application_name: app },
    schema: db.schema,
    nats: false,
    persister: 'postgres',
    dataDir: tempDataDir('plugins'),
    partitions: { p: { queues: { default: { concurrency: 2 } } } },
    ...extra,
  };
}

async function connectionsOf(db: TestSchema, app: string): Promise<number> {
  const { rows } = await db.pool.query<{ n: number }>('SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = $1', [app]);
  return rows[0]!.n;
}

const appName = () => `partita-test-${randomBytes(4).toString('hex')}`;

/** An actor that records its start and its end in `events`. */
function recorder(events: string[], label: string, handle: Behavior['handle'] = () => undefined): Behavior {
  return {
    init: () => void events.push(`up ${label}`),
    handle,
    terminate: () => void events.push(`down ${label}`),
  };
}

/**
 * A plugin of every kind of contribution: a table (its migrations), a job type that writes a note
 * through a partition child, a node child counting the notes, and routes to read and add notes.
 */
function notesPlugin(events: string[] = []): NodePlugin<{ author?: string } | undefined> {
  let ctx: PluginContext<{ author?: string } | undefined> | undefined;
  return definePlugin<{ author?: string } | undefined>({
    name: 'notes',
    migrations: new URL('notes/', FIXTURES),
    configSchema: (section) => {
      if (section === undefined) return [];
      if (typeof section !== 'object' || section === null) return [{ message: 'expected a mapping such as { author: "me" }' }];
      const author = (section as { author?: unknown }).author;
      return author === undefined || typeof author === 'string'
        ? []
        : [{ path: 'author', message: `expected a string, got ${typeof author}` }];
    },
    jobs: [
      defineJob<{ body: string }, string>({
        type: 'notes.write',
        async perform(payload, job) {
          const writer = ctx!.system.whereis(`notes:${job.partition}`);
          const id = (await writer!.call({ body: payload.body })) as string;
          ctx!.system.whereis('notes-counter')!.cast('written');
          return id;
        },
      }),
    ],
    nodeChildren: (c) => {
      ctx = c;
      let written = 0;
      return [
        {
          id: 'notes-counter',
          name: 'notes-counter',
          start: () => recorder(events, 'notes node', (msg) => (msg === 'written' ? void written++ : written)),
        },
      ];
    },
    partitionChildren: (c, partition) => [
      {
        id: 'notes-writer',
        name: `notes:${partition}`,
        start: () =>
          recorder(events, `notes partition ${partition}`, async (msg: { body: string }) => {
            const author = c.pluginConfig?.author ?? 'anonymous';
            const { rows } = await c.pool.query<{ id: string }>(
              `INSERT INTO "${c.schema}".notes (partition, body, author) VALUES ($1, $2, $3) RETURNING id`,
              [partition, msg.body, author],
            );
            return rows[0]!.id;
          }),
      },
    ],
    routes: (c) => [
      {
        method: 'GET',
        path: '/notes',
        handler: async (_req, res) => {
          const { rows } = await c.pool.query(`SELECT partition, body, author FROM "${c.schema}".notes ORDER BY id`);
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify(rows));
        },
      },
      {
        method: 'POST',
        path: '/notes/*',
        handler: async (_req, res, request) => {
          const { id } = await c.client.enqueue(request.rest, 'notes.write', { body: request.query.get('body') ?? '' });
          res.statusCode = 202;
          res.end(JSON.stringify({ id }));
        },
      },
    ],
    start: (c) => {
      events.push(`start notes (${c.partitions.join(',')})`);
      return () => void events.push('stop notes');
    },
  });
}

test('a plugin brings migrations, jobs, a node child, a partition child and routes to a real node', async (t) => {
  const db = await freshSchema('plugins');
  const nodes: PartitaNode[] = [];
  t.teardown(async () => {
    for (const n of nodes) await n.stop({ graceMs: 200 }).catch(() => undefined);
    await db.drop();
  });
  const events: string[] = [];
  const node = await startNode(
    nodeOptions(db, appName(), { http: { port: 0 }, plugins: [notesPlugin(events)], pluginConfig: { notes: { author: 'ada' } } }),
  );
  nodes.push(node);
  t.truthy(node.http);

  const { rows: recorded } = await db.pool.query(
    `SELECT plugin, version, name FROM "${db.schema}".migrations WHERE plugin <> '' ORDER BY version`,
  );
  t.deepEqual(recorded, [
    { plugin: 'notes', version: 1, name: 'notes' },
    { plugin: 'notes', version: 2, name: 'notes_author' },
  ]);
  const core = await node.client.admin.migrations();
  t.deepEqual(
    core.map((m) => m.version),
    [...core.keys()].map((i) => i + 1),
    'the core list stays the core versions, without the plugin rows',
  );
  t.true(core.some((m) => m.name === 'plugin_migrations'));

  const posted = await fetch(`${node.http!.url}/notes/p?body=hello`, { method: 'POST' });
  t.is(posted.status, 202);
  const { id } = (await posted.json()) as { id: string };
  t.is(typeof (await node.client.result(id, { timeoutMs: 10_000 })), 'string', 'the plugin job ran through the partition child');
  const notes = await (await fetch(`${node.http!.url}/notes`)).json();
  t.deepEqual(
    notes,
    [{ partition: 'p', body: 'hello', author: 'ada' }],
    'the route reads what the job wrote, with the plugin config applied',
  );
  t.is(await node.system.whereis('notes-counter')!.call('count'), 1, 'the node child heard of the note');
  const deleted = await fetch(`${node.http!.url}/notes`, { method: 'DELETE' });
  t.is(deleted.status, 405);
  t.is(deleted.headers.get('allow'), 'GET, HEAD');
  const head = await fetch(`${node.http!.url}/notes`, { method: 'HEAD' });
  t.is(head.status, 200, 'a GET route answers HEAD');
  t.is(await head.text(), '');
  t.is((await fetch(`${node.http!.url}/notes/p`)).status, 405, 'the prefix route takes POST only');
  t.is((await fetch(`${node.http!.url}/health`)).status, 200, 'the built-in routes still answer');
  t.regex(await (await fetch(`${node.http!.url}/`)).text(), /\/notes/, 'the root page lists the mounted route');
  t.deepEqual(events, ['up notes partition p', 'up notes node', 'start notes (p)']);

  // A second node with the same plugin finds its migrations applied and starts as well.
  const second = await startNode(nodeOptions(db, appName(), { plugins: [notesPlugin()] }));
  nodes.push(second);
  const { rows: again } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".migrations WHERE plugin = 'notes'`);
  t.is(again[0].n, 2);
});

test('stop runs in reverse start order: plugins stop last-first, then the children they added', async (t) => {
  const db = await freshSchema('plugins');
  t.teardown(() => db.drop());
  const events: string[] = [];
  const plugin = (name: string) =>
    definePlugin({
      name,
      nodeChildren: () => [{ id: `${name}-node`, start: () => recorder(events, `${name} node`) }],
      partitionChildren: (_ctx, partition) => [{ id: `${name}-part`, start: () => recorder(events, `${name} partition ${partition}`) }],
      start: async () => {
        events.push(`start ${name}`);
        return async () => void events.push(`stop ${name}`);
      },
    });
  const node = await startNode(nodeOptions(db, appName(), { plugins: [plugin('a'), plugin('b')] }));
  // A failed assertion throws before the stop below: a node left running would keep ava's worker alive.
  t.teardown(() => node.stop({ graceMs: 100 }).catch(() => undefined));
  const started = [...events];
  t.deepEqual(started, ['up a partition p', 'up b partition p', 'up a node', 'up b node', 'start a', 'start b']);
  events.length = 0;
  await node.stop({ graceMs: 200 });
  t.deepEqual(events, ['stop b', 'stop a', 'down b node', 'down a node', 'down b partition p', 'down a partition p']);
});

test('a plugin whose start fails unwinds everything already started: no connection, actor or plugin left', async (t) => {
  const db = await freshSchema('plugins');
  t.teardown(() => db.drop());
  const app = appName();
  const events: string[] = [];
  const fine = definePlugin({
    name: 'fine',
    nodeChildren: () => [{ id: 'fine-node', start: () => recorder(events, 'fine node') }],
    start: () => {
      events.push('start fine');
      return () => void events.push('stop fine');
    },
  });
  const failing = definePlugin({
    name: 'failing',
    start: async () => {
      // The node is fully up at this point: its pool holds connections that must all be closed.
      t.true((await connectionsOf(db, app)) > 0);
      throw new Error('cannot reach the widget service');
    },
  });
  const err = await t.throwsAsync(startNode(nodeOptions(db, app, { http: { port: 0 }, plugins: [fine, failing] })), {
    instanceOf: PluginError,
  });
  t.regex(err!.message, /plugin "failing": start failed: cannot reach the widget service/);
  t.deepEqual(events, ['up fine node', 'start fine', 'stop fine', 'down fine node']);
  await until('the node closed its pool connections', async () => (await connectionsOf(db, app)) === 0, 20_000);
  t.pass();
});

test('a bad plugin migration fails start-up with the plugin, the file and the Postgres message; nothing of it stays', async (t) => {
  const db = await freshSchema('plugins');
  t.teardown(() => db.drop());
  const app = appName();
  const broken = definePlugin({ name: 'broken', migrations: new URL('broken/', FIXTURES) });
  const err = await t.throwsAsync(startNode(nodeOptions(db, app, { plugins: [broken] })), { instanceOf: PluginError });
  t.is((err as PluginError).plugin, 'broken');
  t.regex(err!.message, /plugin "broken": migration .*0002_half\.sql failed/);
  t.regex(err!.message, /relation ".*no_such_table" does not exist/);
  const { rows } = await db.pool.query<{ name: string }>(
    `SELECT table_name AS name FROM information_schema.tables WHERE table_schema = $1 AND table_name LIKE 'broken_%' ORDER BY 1`,
    [db.schema],
  );
  t.deepEqual(
    rows.map((r) => r.name),
    ['broken_fine'],
    'the good migration stays, the failed one left nothing',
  );
  const { rows: recorded } = await db.pool.query(`SELECT version FROM "${db.schema}".migrations WHERE plugin = 'broken'`);
  t.deepEqual(recorded, [{ version: 1 }]);
  await until('the node closed its pool connections', async () => (await connectionsOf(db, app)) === 0, 20_000);
});

test('clashes are named errors: a job type defined twice, a route taken twice, a plugin name twice', async (t) => {
  const db = await freshSchema('plugins');
  t.teardown(() => db.drop());
  const app = appName();
  const job = defineJob({ type: 'shared', perform: () => null });

  const twice = await t.throwsAsync(
    startNode(
      nodeOptions(db, app, {
        jobs: [job],
        plugins: [definePlugin({ name: 'dup', jobs: [defineJob({ type: 'shared', perform: () => 1 })] })],
      }),
    ),
    {
      instanceOf: PluginError,
    },
  );
  t.regex(twice!.message, /plugin "dup": job type "shared" is already defined by the node's jobs/);

  const route = (name: string, path: string) =>
    definePlugin({ name, routes: () => [{ method: 'GET', path, handler: (_req, res) => void res.end('x') }] });
  const conflict = await t.throwsAsync(
    startNode(nodeOptions(db, app, { http: { port: 0 }, plugins: [route('one', '/x'), route('two', '/x/')] })),
    { instanceOf: RouteConflictError },
  );
  t.regex(conflict!.message, /GET \/x\/? is mounted by both plugin "one" and plugin "two"/);
  const health = await t.throwsAsync(startNode(nodeOptions(db, app, { http: { port: 0 }, plugins: [route('greedy', '/health')] })), {
    instanceOf: RouteConflictError,
  });
  t.regex(health!.message, /mounted by both the node and plugin "greedy"/);
  // The route clash is found when HTTP starts, last: everything before it was released.
  await until('the node closed its pool connections', async () => (await connectionsOf(db, app)) === 0, 20_000);

  await t.throwsAsync(startNode(nodeOptions(db, app, { plugins: [definePlugin({ name: 'same' }), definePlugin({ name: 'same' })] })), {
    instanceOf: PluginError,
    message: /"same": given twice/,
  });
  await t.throwsAsync(startNode(nodeOptions(db, app, { plugins: [definePlugin({ name: 'http' })] })), {
    instanceOf: PluginError,
    message: /built-in/,
  });
  t.throws(() => definePlugin({ name: 'no spaces' }), { instanceOf: PluginError });
});

test("a plugin's configSchema checks its section; problems name the key", async (t) => {
  const db = await freshSchema('plugins');
  t.teardown(() => db.drop());
  const err = await t.throwsAsync(
    startNode(nodeOptions(db, appName(), { plugins: [notesPlugin()], pluginConfig: { notes: { author: 42 } } })),
    { instanceOf: ConfigError },
  );
  t.regex(err!.message, /plugins\.notes\.author/);
  t.regex(err!.message, /expected a string, got number/);
});

test("the config file's plugins: section reaches the plugin; startNode's pluginConfig replaces a section", async (t) => {
  const db = await freshSchema('plugins');
  t.teardown(() => db.drop());
  const dir = mkdtempSync(join(tmpdir(), 'partita-pcfg-'));
  const file = join(dir, 'partita.yaml');
  writeFileSync(
    file,
    'partitions:\n  p:\n    queues:\n      default: { concurrency: 1 }\nplugins:\n  probe: { colour: blue }\n  elsewhere: { on: true }\n',
  );
  const seen: unknown[] = [];
  const probe = definePlugin({ name: 'probe', start: (ctx) => void seen.push(ctx.pluginConfig) });
  const { partitions: _partitions, ...options } = nodeOptions(db, appName(), { config: file, plugins: [probe] });
  const { logger, lines } = capturingLogger('warn');
  const node = await startNode({ ...options, logger });
  await node.stop({ graceMs: 100 });
  t.deepEqual(seen, [{ colour: 'blue' }]);
  t.true(
    lines.some((l) => l.msg.includes('plugins this node does not run') && JSON.stringify(l.sections) === '["plugins.elsewhere"]'),
    'a section no plugin of this node claims is a warning, not an error (a config file may be shared)',
  );

  const again = await startNode({ ...options, pluginConfig: { probe: { colour: 'red' } } });
  await again.stop({ graceMs: 100 });
  t.deepEqual(seen, [{ colour: 'blue' }, { colour: 'red' }]);
});
