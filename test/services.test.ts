import test from 'ava';
import fs from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { connect, type NatsConnection } from '@nats-io/transport-node';
import {
  freshSchema,
  natsUrl,
  postgresUrl,
  probeNats,
  probePostgres,
  spawnNode,
  startNats,
  startPostgres,
  stopSharedServices,
  testServices,
} from './helpers/index.js';
import { pidAlive } from './helpers/util.js';

const fixture = (name: string) => path.join(import.meta.dirname, 'helpers', 'fixtures', name);

async function roundTrip(nc: NatsConnection, subject: string, timeoutMs = 5000): Promise<string> {
  const sub = nc.subscribe(subject, { max: 1 });
  await nc.flush();
  const got = (async () => {
    for await (const m of sub) return m.string();
    throw new Error('subscription closed without a message');
  })();
  nc.publish(subject, `hello ${subject}`);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => (timer = setTimeout(() => reject(new Error(`no message on ${subject}`)), timeoutMs)));
  try {
    return await Promise.race([got, timeout]);
  } finally {
    clearTimeout(timer);
  }
}

test('testServices resolves a reachable Postgres and NATS and says where they came from', async (t) => {
  const s = await testServices();
  t.log(`postgres: ${s.postgres.source} ${s.postgres.url}; nats: ${s.nats.source} ${s.nats.url}`);
  t.is(await postgresUrl(), s.postgres.url);
  t.is(await natsUrl(), s.nats.url);
  t.is(await probePostgres(s.postgres.url), undefined);
  t.is(await probeNats(s.nats.url), undefined);
});

test('freshSchema gives each test its own schema, and drop() removes it', async (t) => {
  const a = await freshSchema('svc');
  const b = await freshSchema('svc');
  t.not(a.schema, b.schema);
  t.regex(a.schema, /^svc_[0-9a-f]{12}$/);
  // Same table name in both; the pools' search_path points at their own schema.
  for (const [s, v] of [
    [a, 1],
    [b, 2],
  ] as const) {
    await s.pool.query('CREATE TABLE jobs (v int)');
    await s.pool.query('INSERT INTO jobs VALUES ($1)', [v]);
  }
  t.deepEqual((await a.pool.query('SELECT v FROM jobs')).rows, [{ v: 1 }]);
  t.deepEqual((await b.pool.query('SELECT v FROM jobs')).rows, [{ v: 2 }]);
  t.deepEqual((await a.pool.query(`SELECT v FROM "${b.schema}".jobs`)).rows, [{ v: 2 }]);

  const client = new pg.Client({ connectionString: a.url });
  await client.connect();
  const exists = async (schema: string) =>
    (await client.query('SELECT 1 FROM information_schema.schemata WHERE schema_name = $1', [schema])).rowCount === 1;
  try {
    t.true(await exists(a.schema));
    await a.drop();
    await a.drop(); // idempotent
    t.false(await exists(a.schema));
    t.true(await exists(b.schema));
    await b.drop();
    t.false(await exists(b.schema));
  } finally {
    await client.end();
  }
});

test('natsUrl is a real NATS: publish/subscribe round trip', async (t) => {
  const nc = await connect({ servers: await natsUrl() });
  const subject = `partita.test.${process.pid}.${Math.random().toString(36).slice(2)}`;
  t.is(await roundTrip(nc, subject), `hello ${subject}`);
  await nc.close();
});

test('startNats: a server of its own that is killed for real and restarts on the same port', async (t) => {
  const nats = await startNats();
  t.teardown(() => nats.destroy());
  t.regex(nats.url, /^nats:\/\/127\.0\.0\.1:\d+$/);
  const nc = await connect({ servers: nats.url, maxReconnectAttempts: -1, reconnectTimeWait: 50 });
  t.teardown(() => nc.close());
  t.is(await roundTrip(nc, 'before'), 'hello before');

  const { port } = nats;
  const pid = nats.pid!;
  await nats.stop('SIGKILL');
  t.false(pidAlive(pid), 'the process is gone');
  t.not(await probeNats(nats.url, 500), undefined, 'nothing answers while stopped');

  await nats.restart();
  t.is(nats.port, port);
  t.not(nats.pid, pid);
  t.is(await probeNats(nats.url), undefined);
  // The client reconnects by itself, and a new connection works too.
  const deadline = Date.now() + 10_000;
  let ok = false;
  while (!ok && Date.now() < deadline)
    ok = await roundTrip(nc, 'after', 500).then(
      () => true,
      () => false,
    );
  t.true(ok, 'the old connection reconnected');
  const nc2 = await connect({ servers: nats.url });
  t.is(await roundTrip(nc2, 'fresh'), 'hello fresh');
  await nc2.close();
});

