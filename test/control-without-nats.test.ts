/**
 * A cluster without NATS (the quick start's shape): every control command works through Postgres,
 * against a real `partita start` process — pause, resume, paused, throttle stop/off, roll-call —
 * and a job enqueued by another process starts within milliseconds (a Postgres notification
 * wakes the node, not its 1 s poll). Also: the default persister when Postgres is configured, and
 * the file persister's warning on a take-over that finds the previous leader's state elsewhere.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { connect, type Client } from '@partita/client';
import { createLogger } from '@partita/core';
import { defineJob, startNode } from '@partita/runtime';
import { capturingLogger, freshSchema, natsUrl, tempDataDir, type SpawnedNode, type TestSchema } from './helpers/index.js';
import { FIXTURES, cliJson as json, runCli, sleep, startCliNode, tempDir, until, writeConfig, type CliResult } from './fixtures/cli.js';
import { clientBus } from '@partita/client/internal';

interface Env {
  db: TestSchema;
  cluster: string;
  nodeId: string;
  node: SpawnedNode;
  cli(args: string[]): Promise<CliResult>;
  client(): Promise<Client>;
}

/**
 * A `partita start` process on a fresh schema with no NATS (poll 1 s, as shipped, unless `pollMs`
 * says otherwise), and a CLI config for it.
 */
async function nodeWithoutNats(t: import('ava').ExecutionContext, name: string, pollMs = 1000): Promise<Env> {
  const db = await freshSchema(name);
  const tmp = await tempDir(name);
  const cluster = db.schema.replaceAll('_', '-');
  const nodeId = `${name}-node`;
  let node: SpawnedNode | undefined;
  const clients: Client[] = [];
  t.teardown(async () => {
    await Promise.all(clients.map((c) => c.close().catch(() => undefined)));
    if (node?.kill('SIGTERM')) await Promise.race([node.exited, sleep(10_000).then(() => node?.kill('SIGKILL'))]);
    await db.drop();
    await tmp.cleanup();
  });
  const config = await writeConfig(tmp.dir, {
    cluster,
    postgres: { url: db.url, schema: db.schema },
    dataDir: './data',
    jobs: path.join(FIXTURES, 'fault-jobs.mjs'),
    engine: { pollMs, shutdownGraceMs: 1000 },
    partitions: { work: { queues: { default: { concurrency: 2 }, other: { concurrency: 1 } } } },
  });
  node = await startCliNode(config, { nodeId, onSpawn: (n) => (node = n) });
  return {
    db,
    cluster,
    nodeId,
    node,
    cli: (args) => runCli([...args, '-c', config], { cwd: tmp.dir, timeoutMs: 60_000 }),
    async client() {
      const c = await connect({ postgres: db.url, schema: db.schema, cluster });
      clients.push(c);
      return c;
    },
  };
}

const stateOf = async (cli: Env['cli'], id: string) => json<{ state: string }>(await cli(['status', id, '--json'])).state;

/** A fresh schema and `count` data dirs, all removed when the test ends. */
async function schemaAndDataDirs(t: import('ava').ExecutionContext, name: string, count = 1): Promise<{ db: TestSchema; dirs: string[] }> {
  const db = await freshSchema(name);
  const dirs = Array.from({ length: count }, () => tempDataDir(name));
  t.teardown(async () => {
    await db.drop();
    await Promise.all(dirs.map((d) => fs.rm(d, { recursive: true, force: true })));
  });
  return { db, dirs };
}

/** Node options without NATS: partition p, queue a, a job j that does nothing. */
const withoutNats = (db: TestSchema, dataDir: string, logger = createLogger({ level: 'silent' })) => ({
  postgres: db.url,
  schema: db.schema,
  nats: false as const,
  dataDir,
  logger,
  partitions: { p: { queues: { a: { concurrency: 1 } } } },
  jobs: [defineJob({ type: 'j', queue: 'a', perform: () => null })],
});

/** Job j on queue a, which notes the id of each job it runs in `ran`. */
const recordingJob = (ran: string[]) =>
  defineJob({
    type: 'j',
    queue: 'a',
    perform: (_p: unknown, ctx) => {
      ran.push(ctx.id);
      return null;
    },
  });

