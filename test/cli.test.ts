/**
 * The `partita` command, run as a real process (packages/cli/dist/bin.js; needs the build):
 * help, exit codes, the job round trip against a running node, bulk enqueue, listing, cluster
 * controls, connection errors, and `partita start` on the embedded PostgreSQL.
 */
import test from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { defineJob } from '@partita/runtime';
import { freshSchema, type SpawnedNode } from './helpers/index.js';
import {
  FIXTURES,
  cliJson as json,
  nodeForCli,
  runCli,
  sleep,
  startCliNode,
  tempDir,
  until,
  writeConfig,
  type CliResult,
  type NodeForCli,
} from './fixtures/cli.js';

const COMMANDS = [
  'start',
  'demo',
  'enqueue',
  'status',
  'job',
  'jobs',
  'cancel',
  'retry',
  'pause',
  'resume',
  'paused',
  'throttle',
  'roll-call',
  'migrate',
];

test.serial('--help: the command list with exit codes, and usage for every command', async (t) => {
  const top = await runCli(['--help']);
  t.is(top.code, 0);
  for (const c of COMMANDS) t.regex(top.stdout, new RegExp(`^  ${c} `, 'm'), `lists ${c}`);
  t.regex(top.stdout, /Exit codes:[\s\S]*0 +ok[\s\S]*2 +usage[\s\S]*3 +not found[\s\S]*4 +the job failed or was cancelled/);
  const helps: CliResult[] = [];
  for (const c of COMMANDS) helps.push(await runCli([c, '--help']));
  helps.forEach((r, i) => {
    t.is(r.code, 0, `${COMMANDS[i]} --help exits 0`);
    t.true(r.stdout.startsWith(`Usage: partita ${COMMANDS[i]}`), `${COMMANDS[i]} --help shows its usage`);
    t.regex(r.stdout, /--json/);
  });
  t.is((await runCli(['help', 'enqueue'])).stdout, helps[COMMANDS.indexOf('enqueue')]!.stdout);

  const none = await runCli([]);
  t.is(none.code, 2, 'no command: usage, exit 2');
  const typo = await runCli(['enqeue']);
  t.is(typo.code, 2);
  t.regex(typo.stderr, /unknown command "enqeue"; did you mean "enqueue"\?/);
  const badOption = await runCli(['jobs', '--colour']);
  t.is(badOption.code, 2);
  t.regex(badOption.stderr, /unknown option --colour[\s\S]*partita jobs --help/);
  const missingArg = await runCli(['status']);
  t.is(missingArg.code, 2);
  const version = await runCli(['--version']);
  t.regex(version.stdout, /^\d+\.\d+\.\d+/);
});

/** A node for the CLI to talk to, running echo, boom (fails both attempts) and hang (until cancelled, on queue slow). */
function withNode(t: import('ava').ExecutionContext): Promise<NodeForCli> {
  return nodeForCli(t, 'cli', {
    partitions: { billing: { queues: { default: { concurrency: 4 }, slow: { concurrency: 2 } } } },
    jobs: [
      defineJob({ type: 'echo', perform: (p: unknown) => ({ echoed: p }) }),
      defineJob({ type: 'boom', maxAttempts: 2, backoff: { baseMs: 10, maxMs: 10 }, perform: () => Promise.reject(new Error('kaboom')) }),
      defineJob({
        type: 'hang',
        queue: 'slow',
        perform: (_p: unknown, ctx) =>
          new Promise((_, reject) => ctx.signal.addEventListener('abort', () => reject(ctx.signal.reason), { once: true })),
      }),
    ],
  });
}

