/**
 * Fault tests with real processes: nodes run as `partita start` children, killed for real; the
 * Postgres one runs its own PostgreSQL and stops it mid-run. Needs the build (npm test does it).
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import pg from 'pg';
import { connect, type Client } from '@partita/client';
import { freePort, freshSchema, natsUrl, startPostgres, type SpawnedNode } from './helpers/index.js';
import { FIXTURES, runCli, sleep, startCliNode, tempDir, until, writeConfig } from './fixtures/cli.js';

const JOBS_MODULE = path.join(FIXTURES, 'fault-jobs.mjs');
const count = async (db: pg.Pool | pg.Client, sql: string, values: unknown[] = []) => Number((await db.query(sql, values)).rows[0].n);

// ── (a) kill -9 one of two nodes mid-run ─────────────────────────────────────────────────────

test.serial('kill -9 of one of two nodes mid-run: every job completed exactly once, every id recorded, rescued within 15 s', async (t) => {
  const JOBS = 5000;
  const LEASE_MS = 3000;
  const s = await freshSchema('faults');
  const tmp = await tempDir('faults-kill');
  const nats = await natsUrl();
  const cluster = s.schema; // a cluster of its own on the shared NATS
  let client: Client | undefined;
  const nodes: { kill(sig?: NodeJS.Signals): boolean }[] = [];
  t.teardown(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    await client?.close();
    await s.drop();
    await tmp.cleanup();
  });
  await s.pool.query(
    `CREATE TABLE "${s.schema}".recorded (id uuid NOT NULL, attempt int NOT NULL, pid int NOT NULL, at timestamptz NOT NULL DEFAULT clock_timestamp())`,
  );
  const config = await writeConfig(tmp.dir, {
    cluster,
    postgres: { url: s.url, schema: s.schema, poolSize: 6 },
    nats: { servers: [nats] },
    persister: 'postgres',
    dataDir: path.join(tmp.dir, 'data'),
    jobs: JOBS_MODULE,
    engine: { leaseMs: LEASE_MS, heartbeatMs: 500, pollMs: 200, prefetch: 16, shutdownGraceMs: 5000 },
    partitions: { faults: { queues: { default: { concurrency: 16 } } } },
  });
  const env = { PARTITA_FAULT_PG_URL: s.url, PARTITA_FAULT_SCHEMA: s.schema };
  // One after the other: see the next test for two nodes starting at the same moment.
  const a = await startCliNode(config, { nodeId: 'node-a', env, onSpawn: (n) => nodes.push(n) });
  const b = await startCliNode(config, { nodeId: 'node-b', env, onSpawn: (n) => nodes.push(n) });

  client = await connect({ postgres: s.url, schema: s.schema, nats: [nats], cluster });
  const { ids } = await client.enqueueMany(
    'faults',
    Array.from({ length: JOBS }, () => ({ type: 'record', payload: { ms: 25 } })),
  );
  t.is(ids.length, JOBS);

  // Mid-run: half done, both nodes busy.
  await until(
    'half of the jobs done',
    async () => (await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs_history`)) >= JOBS / 2,
    60_000,
  );
  const heldBefore = await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs WHERE locked_by = 'node-a'`);
  t.true(a.kill('SIGKILL'), 'node-a was running');
  const killedAt = Date.now();
  const exit = await a.exited;
  t.is(exit.signal, 'SIGKILL');
  const held = (
    await s.pool.query<{ id: string }>(`SELECT id FROM "${s.schema}".jobs WHERE locked_by = 'node-a' AND state = 'running'`)
  ).rows.map((r) => r.id);
  const doneAtKill = await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs_history`);
  t.log(`killed node-a with ${held.length} jobs in hand (${heldBefore} just before), ${doneAtKill}/${JOBS} done`);
  t.true(held.length > 0, 'node-a held jobs when it was killed (otherwise the test proves nothing)');

  // Rescue: node-a's jobs leave its hands (lease expiry + rescue) and complete on node-b.
  const requeuedMs = await until(
    "node-a's jobs requeued",
    async () =>
      (await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs WHERE locked_by = 'node-a'`)) === 0 && Date.now() - killedAt,
    30_000,
    50,
  );
  const rescuedMs = await until(
    "node-a's jobs completed elsewhere",
    async () =>
      (await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs_history WHERE id = ANY($1::uuid[]) AND state = 'completed'`, [
        held,
      ])) === held.length && Date.now() - killedAt,
    30_000,
    50,
  );
  t.log(
    `rescue: requeued ${requeuedMs} ms after the kill, all ${held.length} completed on node-b ${rescuedMs} ms after the kill (leaseMs ${LEASE_MS})`,
  );
  t.true(requeuedMs <= 15_000, `requeued within 15 s of the kill (took ${requeuedMs} ms)`);
  t.true(rescuedMs <= 15_000, `rescued and completed within 15 s of the kill (took ${rescuedMs} ms)`);

  await until('every job finished', async () => (await count(s.pool, `SELECT count(*) AS n FROM "${s.schema}".jobs`)) === 0, 90_000, 100);
  const history = (
    await s.pool.query<{ total: string; distinct_ids: string; completed: string; nodes: string[] }>(
      `SELECT count(*) AS total, count(DISTINCT id) AS distinct_ids, count(*) FILTER (WHERE state = 'completed') AS completed,
              array_agg(DISTINCT node) AS nodes
         FROM "${s.schema}".jobs_history`,
    )
  ).rows[0]!;
  t.is(Number(history.total), JOBS, 'one history row per job: completed exactly once');
  t.is(Number(history.distinct_ids), JOBS);
  t.is(Number(history.completed), JOBS, 'every job completed');
  t.deepEqual([...history.nodes].sort(), ['node-a', 'node-b'], 'both nodes completed jobs');
  const missing = await count(
    s.pool,
    `SELECT count(*) AS n FROM unnest($1::uuid[]) AS e(id) WHERE NOT EXISTS (SELECT 1 FROM "${s.schema}".recorded r WHERE r.id = e.id)`,
    [ids],
  );
  t.is(missing, 0, 'every id recorded at least once');
  const twice = await count(s.pool, `SELECT count(*) AS n FROM (SELECT id FROM "${s.schema}".recorded GROUP BY id HAVING count(*) > 1) d`);
  t.log(`${twice} ids recorded more than once (at-least-once delivery: runs cut short by the kill)`);

  // The survivor stops gracefully on SIGTERM.
  b.kill('SIGTERM');
  const bExit = await b.exited;
  t.is(bExit.code, 0, `node-b exits 0 after a graceful stop; output:\n${b.output().slice(-3000)}`);
});

test.serial('two nodes starting at the same moment on a fresh schema both come up', async (t) => {
  const s = await freshSchema('faults');
  const tmp = await tempDir('faults-twin');
  const nodes: SpawnedNode[] = [];
  t.teardown(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    await s.drop();
    await tmp.cleanup();
  });
  const config = await writeConfig(tmp.dir, {
    cluster: s.schema,
    postgres: { url: s.url, schema: s.schema, poolSize: 4 },
    nats: { servers: [await natsUrl()] },
    persister: 'postgres',
    dataDir: path.join(tmp.dir, 'data'),
    jobs: JOBS_MODULE,
    partitions: { faults: { queues: { default: { concurrency: 2 } } } },
  });
  const track = (n: SpawnedNode) => nodes.push(n);
  const started = await Promise.allSettled([
    startCliNode(config, { nodeId: 'twin-a', onSpawn: track }),
    startCliNode(config, { nodeId: 'twin-b', onSpawn: track }),
  ]);
  for (const r of started) if (r.status === 'rejected') t.fail(String((r.reason as Error).message).slice(0, 2000));
  for (const n of nodes) n.kill('SIGTERM');
  for (const n of nodes) t.is((await n.exited).code, 0, `graceful stop; output:\n${n.output().slice(-2000)}`);
});

// ── (b) Postgres restart mid-run ─────────────────────────────────────────────────────────────

for (const how of ['stop', 'kill'] as const)
  test.serial(
    `Postgres ${how === 'stop' ? 'restart' : 'crash (SIGKILL) and restart'} mid-run: the node survives, resumes within 10 s, loses nothing`,
    async (t) => {
      const JOBS = 4000;
      const DOWN_MS = 6000;
      const server = await startPostgres();
      const tmp = await tempDir('faults-pg');
      const httpPort = await freePort();
      let client: Client | undefined;
      let node: SpawnedNode | undefined;
      const admin = () => new pg.Pool({ connectionString: server.url, max: 2 }).on('error', () => undefined);
      let db = admin();
      t.teardown(async () => {
        node?.kill('SIGKILL');
        await client?.close().catch(() => undefined);
        await db.end().catch(() => undefined);
        await server.destroy();
        await tmp.cleanup();
      });
      const config = await writeConfig(tmp.dir, {
        cluster: `pg${how}`,
        postgres: { url: server.url, poolSize: 10 },
        persister: 'postgres',
        dataDir: path.join(tmp.dir, 'data'),
        jobs: JOBS_MODULE,
        http: { port: httpPort, host: '127.0.0.1' },
        engine: { leaseMs: 10_000, heartbeatMs: 1000, pollMs: 200, shutdownGraceMs: 5000 },
        partitions: { work: { queues: { default: { concurrency: 20 } } } },
      });
      node = await startCliNode(config, { nodeId: 'survivor', onSpawn: (n) => (node = n) });
      const health = async () => {
        try {
          const res = await fetch(`http://127.0.0.1:${httpPort}/health`);
          return { status: res.status, body: (await res.json()) as { checks: Record<string, unknown> } };
        } catch (err) {
          return { status: 0, body: { checks: { fetch: String(err) } } };
        }
      };
      t.is((await health()).status, 200, 'healthy before the restart');

      client = await connect({ postgres: server.url });
      const { ids } = await client.enqueueMany(
        'work',
        Array.from({ length: JOBS }, () => ({ type: 'sleep', payload: { ms: 25 } })),
      );
      t.is(ids.length, JOBS);
      await until(
        'a fifth of the jobs done',
        async () => (await count(db, `SELECT count(*) AS n FROM partita.jobs_history`)) >= JOBS / 5,
        60_000,
      );

      await db.end();
      await (how === 'stop' ? server.stop() : server.kill());
      const stoppedAt = Date.now();
      const during = await until(
        '/health to report Postgres down',
        async () => {
          const h = await health();
          return h.status === 503 && h;
        },
        30_000,
        100,
      );
      t.log(`while Postgres is down /health says ${during.status} ${JSON.stringify(during.body.checks)}`);
      await sleep(Math.max(0, DOWN_MS - (Date.now() - stoppedAt)));
      t.is(
        await Promise.race([node.exited.then(() => 'exited'), sleep(10).then(() => 'alive')]),
        'alive',
        `the node survived the outage; output:\n${node.output().slice(-3000)}`,
      );
      await server.start();
      const backAt = new Date();
      db = admin();

      const resumedMs = await until(
        'a job claimed after Postgres came back to complete',
        async () =>
          (await count(db, `SELECT count(*) AS n FROM partita.jobs_history WHERE started_at >= $1`, [backAt]).catch(() => 0)) > 0 &&
          Date.now() - backAt.getTime(),
        30_000,
        50,
      );
      t.log(`Postgres down for ${backAt.getTime() - stoppedAt} ms; the node resumed ${resumedMs} ms after it came back`);
      t.true(resumedMs <= 10_000, `resumed within 10 s of Postgres returning (took ${resumedMs} ms)`);

      await until('every job finished', async () => (await count(db, `SELECT count(*) AS n FROM partita.jobs`)) === 0, 90_000, 100);
      const history = (
        await db.query(
          `SELECT count(*) AS total, count(DISTINCT id) AS ids, count(*) FILTER (WHERE state = 'completed') AS completed FROM partita.jobs_history`,
        )
      ).rows[0];
      t.is(Number(history.total), JOBS, 'one history row per job');
      t.is(Number(history.ids), JOBS, '0 jobs lost');
      t.is(Number(history.completed), JOBS, 'all completed');
      t.is(await until('/health to be ready again', async () => (await health()).status === 200, 30_000, 100), true);
      t.is(await Promise.race([node.exited.then(() => 'exited'), sleep(10).then(() => 'alive')]), 'alive', 'no exit, no crash loop');
      const fatal = /"level":60/.test(node.output());
      t.false(fatal, 'nothing fatal was logged');
      t.log(`the node's warnings and errors during the run: ${JSON.stringify(logSummary(node.output()))}`);

      node.kill('SIGTERM');
      const exit = await node.exited;
      t.is(exit.code, 0, `graceful stop after the outage; output:\n${node.output().slice(-3000)}`);
      node = undefined;
    },
  );

/** Warn-and-above log lines of a node's JSON output, counted by level, actor and message. */
function logSummary(output: string): Record<string, number> {
  const out: Record<string, number> = {};
  for (const line of output.split('\n')) {
    if (!line.startsWith('{')) continue;
    try {
      const rec = JSON.parse(line) as { level: number; msg: string; actor?: string };
      if (rec.level < 40) continue;
      const key = `${rec.level >= 50 ? 'ERROR' : 'WARN'} ${rec.actor ?? '-'}: ${rec.msg}`;
      out[key] = (out[key] ?? 0) + 1;
    } catch {
      /* not a log line */
    }
  }
  return out;
}

