/**
 * Schedules on real nodes (Postgres, in-process nodes with the plugin): firing every second, the
 * misfire policies after the cluster was down, overlap, pause/resume/trigger, and two "leaders"
 * firing the same schedule at once.
 */
import test from 'ava';
import { defineJob, startNode, type NodeOptions, type PartitaNode } from '@partita/runtime';
import { processesPlugin, schedules, ScheduleStore, UnknownScheduleError, type ProcessesPluginOptions } from '@partita/processes';
import { ValidationError } from '@partita/core';
import { connect } from '@partita/client';
import { capturingLogger, freshSchema, sleep, tempDataDir, until, type TestSchema } from '../../../test/helpers/index.js';

const slowMs = 2500;
const JOBS = [
  defineJob({ type: 'tick', perform: (p: unknown) => p }),
  defineJob({ type: 'slow', perform: () => new Promise((resolve) => setTimeout(resolve, slowMs, 'done')) }),
];

function nodeOptions(db: TestSchema, plugin: ProcessesPluginOptions = {}, extra: Partial<NodeOptions> = {}): NodeOptions {
  return {
    postgres: { connectionString: db.url, max: 6 },
    schema: db.schema,
    nats: false,
    persister: 'postgres',
    dataDir: tempDataDir('schedules'),
    partitions: { p: { queues: { default: { concurrency: 8 } } } },
    engine: { pollMs: 100 },
    jobs: JOBS,
    plugins: [processesPlugin({ leaseMs: 2000, ...plugin })],
    logger: capturingLogger('warn').logger,
    ...extra,
  };
}

interface OccurrenceRow {
  schedule_id: string;
  fire_at: Date;
  job_id: string | null;
  outcome: string;
}

async function occurrences(db: TestSchema, id: string): Promise<OccurrenceRow[]> {
  const { rows } = await db.pool.query<OccurrenceRow>(
    `SELECT schedule_id, fire_at, job_id, outcome FROM "${db.schema}".schedule_occurrences WHERE schedule_id = $1 AND NOT manual ORDER BY fire_at`,
    [id],
  );
  return rows;
}

async function stopAll(nodes: PartitaNode[]): Promise<void> {
  for (const n of nodes.splice(0)) await n.stop({ graceMs: 500 }).catch(() => undefined);
}

test.serial('a schedule every second fires each second once, on time, and its jobs run', async (t) => {
  const db = await freshSchema('sched_basic');
  const nodes: PartitaNode[] = [];
  t.teardown(async () => {
    await stopAll(nodes);
    await db.drop();
  });
  nodes.push(await startNode(nodeOptions(db)));
  const api = schedules(nodes[0]!.client);
  t.true(
    // The default misfire policy (runOnce): a firing that a loaded machine delays past the next second
    // sees two occurrences, both within the grace, so both fire and none counts missed (CI once read
    // missedCount 1 when only the latest fired).
    await api.create({ id: 'every-second', cron: '* * * * * *', partition: 'p', type: 'tick', payload: { hello: 1 }, overlap: 'allow' }),
  );
  await until('five occurrences', async () => (await occurrences(db, 'every-second')).length >= 5, 20_000);
  const rows = await occurrences(db, 'every-second');
  for (let i = 1; i < rows.length; i++)
    t.is(rows[i]!.fire_at.getTime() - rows[i - 1]!.fire_at.getTime(), 1000, 'consecutive seconds, none skipped');
  t.true(rows.every((r) => r.outcome === 'enqueued' && r.job_id));
  const result = await nodes[0]!.client.result(rows[0]!.job_id!, { timeoutMs: 10_000 });
  t.deepEqual(result, { hello: 1 });
  const lag = await db.pool.query(
    `SELECT max(extract(epoch FROM j.created_at - o.fire_at)) AS lag FROM "${db.schema}".schedule_occurrences o JOIN "${db.schema}".jobs_history j ON j.id = o.job_id`,
  );
  t.log(`largest delay from fire time to enqueue: ${Number(lag.rows[0].lag) * 1000} ms`);
  t.true(Number(lag.rows[0].lag) < 1, 'enqueued within a second of the fire time');
  const record = (await api.get('every-second'))!;
  t.is(record.missedCount, 0);
  t.true(record.firedCount >= 5);
  t.true(record.nextFireAt! > record.lastFireAt!);
  t.is(record.source, 'api');

  // Changes: pause stops it, resume starts again from now (nothing owed for the pause), remove deletes it.
  await api.pause('every-second');
  const pausedAt = (await occurrences(db, 'every-second')).length;
  await sleep(2500);
  const afterPause = (await occurrences(db, 'every-second')).length;
  t.true(afterPause <= pausedAt + 1, 'at most the firing already under way finished after pause');
  t.is((await api.get('every-second'))!.nextFireAt, undefined);
  await api.resume('every-second');
  await until('firing again after resume', async () => (await occurrences(db, 'every-second')).length >= afterPause + 2, 10_000);
  t.is((await api.get('every-second'))!.missedCount, 0, 'the paused seconds are not missed occurrences');
  t.true(await api.remove('every-second'));
  t.false(await api.remove('every-second'));
  t.is(await api.get('every-second'), undefined);
  await t.throwsAsync(api.pause('every-second'), { instanceOf: UnknownScheduleError });
  await t.throwsAsync(api.create({ id: 'bad', cron: '* * *', partition: 'p', type: 'tick' }), { instanceOf: ValidationError });
});