test.serial('enqueue, status, job, cancel and jobs round trip against a running node (--json and exit codes)', async (t) => {
  const { cli } = await withNode(t);

  // enqueue → completed
  const e1 = await cli(['enqueue', 'billing', 'echo', '{"invoice":"INV-1"}', '--lookup', 'customer=42', '--json']);
  t.is(e1.code, 0, e1.stderr);
  const { id } = json<{ id: string }>(e1);
  t.regex(id, /^[0-9a-f-]{36}$/);
  const done = await cli(['status', id, '--wait', '--timeout', '20s', '--json']);
  t.is(done.code, 0, done.stderr);
  t.like(json(done), { id, status: 0, state: 'completed', attempts: 1 });
  const rec = await cli(['job', id, '--json']);
  t.is(rec.code, 0);
  t.like(json(rec), {
    id,
    partition: 'billing',
    queue: 'default',
    type: 'echo',
    state: 'completed',
    payload: { invoice: 'INV-1' },
    result: { echoed: { invoice: 'INV-1' } },
    lookup: { customer: '42' },
  });
  const human = await cli(['job', id]);
  t.regex(human.stdout, /^state +completed/m);
  const plainId = await cli(['enqueue', 'billing', 'echo']);
  t.regex(plainId.stdout, /^[0-9a-f-]{36}\n$/, 'without --json enqueue prints just the id');

  // a failing job: exit code 4, errors recorded
  const boom = json<{ id: string }>(await cli(['enqueue', 'billing', 'boom', '--json']));
  const failed = await cli(['status', boom.id, '--wait', '--timeout', '20s', '--json']);
  t.is(failed.code, 4, 'failed job → exit code 4');
  t.like(json(failed), { state: 'failed', status: -1_000_000_001, attempts: 2 });
  const failedHuman = await cli(['status', boom.id]);
  t.is(failedHuman.code, 4);
  t.regex(failedHuman.stdout, /failed after 2 attempts: kaboom/);
  t.is(json<{ errors: unknown[] }>(await cli(['job', boom.id, '--json'])).errors.length, 2);

  // a scheduled job: pending (exit 0), cancelled (exit 0), then status says cancelled (exit 4)
  const later = json<{ id: string }>(await cli(['enqueue', 'billing', 'echo', '{}', '--delay', '1h', '--json']));
  const pending = await cli(['status', later.id, '--json']);
  t.is(pending.code, 0);
  t.like(json(pending), { status: -1, state: 'scheduled' });
  const c1 = await cli(['cancel', later.id, '--json']);
  t.is(c1.code, 0, c1.stderr);
  t.like(json(c1), { id: later.id, cancelled: true });
  const cancelled = await cli(['status', later.id, '--json']);
  t.is(cancelled.code, 4);
  t.like(json(cancelled), { state: 'cancelled', status: -1_000_000_000 });
  t.is((await cli(['cancel', later.id])).code, 0, 'cancelling a cancelled job again is fine');
  const c2 = await cli(['cancel', id]);
  t.is(c2.code, 5, 'cancel of a completed job: conflict');
  t.regex(c2.stderr, /already completed; nothing to cancel/);

  // a running job: cancel aborts it
  const hang = json<{ id: string }>(await cli(['enqueue', 'billing', 'hang', '--json']));
  await until(
    'the hang job to run',
    async () => json<{ state: string }>(await cli(['status', hang.id, '--json'])).state === 'running',
    20_000,
    100,
  );
  t.is((await cli(['cancel', hang.id])).code, 0);
  const hangEnd = await cli(['status', hang.id, '--wait', '--timeout', '20s', '--json']);
  t.is(hangEnd.code, 4);
  t.like(json(hangEnd), { state: 'cancelled' });

  // not found, not an id, unknown partition, queue key conflict
  const missing = await cli(['status', '0192f0c4-0000-7000-8000-000000000000']);
  t.is(missing.code, 3);
  t.regex(missing.stderr, /no job with id/);
  t.is((await cli(['job', '0192f0c4-0000-7000-8000-000000000000', '--json'])).code, 3);
  t.is((await cli(['status', 'not-an-id'])).code, 2);
  const unknown = await cli(['enqueue', 'nowhere', 'echo', '--json']);
  t.is(unknown.code, 2);
  t.like(JSON.parse(unknown.stderr), { error: { code: 'UNKNOWN_PARTITION', exitCode: 2 } });
  t.is((await cli(['enqueue', 'billing', 'echo', '{not json'])).code, 2);
  const k1 = await cli(['enqueue', 'billing', 'echo', '{}', '--queue-key', 'inv-7', '--delay', '1h']);
  t.is(k1.code, 0);
  const k2 = await cli(['enqueue', 'billing', 'echo', '{}', '--queue-key', 'inv-7']);
  t.is(k2.code, 5, 'queue key held → conflict');
  t.regex(k2.stderr, /queue key "inv-7" is already held by job/);

  // jobs: filters by lookup, state, type
  const byLookup = json<{ id: string }[]>(await cli(['jobs', '--lookup', 'customer=42', '--json']));
  t.deepEqual(
    byLookup.map((j) => j.id),
    [id],
  );
  const failedList = json<{ id: string; state: string }[]>(await cli(['jobs', '--state', 'failed', '--json']));
  t.deepEqual(
    failedList.map((j) => j.id),
    [boom.id],
  );
  const live = json<{ state: string }[]>(await cli(['jobs', '--state', 'scheduled,queued,running', '--json']));
  t.true(live.length >= 1 && live.every((j) => ['scheduled', 'queued', 'running'].includes(j.state)));
  const all = json<{ id: string }[]>(await cli(['jobs', '--partition', 'billing', '--json', '--limit', '100']));
  t.true(all.length >= 6);
  t.deepEqual(
    all.map((j) => j.id),
    [...all.map((j) => j.id)].sort().reverse(),
    'newest first',
  );
  const page = json<{ id: string }[]>(await cli(['jobs', '--limit', '2', '--json']));
  t.is(page.length, 2);
  const next = json<{ id: string }[]>(await cli(['jobs', '--limit', '2', '--before', page[1]!.id, '--json']));
  t.true(next.every((j) => j.id < page[1]!.id));
  const table = await cli(['jobs', '--type', 'boom']);
  t.regex(table.stdout, /^ID +PARTITION +QUEUE +TYPE +STATE/m);
  t.regex(table.stdout, new RegExp(`${boom.id} +billing +default +boom +failed +2/2`));
  t.is((await cli(['jobs', '--state', 'sleeping'])).code, 2);
});