const leaseHolder = async (db: TestSchema) => (await db.pool.query(`SELECT holder FROM leases WHERE name = 'global:p'`)).rows[0]?.holder;

test.serial('CLI against a node without NATS: roll-call, pause, paused, resume, throttle stop and off all work', async (t) => {
  // Some twenty CLI processes in a row: at load 8-9 or more they alone may outlast ava's 3 min.
  t.timeout(6 * 60_000, 'twenty CLI runs on a loaded machine');
  const { cli, nodeId } = await nodeWithoutNats(t, 'nonats_cli');

  const rc = await cli(['roll-call', '--json']);
  t.is(rc.code, 0, rc.stderr);
  const members = json<{ id: string; partitions: string[]; queues: { queue: string }[]; uptimeMs: number }[]>(rc);
  t.deepEqual(
    members.map((m) => m.id),
    [nodeId],
    'the node, from the nodes table',
  );
  t.deepEqual(members[0]!.partitions, ['work']);
  t.deepEqual(members[0]!.queues.map((q) => q.queue).sort(), ['default', 'other']);
  const table = await cli(['roll-call']);
  t.regex(table.stdout, new RegExp(`^NODE +PARTITIONS[\\s\\S]*${nodeId} +work`, 'm'));

  // pause: a job enqueued afterwards stays queued; paused lists the queue; resume runs it.
  const p = await cli(['pause', 'work', 'default']);
  t.is(p.code, 0, p.stderr);
  t.false(/nats/i.test(p.stderr));
  t.deepEqual(json<{ paused: string[] }>(await cli(['paused', 'work', '--json'])).paused, ['default']);
  const held = json<{ id: string }>(await cli(['enqueue', 'work', 'sleep', '{"ms":1}', '--json'])).id;
  const other = json<{ id: string }>(await cli(['enqueue', 'work', 'sleep', '{"ms":1}', '--queue', 'other', '--json'])).id;
  const otherDone = await cli(['status', other, '--wait', '--timeout', '30s', '--json']);
  t.is(otherDone.code, 0, `another queue keeps running: ${otherDone.stderr}`);
  await sleep(1500); // more than the poll: a paused queue is not claimed
  t.is(await stateOf(cli, held), 'queued', 'a paused queue is not claimed');
  const r = await cli(['resume', 'work', 'default']);
  t.is(r.code, 0, r.stderr);
  t.regex(r.stdout, /^resumed work\/default$/m);
  const done = await cli(['status', held, '--wait', '--timeout', '30s', '--json']);
  t.is(done.code, 0, done.stderr);
  t.deepEqual(json<{ paused: string[] }>(await cli(['paused', 'work', '--json'])).paused, []);
  const notPaused = await cli(['resume', 'work', 'default']);
  t.regex(notPaused.stderr, /work\/default was not paused; nothing to resume/);

  // throttle stop: shown by paused (with the way to lift it); resume says it does not lift it.
  const stop = await cli(['throttle', 'stop', '-p', 'work', '-q', 'default']);
  t.is(stop.code, 0, stop.stderr);
  t.regex(stop.stdout, /lift it with: partita throttle off -p work -q default/);
  const stopped = json<{ paused: string[]; stopped: { queue: string; rule: { ms: number }; lift: string }[] }>(
    await cli(['paused', 'work', '--json']),
  );
  t.deepEqual(stopped.paused, []);
  t.deepEqual(stopped.stopped, [{ queue: 'default', rule: { ms: -1, queue: 'default' }, lift: 'partita throttle off -p work -q default' }]);
  const human = await cli(['paused', 'work']);
  t.regex(human.stdout, /^default +stopped by throttle +partita throttle off -p work -q default$/m);
  const blocked = json<{ id: string }>(await cli(['enqueue', 'work', 'sleep', '{"ms":1}', '--json'])).id;
  const resumeStopped = await cli(['resume', 'work', 'default']);
  t.is(resumeStopped.code, 0);
  t.notRegex(resumeStopped.stdout, /resumed/);
  t.regex(
    resumeStopped.stderr,
    /work\/default is not paused but claims nothing: a throttle of -1 \(stop\) holds it, and resume does not lift throttles\. Lift it with: partita throttle off -p work -q default/,
  );
  await sleep(1200);
  t.is(await stateOf(cli, blocked), 'queued', 'a stopped queue is not claimed');
  const rc2 = json<{ queues: { queue: string; paused: boolean; stopped: boolean }[] }[]>(await cli(['roll-call', '--json']));
  t.like(
    rc2[0]!.queues.find((q) => q.queue === 'default'),
    { paused: true, stopped: true },
    'roll call: it claims nothing, because of a stop',
  );
  t.like(
    rc2[0]!.queues.find((q) => q.queue === 'other'),
    { paused: false, stopped: false },
  );
  const off = await cli(['throttle', 'off', '-p', 'work', '-q', 'default']);
  t.is(off.code, 0, off.stderr);
  const unblocked = await cli(['status', blocked, '--wait', '--timeout', '30s', '--json']);
  t.is(unblocked.code, 0, unblocked.stderr);
  t.deepEqual(json<{ stopped: unknown[] }>(await cli(['paused', 'work', '--json'])).stopped, []);
});