test.serial('misfire policies after the whole cluster was down: skip, runOnce and backfill', async (t) => {
  const db = await freshSchema('sched_misfire');
  const nodes: PartitaNode[] = [];
  t.teardown(async () => {
    await stopAll(nodes);
    await db.drop();
  });
  // A node runs once (migrations, job types), then the whole cluster is down while the schedules
  // are created through a bare client, each due 1, 2 and 3 s later only; the cluster comes back
  // after 6 s, so all three occurrences are missed and the latest is 3 s late (past the grace).
  nodes.push(await startNode(nodeOptions(db, { misfireGraceMs: 500 })));
  await stopAll(nodes);
  const client = await connect({ postgres: db.url, schema: db.schema });
  t.teardown(() => client.close());
  const api = schedules(client);
  const base = Math.ceil(Date.now() / 1000) * 1000 + 1000;
  const due = [base, base + 1000, base + 2000];
  const cron = `${due.map((ms) => new Date(ms).getUTCSeconds()).join(',')} * * * * *`;
  for (const misfire of ['skip', 'runOnce', 'backfill'] as const) {
    await api.create({ id: misfire, cron, partition: 'p', type: 'tick', misfire, overlap: 'allow', payload: misfire });
  }
  await sleep(base + 5000 - Date.now());
  nodes.push(await startNode(nodeOptions(db, { misfireGraceMs: 500 })));
  await until(
    'the leader has walked past the outage',
    async () => {
      for (const id of ['skip', 'runOnce', 'backfill']) if (!((await api.get(id))!.nextFireAt!.getTime() > base + 2000)) return false;
      return true;
    },
    15_000,
  );
  const fired = async (id: string) => (await occurrences(db, id)).map((o) => o.fire_at.getTime());

  t.deepEqual(await fired('skip'), [], 'skip: nothing of the outage runs');
  t.is((await api.get('skip'))!.missedCount, 3);
  t.deepEqual(await fired('runOnce'), [due[2]], 'runOnce: the latest missed occurrence, once');
  t.is((await api.get('runOnce'))!.missedCount, 2);
  t.deepEqual(await fired('backfill'), due, 'backfill: every missed occurrence');
  t.is((await api.get('backfill'))!.missedCount, 0);
  const text = await nodes[0]!.metrics.scrape();
  t.regex(text, /partita_schedule_missed_total\{schedule="skip"[^}]*\} 3\n/);
  t.regex(text, /partita_schedule_missed_total\{schedule="runOnce"[^}]*\} 2\n/);
  t.regex(text, /partita_schedule_fired_total\{schedule="backfill"[^}]*\} 3\n/);
});

test.serial('overlap: skip enqueues nothing while the last job is live; allow does; trigger obeys it too', async (t) => {
  const db = await freshSchema('sched_overlap');
  const nodes: PartitaNode[] = [];
  t.teardown(async () => {
    await stopAll(nodes);
    await db.drop();
  });
  nodes.push(await startNode(nodeOptions(db)));
  const api = schedules(nodes[0]!.client);
  await api.create({ id: 'skip', cron: '* * * * * *', partition: 'p', type: 'slow' });
  await api.create({ id: 'allow', cron: '* * * * * *', partition: 'p', type: 'slow', overlap: 'allow' });
  await sleep(5200);
  await api.pause('skip');
  await api.pause('allow');
  const skip = await occurrences(db, 'skip');
  const allow = await occurrences(db, 'allow');
  const enqueued = skip.filter((o) => o.outcome === 'enqueued');
  t.true(
    skip.some((o) => o.outcome === 'overlap'),
    'some seconds were skipped for overlap',
  );
  t.true(enqueued.length <= 3, `a 2.5 s job every second: at most one live at a time (${enqueued.length} enqueued in 5 s)`);
  for (let i = 1; i < enqueued.length; i++) {
    t.true(enqueued[i]!.fire_at.getTime() - enqueued[i - 1]!.fire_at.getTime() >= slowMs, 'no new job before the last one finished');
  }
  t.is((await api.get('skip'))!.overlapSkipped, skip.filter((o) => o.outcome === 'overlap').length);
  t.true(allow.every((o) => o.outcome === 'enqueued'));
  t.true(allow.length >= 4, 'allow enqueues every second');
  const { rows } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".jobs WHERE type = 'slow' AND state = 'running'`);
  t.log(`running slow jobs at the end: ${rows[0].n}`);

  // trigger: an extra occurrence now; with a live job and overlap skip it enqueues nothing.
  await until('no live slow job of "skip"', async () => !(await api.get('skip'))!.lastJobLive, 10_000);
  const first = await api.trigger('skip');
  t.truthy(first.jobId);
  const second = await api.trigger('skip');
  t.is(second.skipped, 'overlap');
  t.is(second.jobId, undefined);
  await t.throwsAsync(api.trigger('nope'), { instanceOf: UnknownScheduleError });
});