// ── (c) invalid configs ─────────────────────────────────────────────────────────────────────

const PARTITIONS = 'partitions:\n  billing:\n    queues:\n      default: { concurrency: 1 }\n';

const BAD_CONFIGS: { name: string; yaml?: string; args?: string[]; expect: RegExp }[] = [
  {
    name: 'unknown key',
    yaml: `${PARTITIONS}engine:\n  leaseMz: 100\n`,
    expect: /bad\.yaml:6: engine\.leaseMz: unknown key; did you mean "leaseMs"\?/,
  },
  {
    name: 'wrong type',
    yaml: 'partitions:\n  billing:\n    queues:\n      default: { concurrency: "ten" }\n',
    expect: /bad\.yaml:4: partitions\.billing\.queues\.default\.concurrency: expected an integer from 0 to 10000 .*got "ten"/,
  },
  { name: 'missing partitions', yaml: 'cluster: x\n', expect: /bad\.yaml:1: partitions: is required/ },
  {
    name: 'partition without queues',
    yaml: 'partitions:\n  billing: {}\n',
    expect: /bad\.yaml:2: partitions\.billing\.queues: is required/,
  },
  {
    name: 'YAML syntax error',
    yaml: 'cluster: x\npartitions:\n  billing:\n   queues: {default: {concurrency: 1}\n',
    expect: /bad\.yaml:5: \(root\): YAML syntax error at line 5/,
  },
  {
    name: 'heartbeat not under lease',
    yaml: `${PARTITIONS}engine:\n  leaseMs: 2000\n  heartbeatMs: 5000\n`,
    expect: /bad\.yaml:7: engine\.heartbeatMs: must be less than leaseMs \(2000\)/,
  },
  {
    name: 'not a Postgres URL',
    yaml: `postgres:\n  url: mysql://db/x\n${PARTITIONS}`,
    expect: /bad\.yaml:2: postgres\.url: expected a URL such as postgres:\/\//,
  },
  {
    name: 'bad partition name',
    yaml: 'partitions:\n  "bad name":\n    queues:\n      default: { concurrency: 1 }\n',
    expect: /bad\.yaml:2: partitions\["bad name"\]: partition "bad name" is not allowed/,
  },
  {
    name: 'bad log level',
    yaml: `log:\n  level: loud\n${PARTITIONS}`,
    expect: /bad\.yaml:2: log\.level: expected one of "fatal", .* got "loud"/,
  },
  {
    name: 'two problems at once',
    yaml: `cluster: x\nengine:\n  pollMs: -5\n  flushBatch: lots\n${PARTITIONS}`,
    expect: /invalid configuration \(2 problems\)[\s\S]*bad\.yaml:3: engine\.pollMs: [\s\S]*bad\.yaml:4: engine\.flushBatch: /,
  },
  { name: 'empty file', yaml: '', expect: /bad\.yaml:1: \(root\): the file is empty/ },
  {
    name: 'missing file',
    args: ['start', '-c', 'does-not-exist.yaml'],
    expect: /does-not-exist\.yaml: \(root\): cannot read the config file \(no such file\)/,
  },
  {
    name: 'jobs module that does not load',
    yaml: `jobs: ./nope.js\n${PARTITIONS}`,
    expect: /jobs: cannot load the jobs module .*nope\.js/,
  },
  {
    name: 'unknown --partition',
    yaml: PARTITIONS,
    args: ['--partition', 'emails'],
    expect: /partition "emails" not in .*bad\.yaml \(it has: billing\)/,
  },
];