test.serial(
  'a bare client without NATS: pause and resume reach the node at once; an enqueued job starts at once (p50 of 20), woken by Postgres, not its poll',
  async (t) => {
    // The node polls once a minute: whatever starts a job sooner than that was woken by a
    // notification, so the bounds below only need to be well under the poll, not tight (a quiet
    // machine starts these in a few ms; CI, at load 8-9, took over 50 ms).
    const POLL_MS = 60_000;
    const env = await nodeWithoutNats(t, 'nonats_client', POLL_MS);
    const client = await env.client();
    t.is(clientBus(client), undefined);

    // Warm up (connections, prepared statements, the node's first claim).
    await client.result((await client.enqueue('work', 'sleep', { ms: 0 })).id, { timeoutMs: 30_000 });

    const latencies: number[] = [];
    for (let i = 0; i < 20; i++) {
      const { id } = await client.enqueue('work', 'sleep', { ms: 0 });
      await client.result(id, { timeoutMs: 30_000 });
      const job = (await client.job(id))!;
      // Both times are the database's clock: the insert's and the claim's.
      latencies.push(job.startedAt!.getTime() - job.createdAt.getTime());
    }
    latencies.sort((a, b) => a - b);
    const p50 = latencies[Math.floor(latencies.length / 2)]!;
    t.log(`enqueue → start without NATS, 20 jobs: p50 ${p50} ms, max ${latencies.at(-1)} ms (node poll ${POLL_MS} ms)`);
    // Woken by the poll, half the jobs would wait over 30 s (and time out above).
    t.true(p50 < 1000, `p50 ${p50} ms; all: ${latencies.join(', ')}`);

    // Pause and resume: the node hears of each at once (a notification), not at its next re-read.
    for (let round = 0; round < 3; round++) {
      await client.pause('work', 'default');
      t.deepEqual(await client.paused('work'), ['default']);
      const { id } = await client.enqueue('work', 'sleep', { ms: 0 });
      await sleep(300);
      t.is((await client.job(id))!.state, 'queued', 'paused: not claimed');
      if (round === 0) {
        const [member] = await client.rollCall();
        t.like(
          member!.queues.find((q) => q.queue === 'default'),
          { queued: 1, scheduled: 0, paused: true, stopped: false },
          'roll call from Postgres counts the queued job',
        );
        t.is(member!.queued, 1);
      }
      const resumedAt = Date.now();
      await client.resume('work', 'default');
      await client.result(id, { timeoutMs: 30_000 });
      const took = Date.now() - resumedAt;
      t.log(`round ${round}: the job ran ${took} ms after resume`);
      // The resume's notification wakes the node; its poll would come up to a minute later.
      t.true(took < 5000, `round ${round}: the job ran ${took} ms after resume`);
    }
    t.deepEqual(await client.paused('work'), []);

    await client.throttle({ ms: -1, partition: 'work' });
    t.deepEqual((await client.control('work')).throttles, [{ ms: -1 }]);
    // Roll call asks the node for a fresh profile (its heartbeat is 5 s away): it shows the stop now.
    await until(
      'the node to apply the stop',
      async () => {
        const [member] = await client.rollCall({ delayMs: 2000 });
        return member?.throttleMs === -1;
      },
      20_000,
      100,
    );
    await client.throttle({ ms: 0, partition: 'work' });
    t.deepEqual((await client.control('work')).throttles, []);
    const members = await client.rollCall();
    t.deepEqual(
      members.map((m) => m.id),
      [env.nodeId],
    );
    t.true(members[0]!.startedAt instanceof Date && members[0]!.at instanceof Date);
  },
);