test.serial('two firings of one schedule at once (two leaders, a deposed one): each occurrence once', async (t) => {
  const db = await freshSchema('sched_race');
  const nodes: PartitaNode[] = [];
  t.teardown(async () => {
    await stopAll(nodes);
    await db.drop();
  });
  // A node with the plugin's leader far away (it fires nothing on its own within the test).
  nodes.push(await startNode(nodeOptions(db, { misfireGraceMs: 60_000 })));
  const api = schedules(nodes[0]!.client);
  await api.create({ id: 'race', cron: '* * * * * *', partition: 'p', type: 'tick', misfire: 'backfill', overlap: 'allow' });
  await api.pause('race');
  // The schedule's cursor goes 20 s back, as if the cluster had been down; then both "leaders" fire.
  await db.pool.query(
    `UPDATE "${db.schema}".schedules SET paused = false, accounted_until = now() - interval '20 seconds', next_fire_at = now() WHERE id = 'race'`,
  );
  const store = nodes[0]!.client;
  const a = new ScheduleStore(db.pool, db.schema, (await import('@partita/client/internal')).clientStore(store));
  const b = new ScheduleStore(db.pool, db.schema, (await import('@partita/client/internal')).clientStore(store));
  const results = await Promise.all([a.fire('race', 60_000), b.fire('race', 60_000), a.fire('race', 60_000), b.fire('race', 60_000)]);
  const fired = results.flatMap((r) => r.enqueued);
  const rows = await occurrences(db, 'race');
  t.is(new Set(fired.map((f) => f.fireAt.getTime())).size, fired.length, 'no occurrence enqueued twice');
  t.is(rows.length, fired.length + rows.filter((r) => !fired.some((f) => f.fireAt.getTime() === r.fire_at.getTime())).length);
  t.true(rows.length >= 19, `the 20 s backlog was fired (${rows.length})`);
  const { rows: jobs } = await db.pool.query(
    `SELECT count(*)::int AS n FROM (SELECT id FROM "${db.schema}".jobs WHERE type = 'tick' UNION ALL SELECT id FROM "${db.schema}".jobs_history WHERE type = 'tick') j`,
  );
  t.is(jobs[0].n, rows.length, 'one job per occurrence');
});