test.serial('partita start with an invalid config: exit code 2 and file:line: key path: what is expected, on stderr', async (t) => {
  const tmp = await tempDir('badcfg');
  t.teardown(() => tmp.cleanup());
  // Four CLI processes at a time, each with a minute: the cases hold the exit code and the message,
  // not how fast a node starts, and fifteen node processes started at once on a loaded 2-core
  // machine outran a 20 s timeout (killed: exit code null).
  const queue = BAD_CONFIGS.map((c, i) => ({ c, i }));
  const worker = async () => {
    for (let next = queue.shift(); next; next = queue.shift()) await check(next.c, next.i);
  };
  const check = async (c: (typeof BAD_CONFIGS)[number], i: number) => {
    const dir = path.join(tmp.dir, String(i));
    await fs.mkdir(dir);
    if (c.yaml !== undefined) await fs.writeFile(path.join(dir, 'bad.yaml'), c.yaml);
    const args = c.yaml !== undefined ? ['start', '-c', 'bad.yaml', ...(c.args ?? [])] : c.args!;
    // Should a case pass validation by mistake, the node must fail fast rather than start an embedded PostgreSQL.
    const env = c.yaml?.includes('postgres:') ? {} : { PARTITA_POSTGRES_URL: 'postgres://127.0.0.1:1/none' };
    const r = await runCli(args, { cwd: dir, timeoutMs: 60_000, env });
    t.is(r.code, 2, `${c.name}: exit code 2 (got ${r.code}${r.signal ? `, ${r.signal}` : ''}); stderr:\n${r.stderr}`);
    t.regex(r.stderr, c.expect, `${c.name}: message`);
    t.is(r.stdout, '', `${c.name}: nothing on stdout`);
    t.false(r.stderr.includes('    at '), `${c.name}: no stack trace`);
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  // --json: the same problems, machine-readable.
  const r = await runCli(['start', '-c', 'bad.yaml', '--json'], { cwd: path.join(tmp.dir, '0') });
  t.is(r.code, 2);
  const err = JSON.parse(r.stderr.trim()) as { error: { code: string; exitCode: number; problems: { path: string; line: number }[] } };
  t.is(err.error.code, 'CONFIG');
  t.is(err.error.exitCode, 2);
  t.like(err.error.problems[0], { path: 'engine.leaseMz', line: 6 });
});