test.serial('enqueue --file: lines checked first (nothing enqueued on a bad line), then bulk with progress', async (t) => {
  const { cli, db, config } = await withNode(t);
  const dir = path.dirname(config);
  const count = async () =>
    Number((await db.pool.query('SELECT (SELECT count(*) FROM jobs) + (SELECT count(*) FROM jobs_history) AS n')).rows[0].n);

  const bad = [
    '{"type":"echo","payload":{"n":1}}',
    '{"type":"echo","payload":{"n":2}}',
    '{"type":"echo", oops}',
    '{"type":"echo","colour":"red"}',
  ].join('\n');
  await fs.writeFile(path.join(dir, 'bad.jsonl'), bad);
  const r1 = await cli(['enqueue', 'billing', '--file', 'bad.jsonl'], { cwd: dir });
  t.is(r1.code, 2);
  t.regex(r1.stderr, /2 bad lines; nothing was enqueued:\n +line 3: not JSON[\s\S]*line 4: unknown key "colour"/);
  t.is(await count(), 0);

  const lines = Array.from({ length: 2500 }, (_, i) =>
    JSON.stringify(
      i % 500 === 0
        ? { type: 'echo', payload: { n: i }, lookup: { batch: 'b1' }, delayMs: 3_600_000 }
        : { type: 'echo', payload: { n: i } },
    ),
  );
  await fs.writeFile(path.join(dir, 'jobs.jsonl'), lines.join('\n') + '\n');
  const r2 = await cli(['enqueue', 'billing', '--file', 'jobs.jsonl', '--json', '--batch-size', '1000'], { cwd: dir });
  t.is(r2.code, 0, r2.stderr);
  const out = json<{ enqueued: number; ids: string[]; refused: unknown[] }>(r2);
  t.is(out.enqueued, 2500);
  t.is(new Set(out.ids).size, 2500);
  t.deepEqual(out.refused, []);
  t.regex(r2.stderr, /enqueue .*2500\/2500/, 'progress on stderr');
  const scheduled = json<{ state: string }[]>(await cli(['jobs', '--lookup', 'batch=b1', '--json']));
  t.is(scheduled.length, 5);
  t.true(scheduled.every((j) => j.state === 'scheduled'));

  // stdin, payload-per-line form with a type, and a queue-key conflict reported by line
  const r3 = await cli(['enqueue', 'billing', 'echo', '--file', '-', '--queue-key', 'same', '--delay', '1h', '--json'], {
    input: '{"a":1}\n{"a":2}\n',
  });
  t.is(r3.code, 5, 'the second line is refused: conflict');
  const o3 = json<{ enqueued: number; refused: { line: number; queueKey: string }[] }>(r3);
  t.is(o3.enqueued, 1);
  t.like(o3.refused[0], { line: 2, queueKey: 'same' });
});