test.serial('batched firings (fireMany) of overlapping schedule sets at once, and with fire(): each occurrence once', async (t) => {
  const db = await freshSchema('sched_batch');
  const nodes: PartitaNode[] = [];
  t.teardown(async () => {
    await stopAll(nodes);
    await db.drop();
  });
  nodes.push(await startNode(nodeOptions(db, { misfireGraceMs: 60_000 })));
  const api = schedules(nodes[0]!.client);
  const ids = ['b1', 'b2', 'b3', 'b4', 'b5'];
  for (const id of ids) await api.create({ id, cron: '* * * * * *', partition: 'p', type: 'tick', misfire: 'backfill', overlap: 'allow' });
  await api.create({ id: 'b-skip', cron: '* * * * * *', partition: 'p', type: 'slow', misfire: 'backfill', overlap: 'skip' });
  for (const id of [...ids, 'b-skip']) await api.pause(id);
  await db.pool.query(
    `UPDATE "${db.schema}".schedules SET paused = id = 'b5', accounted_until = now() - interval '10 seconds', next_fire_at = now()`,
  );
  const { clientStore } = await import('@partita/client/internal');
  const a = new ScheduleStore(db.pool, db.schema, clientStore(nodes[0]!.client));
  const b = new ScheduleStore(db.pool, db.schema, clientStore(nodes[0]!.client));
  const all = [...ids, 'b-skip'];
  // The node's own leader may have fired b5 between its create and its pause (a loaded machine): what
  // counts is that the batches add nothing to a paused schedule.
  const b5Before = (await occurrences(db, 'b5')).length;
  const [ra, rb, rc] = await Promise.all([a.fireMany(all, 60_000), b.fireMany(['b3', 'b2', 'b1', 'b-skip'], 60_000), a.fire('b4', 60_000)]);
  t.true(ra.get('b5')!.idle, 'a paused schedule is left alone');
  const fired = [...ra.entries(), ...rb.entries(), ['b4', rc] as const].flatMap(([id, r]) =>
    r.enqueued.map((e) => `${id}@${e.fireAt.getTime()}`),
  );
  t.is(new Set(fired).size, fired.length, 'no occurrence enqueued twice');
  for (const id of ['b1', 'b2', 'b3', 'b4']) {
    const rows = await occurrences(db, id);
    t.true(rows.length >= 9, `${id}: the 10 s backlog was fired (${rows.length})`);
    t.true(rows.every((r) => r.outcome === 'enqueued' && r.job_id));
  }
  t.is((await occurrences(db, 'b5')).length, b5Before, 'nothing fired for the paused b5');
  // The node's own leader may fire b-skip too; what the two batches did with its backlog is theirs alone.
  const mine = [ra.get('b-skip')!, rb.get('b-skip')!];
  const enqueuedByBatches = mine.reduce((n, r) => n + r.enqueued.length, 0);
  t.true(enqueuedByBatches <= 1, 'overlap: skip: at most the first of the backlog is enqueued, the rest wait on its live job');
  const skip = await occurrences(db, 'b-skip');
  const record = (await api.get('b-skip'))!;
  t.is(record.overlapSkipped, skip.filter((r) => r.outcome === 'overlap').length);
  t.is(record.firedCount, skip.filter((r) => r.outcome === 'enqueued').length);
  const { rows: jobs } = await db.pool.query(
    `SELECT count(*)::int AS n FROM (SELECT id FROM "${db.schema}".jobs UNION ALL SELECT id FROM "${db.schema}".jobs_history) j`,
  );
  const { rows: occ } = await db.pool.query(`SELECT count(*)::int AS n FROM "${db.schema}".schedule_occurrences WHERE job_id IS NOT NULL`);
  t.is(jobs[0].n, occ[0].n, 'one job per enqueued occurrence');
});

test.serial(
  'the leader’s wall clock steps an hour back in the middle of a round: it keeps firing every second (sleeps are measured on the monotonic clock)',
  async (t) => {
    const db = await freshSchema('sched_clockstep');
    const nodes: PartitaNode[] = [];
    const realNow = Date.now;
    t.teardown(async () => {
      Date.now = realNow;
      await stopAll(nodes);
      await db.drop();
    });
    const maxSleepMs = 20_000;
    nodes.push(
      await startNode(
        nodeOptions(db, {
          maxSleepMs,
          schedules: [{ id: 'steady', cron: '* * * * * *', partition: 'p', type: 'tick', misfire: 'backfill', overlap: 'allow' }],
        }),
      ),
    );
    await until('a first occurrence', async () => (await occurrences(db, 'steady')).length >= 1, 15_000);
    // The leader counts what it fired between its firing and the sleep it then computes: step the clock there.
    const fired = nodes[0]!.metrics.registry.getSingleMetric('partita_schedule_fired_total') as unknown as {
      inc: (...a: unknown[]) => void;
    };
    const inc = fired.inc.bind(fired);
    let steppedAt: number | undefined;
    fired.inc = (...args: unknown[]) => {
      if (steppedAt === undefined) {
        steppedAt = performance.now();
        Date.now = () => realNow() - 3_600_000;
      }
      inc(...args);
    };
    await until('the clock stepped back mid-round', async () => steppedAt !== undefined, 20_000);
    const { rows } = await db.pool.query<{ now: Date }>('SELECT clock_timestamp() AS now');
    const stepped = rows[0]!.now.getTime();
    await sleep(5000);
    const after = (
      await db.pool.query<{ fire_at: Date; lag_ms: number }>(
        `SELECT fire_at, (extract(epoch FROM claimed_at - fire_at) * 1000)::int AS lag_ms FROM "${db.schema}".schedule_occurrences
     WHERE schedule_id = 'steady' AND fire_at > $1 ORDER BY fire_at`,
        [new Date(stepped)],
      )
    ).rows;
    t.log(`after the step: ${after.length} occurrences in 5 s, claimed at most ${Math.max(...after.map((r) => r.lag_ms))} ms late`);
    t.true(after.length >= 3, `still firing every second (${after.length} in 5 s), not sleeping maxSleepMs (${maxSleepMs} ms)`);
    t.true(
      after.every((r) => r.lag_ms < 2000),
      'each claimed on time',
    );
  },
);