test.serial('a pause made without NATS while no node runs is obeyed by the node that starts next, and kept by its Global', async (t) => {
  const {
    db,
    dirs: [dataDir],
  } = await schemaAndDataDirs(t, 'nonats_cold');
  const ran: string[] = [];
  const options = {
    ...withoutNats(db, dataDir!),
    engine: { pollMs: 100 },
    partitions: { p: { queues: { a: { concurrency: 1 }, b: { concurrency: 1 } } } },
    jobs: [recordingJob(ran)],
  };
  const first = await startNode(options);
  await first.stop({ graceMs: 100 });

  const client = await connect({ postgres: db.url, schema: db.schema });
  t.teardown(() => client.close());
  await client.pause('p', 'a');
  const { id } = await client.enqueue('p', 'j');
  const node = await startNode(options);
  t.teardown(() => node.stop({ graceMs: 100 }));
  await until(
    'the node to lead the partition',
    async () => (await db.pool.query(`SELECT epoch FROM partition_control WHERE partition = 'p'`)).rows[0]?.epoch >= 2,
    30_000,
  );
  await sleep(500);
  t.deepEqual(ran, [], 'the pause made while no node ran holds');
  t.deepEqual(await node.client.paused('p'), ['a'], 'the new leader serves it');
  const saved = (await db.pool.query(`SELECT snapshot FROM global_state WHERE partition = 'p'`)).rows[0]?.snapshot;
  t.deepEqual(saved?.paused, ['a'], 'and keeps it in its snapshot (postgres persister by default)');
  await client.resume('p', 'a');
  await client.result(id, { timeoutMs: 30_000 });
  t.deepEqual(ran, [id]);
});

test.serial(
  'a bare client without NATS: a job enqueued right after a pause is never claimed, even by a claim the engine makes before it hears of the pause',
  async (t) => {
    const {
      db,
      dirs: [dataDir],
    } = await schemaAndDataDirs(t, 'nonats_race');
    const ran: string[] = [];
    // A poll every 10 ms (the least allowed) keeps a claim in flight almost all the time: one that starts after the
    // enqueue commits and before the engine has read the control row (the notice router's read, a
    // round trip) is the race. The pause is committed before the enqueue, so the claim's snapshot
    // sees it.
    const node = await startNode({ ...withoutNats(db, dataDir!), engine: { pollMs: 10 }, jobs: [recordingJob(ran)] });
    t.teardown(() => node.stop({ graceMs: 100 }));
    const client = await connect({ postgres: db.url, schema: db.schema });
    t.teardown(() => client.close());
    await client.result((await client.enqueue('p', 'j')).id, { timeoutMs: 30_000 });
    const rounds = 50;
    const claimed: number[] = [];
    for (let round = 0; round < rounds; round++) {
      await client.pause('p', 'a');
      const { id } = await client.enqueue('p', 'j');
      await sleep(30);
      if ((await client.job(id))!.state !== 'queued') claimed.push(round);
      await client.resume('p', 'a');
      await client.result(id, { timeoutMs: 30_000 });
    }
    t.deepEqual(claimed, [], `rounds whose job was claimed while its queue was paused, of ${rounds}`);
    t.is(ran.length, rounds + 1);
  },
);