test.serial('migrate, roll-call and the cluster controls (pause, resume, paused, throttle)', async (t) => {
  const { cli, node } = await withNode(t);
  const m = await cli(['migrate', '--json']);
  t.is(m.code, 0, m.stderr);
  const mig = json<{ versions: { version: number }[]; appliedNow: number[] }>(m);
  t.true(mig.versions.length >= 1);
  t.deepEqual(mig.appliedNow, [], 'the node already migrated the schema');
  const fresh = await freshSchema('climig');
  t.teardown(() => fresh.drop());
  const m2 = await runCli(['migrate', '--postgres', fresh.url, '--schema', fresh.schema, '--json']);
  t.is(m2.code, 0, m2.stderr);
  const mig2 = json<{ versions: { version: number }[]; appliedNow: number[] }>(m2);
  t.deepEqual(
    mig2.appliedNow,
    mig2.versions.map((v) => v.version),
    'a fresh schema: every version applied now',
  );
  const m3 = await runCli(['migrate', '--postgres', fresh.url, '--schema', fresh.schema]);
  t.regex(m3.stdout, /^0001_\w+ +applied 20/m);

  // --expect: the node's answer however long a loaded machine takes (a 500 ms window missed it at load 24).
  const rc = await cli(['roll-call', '--delay', '20s', '--expect', '1', '--json']);
  if (rc.code === 1 && /not available in this version/.test(rc.stderr)) {
    t.log('roll-call: client.rollCall not available yet');
  } else {
    t.is(rc.code, 0, rc.stderr);
    t.deepEqual(
      json<{ id: string }[]>(rc).map((p) => p.id),
      [node.id],
    );
    const table = await cli(['roll-call', '--delay', '20s', '--expect', '1']);
    t.regex(table.stdout, new RegExp(`^NODE +PARTITIONS[\\s\\S]*${node.id.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')} +billing`, 'm'));
    const noOne = await cli(['roll-call', '--expect', '0']);
    t.is(noOne.code, 2);
    t.regex(noOne.stderr, /--expect must be at least 1/);
  }

  const p = await cli(['pause', 'billing', 'default', '--json']);
  if (p.code === 1 && /not available in this version/.test(p.stderr)) {
    // Until @partita/client grows pause/resume/paused/throttle: a clear message, exit code 1.
    t.log('pause/resume/paused/throttle: not available in this @partita/client yet');
    for (const args of [
      ['resume', 'billing', 'default'],
      ['paused', 'billing'],
      ['throttle', 'stop'],
    ]) {
      const r = await cli(args);
      t.is(r.code, 1);
      t.regex(r.stderr, /is not available in this version of Partita/);
    }
    return;
  }
  t.is(p.code, 0, p.stderr);
  t.deepEqual(json<{ paused: string[] }>(await cli(['paused', 'billing', '--json'])).paused, ['default']);
  t.is((await cli(['resume', 'billing', 'default'])).code, 0);
  t.deepEqual(json<{ paused: string[] }>(await cli(['paused', 'billing', '--json'])).paused, []);
  t.is((await cli(['throttle', '250ms', '-p', 'billing', '--json'])).code, 0);
  t.is((await cli(['throttle', 'off', '-p', 'billing'])).code, 0);
  t.is((await cli(['pause', 'billing'])).code, 2, 'pause needs a queue');
});