test('startPostgres: stop/start and a crash (kill) keep committed data, on the same port', async (t) => {
  const db = await startPostgres();
  t.teardown(() => db.destroy());
  const query = async (sql: string) => {
    const c = new pg.Client({ connectionString: db.url });
    await c.connect();
    try {
      return (await c.query(sql)).rows;
    } finally {
      await c.end();
    }
  };
  await query('CREATE TABLE kept (v text)');
  await query(`INSERT INTO kept VALUES ('one')`);
  const { port, url } = db;

  await db.stop();
  t.is(db.pid, undefined);
  t.not(await probePostgres(url, 1000), undefined, 'nothing answers while stopped');
  await db.start();
  t.is(db.port, port);
  t.deepEqual(await query('SELECT v FROM kept'), [{ v: 'one' }]);

  await query(`INSERT INTO kept VALUES ('two')`);
  await db.kill();
  await db.restart();
  t.deepEqual(await query('SELECT v FROM kept ORDER BY v'), [{ v: 'one' }, { v: 'two' }]);
});

test('spawnNode runs a .ts script, captures its output and reports how it exited', async (t) => {
  const child = spawnNode(fixture('sleeper.ts'), { args: ['hi'], env: { PARTITA_FIXTURE: 'yes' } });
  const m = (await child.waitForOutput(/hi (\d+)/)) as RegExpMatchArray; // printed last
  t.is(Number(m[1]), child.pid);
  await child.waitForOutput('env PARTITA_FIXTURE=yes');
  t.true(child.kill());
  t.deepEqual(await child.exited, { code: 3, signal: null });
  t.false(child.kill(), 'already exited');

  const killed = spawnNode(fixture('sleeper.ts'));
  await killed.waitForOutput('ready');
  killed.kill('SIGKILL');
  t.deepEqual(await killed.exited, { code: null, signal: 'SIGKILL' });
  await t.throwsAsync(killed.waitForOutput('never printed', { timeoutMs: 100 }), { message: /exited before printing/ });
});

test('fallback: parallel processes share one embedded Postgres and one nats-server, despite stale state', async (t) => {
  // A services dir of its own, so this does not touch the servers other tests use.
  const dir = await fs.mkdtemp(path.join(os.tmpdir(), 'partita-svc-test-'));
  t.teardown(async () => {
    await stopSharedServices(dir);
    await fs.rm(dir, { recursive: true, force: true });
  });
  // Leftovers of a crashed run: a lock held by a dead pid and a state file pointing at dead ports.
  let deadPid = 999_999;
  while (pidAlive(deadPid)) deadPid++;
  await fs.writeFile(path.join(dir, 'lock'), `${deadPid}:stale`);
  await fs.writeFile(
    path.join(dir, 'state.json'),
    JSON.stringify({
      postgres: { url: 'postgres://postgres@127.0.0.1:1/postgres', port: 1, pid: deadPid, dataDir: 'x' },
      nats: { url: 'nats://127.0.0.1:1', port: 1, pid: deadPid },
    }),
  );

  const env = { PARTITA_TEST_SERVICES_DIR: dir, PARTITA_TEST_POSTGRES_URL: 'embedded', PARTITA_TEST_NATS_URL: 'embedded' };
  const run = () => spawnNode(fixture('resolve-services.ts'), { env });
  const children = [run(), run(), run()];
  const results = await Promise.all(
    children.map(async (c) => {
      const [, json] = (await c.waitForOutput(/RESULT (.*)\n/, { timeoutMs: 90_000 })) as RegExpMatchArray;
      return {
        out: c.output(),
        r: JSON.parse(json!) as {
          postgres: { url: string; source: string };
          nats: { url: string; source: string };
          pgErr?: string;
          natsErr?: string;
        },
      };
    }),
  );
  for (const { out, r } of results) {
    t.is(r.postgres.source, 'embedded', out);
    t.is(r.nats.source, 'embedded', out);
    t.is(r.pgErr, undefined);
    t.is(r.natsErr, undefined);
    t.is(r.postgres.url, results[0]!.r.postgres.url);
    t.is(r.nats.url, results[0]!.r.nats.url);
  }
  const all = results.map((x) => x.out).join('');
  t.is(all.match(/postgres: started embedded PostgreSQL/g)?.length, 1, all);
  t.is(all.match(/nats: started nats-server/g)?.length, 1, all);

  // A later process reuses them without starting anything.
  const again = run();
  await again.waitForOutput(/RESULT/, { timeoutMs: 30_000 });
  t.notRegex(again.output(), /started/);
  t.true(again.output().includes(results[0]!.r.postgres.url));
});