test.serial('two nodes without NATS on one Postgres: the client of the node that does not lead pauses and resumes for both', async (t) => {
  const {
    db,
    dirs: [dataDir],
  } = await schemaAndDataDirs(t, 'nonats_two');
  const options = withoutNats(db, dataDir!);
  const a = await startNode({ ...options, nodeId: 'a' });
  t.teardown(() => a.stop({ graceMs: 100 }));
  await until('a to lead', async () => (await leaseHolder(db)) === 'a', 30_000);
  const b = await startNode({ ...options, nodeId: 'b' });
  t.teardown(() => b.stop({ graceMs: 100 }));
  await b.client.pause('p', 'a');
  t.deepEqual(await a.client.paused('p'), ['a']);
  await until(
    'both engines paused',
    async () => (await a.stats())[0]!.paused.includes('a') && (await b.stats())[0]!.paused.includes('a'),
    20_000,
  );
  await b.client.resume('p', 'a');
  await until(
    'both engines resumed',
    async () => (await a.stats())[0]!.paused.length === 0 && (await b.stats())[0]!.paused.length === 0,
    20_000,
  );
  t.deepEqual(
    (await b.client.rollCall({ delayMs: 2000 })).map((m) => m.id),
    ['b'],
    'an in-process bus answers for its own node',
  );
  const bare = await connect({ postgres: db.url, schema: db.schema });
  t.teardown(() => bare.close());
  t.deepEqual(
    (await bare.rollCall({ delayMs: 2000 })).map((m) => m.id),
    ['a', 'b'],
    'Postgres knows both',
  );
});

test.serial('the default persister is postgres when Postgres is configured: a new leader on another data dir has the state', async (t) => {
  const { db, dirs } = await schemaAndDataDirs(t, 'defpersist', 2);
  const { logger, lines } = capturingLogger('info');
  const options = (dataDir: string) => withoutNats(db, dataDir, logger);
  const leaderLine = (epoch: number) =>
    until(
      `the leader of epoch ${epoch}`,
      async () => lines.find((l) => l.msg === 'took the partition lease; serving Global' && l.epoch === epoch),
      30_000,
    );
  const a = await startNode(options(dirs[0]!));
  // Stopped below; also if an assertion throws first (a node left running keeps the test worker alive).
  t.teardown(() => a.stop({ graceMs: 100 }));
  t.like(await leaderLine(1), { restored: false });
  // The lease holder logs once it serves Global's requests, which can be before Global's first save
  // (its start, which fences older leaders) has landed: the row is waited for, not read once.
  const saved = async () => ((await db.pool.query(`SELECT epoch FROM global_state WHERE partition = 'p'`)).rowCount ?? 0) > 0;
  t.true(await until('Global state saved in Postgres', saved, 10_000));
  await t.throwsAsync(fs.access(path.join(dirs[0]!, 'global')), undefined, 'and not in the data dir');
  await a.stop({ graceMs: 100 });
  const b = await startNode(options(dirs[1]!));
  t.teardown(() => b.stop({ graceMs: 100 }));
  t.like(await leaderLine(2), { restored: true }, 'the next leader, on another data dir, starts from the saved state');
});

test.serial('the file persister warns loudly when a take-over finds no state from the previous leader in its data dir', async (t) => {
  const { db, dirs } = await schemaAndDataDirs(t, 'filewarn', 2);
  const { logger, lines } = capturingLogger('warn');
  const options = (dataDir: string) => ({ ...withoutNats(db, dataDir, logger), persister: 'file' as const });
  const a = await startNode(options(dirs[0]!));
  await until('a to lead', async () => (await leaseHolder(db)) === a.id, 30_000);
  await a.stop({ graceMs: 100 });
  t.deepEqual(
    lines.filter((l) => /taken over/.test(l.msg)),
    [],
    'no warning for the first leader',
  );

  // The same data dir again: it holds the last epoch's state, nothing to warn about.
  const a2 = await startNode(options(dirs[0]!));
  await until('a2 to lead', async () => (await leaseHolder(db)) === a2.id, 30_000);
  await a2.stop({ graceMs: 100 });
  t.deepEqual(
    lines.filter((l) => /taken over/.test(l.msg)),
    [],
  );

  const b = await startNode(options(dirs[1]!));
  t.teardown(() => b.stop({ graceMs: 100 }));
  const warning = await until('the warning', async () => lines.find((l) => /taken over/.test(l.msg)), 30_000);
  t.is(warning.level, 40);
  t.like(warning, { partition: 'p', epoch: 3, previousEpoch: 2, foundEpoch: null });
  t.true(String(warning.dataDir).startsWith(path.join(dirs[1]!, 'global')), String(warning.dataDir));
  t.regex(
    warning.msg,
    /partition "p" taken over at epoch 3, but the file persister in .* holds no Global state for it: the leader of epoch 2 saved its state on another node's disk/,
  );
  t.regex(warning.msg, /use persister: postgres/);
});