test.serial('connection errors: no server, no config, nothing embedded running', async (t) => {
  const tmp = await tempDir('cli-conn');
  t.teardown(() => tmp.cleanup());
  const id = '0192f0c4-0000-7000-8000-000000000000';
  const refused = await runCli(['status', id, '--postgres', 'postgres://postgres@127.0.0.1:1/postgres'], { cwd: tmp.dir });
  t.is(refused.code, 1);
  t.regex(refused.stderr, /cannot connect to postgres:\/\/postgres@127\.0\.0\.1:1\/postgres: .*ECONNREFUSED.*is PostgreSQL running/);
  const secret = await runCli(['status', id, '--postgres', 'postgres://u:hunter2@127.0.0.1:1/x'], { cwd: tmp.dir });
  t.false(secret.stderr.includes('hunter2'), 'passwords are masked');

  const nothing = await runCli(['status', id], { cwd: tmp.dir });
  t.is(nothing.code, 2);
  t.regex(nothing.stderr, /no Postgres to connect to: pass --postgres URL/);

  await fs.writeFile(path.join(tmp.dir, 'partita.yaml'), 'partitions:\n  billing:\n    queues:\n      default: { concurrency: 1 }\n');
  const noEmbedded = await runCli(['jobs'], { cwd: tmp.dir });
  t.is(noEmbedded.code, 1);
  t.regex(
    noEmbedded.stderr,
    /configures no Postgres, so the node runs an embedded PostgreSQL in .*pg — and none is running there now\. Start the node first \(partita start -c partita\.yaml\)/,
  );
  const badConfig = await runCli(['jobs', '-c', 'missing.yaml'], { cwd: tmp.dir });
  t.is(badConfig.code, 2);
});

test.serial(
  'partita start on the embedded default: the CLI finds its PostgreSQL, SIGTERM twice exits 143 and stops the database',
  async (t) => {
    const tmp = await tempDir('cli-embedded');
    let node: SpawnedNode | undefined;
    t.teardown(async () => {
      node?.kill('SIGKILL');
      await tmp.cleanup();
    });
    const config = await writeConfig(tmp.dir, {
      cluster: 'embedded-test',
      dataDir: './data',
      jobs: path.join(FIXTURES, 'fault-jobs.mjs'),
      engine: { pollMs: 100, shutdownGraceMs: 30_000 },
      partitions: { work: { queues: { default: { concurrency: 2 } } } },
    });
    node = await startCliNode(config, { onSpawn: (n) => (node = n) });
    const cli = (args: string[]) => runCli([...args, '-c', config], { cwd: tmp.dir });

    const quick = json<{ id: string }>(await cli(['enqueue', 'work', 'sleep', '{"ms":5}', '--json']));
    const done = await cli(['status', quick.id, '--wait', '--timeout', '20s', '--json']);
    t.is(done.code, 0, done.stderr);
    t.like(json(done), { state: 'completed' });

    const pidFile = path.join(tmp.dir, 'data', 'pg', 'postmaster.pid');
    const pgPid = Number((await fs.readFile(pidFile, 'utf8')).split('\n')[0]);
    t.true(pgPid > 0);

    // A long job: the first SIGTERM waits for it (grace 30 s), the second exits at once.
    const long = json<{ id: string }>(await cli(['enqueue', 'work', 'sleep', '{"ms":60000}', '--json']));
    await until(
      'the long job to run',
      async () => json<{ state: string }>(await cli(['status', long.id, '--json'])).state === 'running',
      20_000,
      100,
    );
    node.kill('SIGTERM');
    await node.waitForOutput('stopping gracefully', { timeoutMs: 10_000 });
    await sleep(300);
    t.is(
      await Promise.race([node.exited.then(() => 'exited'), sleep(10).then(() => 'draining')]),
      'draining',
      'the first signal waits for the running job',
    );
    node.kill('SIGTERM');
    const exit = await node.exited;
    t.is(exit.code, 143, `second SIGTERM → exit 143; output:\n${node.output().slice(-2000)}`);
    node = undefined;
    await until(
      'the embedded PostgreSQL to stop',
      async () => {
        try {
          process.kill(pgPid, 0);
          return false;
        } catch {
          return true;
        }
      },
      20_000,
      100,
    );
    t.pass();
  },
);