test.serial('the notification connection comes back after Postgres drops it, and wake-ups are fast again', async (t) => {
  const {
    db,
    dirs: [dataDir],
  } = await schemaAndDataDirs(t, 'nonats_relisten');
  // A poll once a minute: a job that starts within seconds was woken by a notification.
  const node = await startNode({ ...withoutNats(db, dataDir!), engine: { pollMs: 60_000 } });
  t.teardown(() => node.stop({ graceMs: 100 }));
  const client = await connect({ postgres: db.url, schema: db.schema });
  t.teardown(() => client.close());
  // This node's listening connection, and no other (other tests' nodes listen on their own schemas).
  const listener = async () =>
    (
      await db.pool.query(`SELECT pid FROM pg_stat_activity WHERE application_name = 'partita-listen' AND query = $1`, [
        `LISTEN "partita_${db.schema}"`,
      ])
    ).rows.map((r) => r.pid as number);
  const [pid] = await until('the node to listen', async () => ((await listener()).length === 1 ? await listener() : undefined), 20_000);
  const startDelay = async () => {
    const { id } = await client.enqueue('p', 'j');
    await client.result(id, { timeoutMs: 30_000 });
    const job = (await client.job(id))!;
    // Both times are the database's clock: the insert's and the claim's.
    return job.startedAt!.getTime() - job.createdAt.getTime();
  };
  await startDelay();
  const before = await startDelay();
  t.log(`enqueue → start: ${before} ms before the connection was dropped`);
  t.true(before < 2000, `woken by the notification, not the 60 s poll (${before} ms)`);
  await db.pool.query('SELECT pg_terminate_backend($1)', [pid]);
  const [again] = await until(
    'the node to listen again',
    async () => {
      const pids = await listener();
      return pids.length === 1 && pids[0] !== pid ? pids : undefined;
    },
    20_000,
  );
  t.not(again, pid);
  const after = await startDelay();
  t.log(`enqueue → start: ${after} ms after the node listened again`);
  t.true(after < 2000, `woken by a notification again (${after} ms)`);
});

test.serial(
  'bug 5: with NATS and file persisters on separate data dirs, a pause survives the leader stopping (the row in Postgres carries it)',
  async (t) => {
    const { db, dirs } = await schemaAndDataDirs(t, 'filepause', 2);
    const nats = await natsUrl();
    const ran: string[] = [];
    const options = (nodeId: string, dataDir: string) => ({
      nodeId,
      postgres: db.url,
      schema: db.schema,
      nats,
      cluster: db.schema.replaceAll('_', '-'),
      persister: 'file' as const,
      dataDir,
      logger: createLogger({ level: 'silent' }),
      engine: { pollMs: 50 },
      partitions: { p: { queues: { a: { concurrency: 1 } } } },
      jobs: [recordingJob(ran)],
    });
    const a = await startNode(options('a', dirs[0]!));
    await until('a to lead', async () => (await leaseHolder(db)) === 'a', 30_000);
    const b = await startNode(options('b', dirs[1]!));
    t.teardown(() => b.stop({ graceMs: 100 }));
    await b.client.pause('p', 'a'); // over NATS, to a's Global
    await a.stop({ graceMs: 100 });
    const { id } = await b.client.enqueue('p', 'j');
    await until('b to lead', async () => (await leaseHolder(db)) === 'b', 30_000);
    await sleep(500);
    t.deepEqual(ran, [], 'the paused queue stays paused under the new leader');
    t.deepEqual(await b.client.paused('p'), ['a']);
    await b.client.resume('p', 'a');
    await b.client.result(id, { timeoutMs: 30_000 });
    t.deepEqual(ran, [id]);
  },
);
