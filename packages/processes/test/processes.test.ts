/**
 * Background processes on real nodes (Postgres, NATS, in-process nodes with the plugin): a run over
 * the work items with stats, registerWork idempotence, cleanup of unregistered items, merging admin
 * changes into a run under way, the error budget, pause, and the HTTP routes.
 */
import test from 'ava';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { defineProcess, processes, processesPlugin, UnknownProcessError, type ResolvedProcess, type RunOutcome } from '@partita/processes';
import { capturingLogger, freshSchema, natsUrl, tempDataDir, until, type TestSchema } from '../../../test/helpers/index.js';

const noop = async () => undefined;

/** Defaults that make a process run only when triggered, and save at every progress(). */
const QUICK = {
  scheduleMs: 3_600_000,
  minScheduleMs: 1000,
  initialWaitMs: 3_600_000,
  progressMs: 1,
  leaseMs: 3000,
  jitterMs: 0,
  settings: {},
};

async function nodeWith(
  db: TestSchema,
  defs: ResolvedProcess<any, any>[],
  ends: [string, RunOutcome][],
  http = false,
): Promise<PartitaNode> {
  return startNode({
    postgres: { connectionString: db.url, max: 6 },
    schema: db.schema,
    nats: { servers: [await natsUrl()] },
    cluster: db.schema,
    persister: 'postgres',
    dataDir: tempDataDir('processes'),
    partitions: { p: { queues: { default: { concurrency: 1 } } } },
    jobs: [defineJob({ type: 'noop', perform: () => undefined })],
    plugins: [processesPlugin({ processes: defs, onProcessRunEnd: (name, outcome) => ends.push([name, outcome]) })],
    logger: capturingLogger('error').logger,
    ...(http ? { http: { port: 0 } } : {}),
  });
}

const runsOf = (ends: [string, RunOutcome][], name: string) => ends.filter(([n]) => n === name).map(([, o]) => o);

test.serial('a run walks the sorted active items; unregistered ones are cleaned up next run, then dropped', async (t) => {
  const db = await freshSchema('proc_life');
  const seen: [string, unknown][][] = [[]];
  const cleaned: string[] = [];
  const ends: [string, RunOutcome][] = [];
  const def = defineProcess<Record<string, unknown>, { n: number }>({
    ...QUICK,
    name: 'life',
    async processActiveWork(ctx, name, work) {
      seen[seen.length - 1]!.push([name, work.params.n]);
      ctx.addStats(work.params.n, 'units', name);
      ctx.addStats(1, 'visits');
    },
    async cleanupWork(_ctx, name) {
      cleaned.push(name);
    },
  });
  const node = await nodeWith(db, [def], ends, true);
  t.teardown(async () => {
    await node.stop({ graceMs: 500 }).catch(() => undefined);
    await db.drop();
  });
  const api = processes(node.client);
  t.true(await api.registerWork('life', 'c', { n: 3 }));
  t.true(await api.registerWork('life', 'a', { n: 1 }));
  t.true(await api.registerWork('life', 'b', { n: 2 }));
  t.false(await api.registerWork('life', 'a', { n: 1 }), 'equal params: nothing changes');
  await t.throwsAsync(api.registerWork('nope', 'a'), { instanceOf: UnknownProcessError });

  await api.trigger('life');
  await until('the first run ends', async () => runsOf(ends, 'life').length === 1, 15_000);
  t.deepEqual(runsOf(ends, 'life'), ['completed']);
  t.deepEqual(seen[0], [
    ['a', 1],
    ['b', 2],
    ['c', 3],
  ]);
  let record = (await api.get('life'))!;
  t.is(record.lastRun!.state, 'completed');
  t.is(record.lastRun!.stats.workItems, 3);
  t.is(record.lastRun!.stats['work.units'], 6);
  t.is(record.aggregate.runs, 1);
  t.is(record.aggregate['state.completed'], 1);
  t.is(record.work!.find((w) => w.name === 'b')!.status!.stats.units, 2);
  t.true(record.work!.every((w) => w.status?.state === 'completed'));

  t.true(await api.unregisterWork('life', 'b'));
  t.false(await api.unregisterWork('life', 'b'), 'already on cleanup');
  seen.push([]);
  await api.trigger('life');
  await until('the second run ends', async () => runsOf(ends, 'life').length === 2, 15_000);
  t.deepEqual(seen[1], [
    ['a', 1],
    ['c', 3],
  ]);
  t.deepEqual(cleaned, ['b']);
  record = (await api.get('life'))!;
  t.is(record.work!.find((w) => w.name === 'b')!.list, 'dropped');
  t.deepEqual(record.counts, { active: 2, cleanup: 0, dropped: 1 });
  t.is(record.aggregate.runs, 2);
  t.is(record.aggregate.visits, 5);
  t.is(record.aggregate.workItemsCleaned, 1);
  t.true(await api.registerWork('life', 'b', { n: 5 }), 'a dropped item can come back');

  // HTTP
  const base = `http://127.0.0.1:${node.http!.port}`;
  const list = (await (await fetch(`${base}/processes`)).json()) as { name: string }[];
  t.deepEqual(
    list.map((p) => p.name),
    ['life'],
  );
  const one = (await (await fetch(`${base}/processes/life`)).json()) as { work: unknown[]; lastRun: { runNo: number } };
  t.is(one.work.length, 3);
  t.is(one.lastRun.runNo, 2);
  t.is((await fetch(`${base}/processes/nope`)).status, 404);
  const paused = await fetch(`${base}/processes/life/pause`, { method: 'POST' });
  t.is(paused.status, 200);
  t.is(((await paused.json()) as { paused: boolean }).paused, true);
  await fetch(`${base}/processes/life/trigger`, { method: 'POST' });
  await new Promise((r) => setTimeout(r, 800));
  t.is(runsOf(ends, 'life').length, 2, 'paused: a trigger starts no run');
  t.is((await fetch(`${base}/processes/life/resume`, { method: 'POST' })).status, 200);
  await until('the triggered run starts once resumed', async () => runsOf(ends, 'life').length === 3, 15_000);
  t.is((await fetch(`${base}/processes/life/explode`, { method: 'POST' })).status, 404);
});

test.serial(
  'admin changes during a run are merged: status kept, new params taken, new items wait, unregistered go to cleanup',
  async (t) => {
    const db = await freshSchema('proc_merge');
    const ends: [string, RunOutcome][] = [];
    const seen: [string, unknown, unknown][] = [];
    const cleaned: string[] = [];
    const results: string[] = [];
    let open!: () => void;
    const gate = new Promise<void>((resolve) => (open = resolve));
    let inA = false;
    const def = defineProcess<{ level: number }, { v: number }>({
      ...QUICK,
      progressMs: 60_000, // only an announced change makes progress() write before a minute
      settings: { level: 1 },
      name: 'merge',
      async processActiveWork(ctx, name, work) {
        if (name === 'a' && !inA) {
          inA = true;
          await gate;
          results.push(await ctx.progress());
          results.push(await ctx.progress());
        }
        seen.push([name, work.params.v, ctx.settings.level]);
      },
      async cleanupWork(_ctx, name) {
        cleaned.push(name);
      },
    });
    const node = await nodeWith(db, [def], ends);
    t.teardown(async () => {
      await node.stop({ graceMs: 500 }).catch(() => undefined);
      await db.drop();
    });
    const api = processes(node.client);
    for (const n of ['a', 'b', 'c']) await api.registerWork('merge', n, { v: 1 });
    await api.trigger('merge');
    await until('item a is under way', async () => inA, 15_000);
    await api.registerWork('merge', 'b', { v: 2 });
    await api.unregisterWork('merge', 'c');
    await api.registerWork('merge', 'z', { v: 1 });
    await api.updateSettings('merge', { level: 2 });
    await new Promise((r) => setTimeout(r, 300)); // the announcement reaches the owner
    open();
    await until('the run ends', async () => ends.length === 1, 15_000);
    t.deepEqual(results, ['merged', 'none'], 'the announced change is merged at once; nothing new to save right after');
    t.deepEqual(seen, [
      ['a', 1, 2],
      ['b', 2, 2],
    ]);
    t.deepEqual(cleaned, [], 'c was unregistered during the run: cleaned up in the next one');
    let record = (await api.get('merge'))!;
    t.is(record.work!.find((w) => w.name === 'c')!.list, 'cleanup');
    t.is(record.work!.find((w) => w.name === 'b')!.status!.state, 'completed', "b's status survived its new params");
    t.is(record.work!.find((w) => w.name === 'z')!.status, null, 'z waits for the next run');

    seen.length = 0;
    await api.trigger('merge');
    await until('the next run ends', async () => ends.length === 2, 15_000);
    t.deepEqual(
      seen.map(([n]) => n),
      ['a', 'b', 'z'],
    );
    t.deepEqual(cleaned, ['c']);
    record = (await api.get('merge'))!;
    t.is(record.work!.find((w) => w.name === 'c')!.list, 'dropped');
  },
);

test.serial('the error budget: the error past the per-item cap or the per-run cap aborts the run', async (t) => {
  const db = await freshSchema('proc_errors');
  const ends: [string, RunOutcome][] = [];
  const visited: string[] = [];
  const itemCalls: Record<string, number> = {};
  const perRun = defineProcess({
    ...QUICK,
    name: 'per-run',
    maxErrorsPerRun: 3,
    async processActiveWork(_ctx, name) {
      visited.push(name);
      throw new Error(`${name} failed`);
    },
    cleanupWork: noop,
  });
  const perItem = defineProcess({
    ...QUICK,
    name: 'per-item',
    maxErrorsPerItem: 4,
    async processActiveWork(ctx, name) {
      for (;;) {
        itemCalls[name] = (itemCalls[name] ?? 0) + 1;
        if (ctx.addError(new Error(`try ${itemCalls[name]}`), name) === 'abort') return;
      }
    },
    cleanupWork: noop,
  });
  const node = await nodeWith(db, [perRun, perItem], ends);
  t.teardown(async () => {
    await node.stop({ graceMs: 500 }).catch(() => undefined);
    await db.drop();
  });
  const api = processes(node.client);
  for (const n of ['i1', 'i2', 'i3', 'i4', 'i5']) await api.registerWork('per-run', n);
  await api.registerWork('per-item', 'x');
  await api.registerWork('per-item', 'y');
  await api.trigger('per-run');
  await api.trigger('per-item');
  await until('both runs end', async () => ends.length === 2, 15_000);

  t.deepEqual(runsOf(ends, 'per-run'), ['aborted']);
  t.deepEqual(visited, ['i1', 'i2', 'i3', 'i4'], 'the fourth error aborts; i5 is not visited');
  const run = (await api.get('per-run'))!;
  t.is(run.lastRun!.state, 'aborted');
  t.is(run.lastRun!.errors!.total, 4);
  t.is(run.lastRun!.errors!.first[0]!.message, 'i1 failed');
  t.truthy(run.lastRun!.errors!.lastAt);
  const states = Object.fromEntries(run.work!.map((w) => [w.name, w.status?.state ?? null]));
  t.deepEqual(states, { i1: 'incomplete', i2: 'incomplete', i3: 'incomplete', i4: 'aborted', i5: null });
  t.is(run.aggregate['state.aborted'], 1);

  t.deepEqual(itemCalls, { x: 5 }, 'the fifth error on one item is past its cap of 4');
  const item = (await api.get('per-item'))!;
  t.deepEqual(runsOf(ends, 'per-item'), ['aborted'], 'an abort ends the run even when the worker returns normally after it');
  t.is(item.work!.find((w) => w.name === 'x')!.status!.state, 'aborted');
  t.is(item.work!.find((w) => w.name === 'x')!.status!.errors.total, 5);
  t.is(item.work!.find((w) => w.name === 'y')!.status, null, 'y is not visited');
  t.is(item.lastRun!.errors!.total, 5);
});

/** The value of the sample `name` whose labels include all of `labels`, from a /metrics text; undefined when absent. */
function sample(text: string, name: string, labels: Record<string, string>): number | undefined {
  for (const line of text.split('\n')) {
    const m = /^([a-z_]+)\{([^}]*)\} (\S+)$/.exec(line);
    if (!m || m[1] !== name) continue;
    if (Object.entries(labels).every(([k, v]) => m[2]!.split(',').includes(`${k}="${v}"`))) return Number(m[3]);
  }
  return undefined;
}

test.serial('process metrics on /metrics: runs by result, errors, run durations, and ownership while a run is under way', async (t) => {
  const db = await freshSchema('proc_metrics');
  const ends: [string, RunOutcome][] = [];
  let letGo!: () => void;
  let held = new Promise<void>((resolve) => (letGo = resolve));
  const def = defineProcess({
    ...QUICK,
    name: 'metered',
    async processActiveWork(ctx, name) {
      if (name === 'hold') await held;
      if (name === 'fail') throw new Error('no luck this time');
      ctx.addStats(1, 'done', name);
    },
    cleanupWork: noop,
  });
  const node = await nodeWith(db, [def], ends, true);
  t.teardown(async () => {
    letGo();
    await node.stop({ graceMs: 500 }).catch(() => undefined);
    await db.drop();
  });
  const metrics = async () => (await fetch(`http://127.0.0.1:${node.http!.port}/metrics`)).text();
  const before = await metrics();
  t.is(sample(before, 'partita_process_owned', { process: 'metered' }), 0, 'shown before any run');
  t.is(sample(before, 'partita_process_errors_total', { process: 'metered' }), 0);

  const api = processes(node.client);
  await api.registerWork('metered', 'fail', {});
  await api.registerWork('metered', 'hold', {});
  await api.registerWork('metered', 'ok', {});
  await api.trigger('metered');
  await until(
    'the run owns the process',
    async () => sample(await metrics(), 'partita_process_owned', { process: 'metered' }) === 1,
    15_000,
  );
  letGo();
  await until('the run ends', async () => runsOf(ends, 'metered').length === 1, 15_000);
  t.deepEqual(runsOf(ends, 'metered'), ['incomplete'], 'an item failed within the budget');

  held = Promise.resolve();
  await api.unregisterWork('metered', 'fail');
  await api.trigger('metered');
  await until('the second run ends', async () => runsOf(ends, 'metered').length === 2, 15_000);
  t.deepEqual(runsOf(ends, 'metered'), ['incomplete', 'completed']);

  const after = await metrics();
  t.is(sample(after, 'partita_process_runs_total', { process: 'metered', result: 'incomplete' }), 1);
  t.is(sample(after, 'partita_process_runs_total', { process: 'metered', result: 'completed' }), 1);
  t.is(sample(after, 'partita_process_errors_total', { process: 'metered' }), 1);
  t.is(sample(after, 'partita_process_run_duration_seconds_count', { process: 'metered', result: 'incomplete' }), 1);
  t.is(sample(after, 'partita_process_run_duration_seconds_count', { process: 'metered', result: 'completed' }), 1);
  t.true(sample(after, 'partita_process_run_duration_seconds_sum', { process: 'metered', result: 'incomplete' })! > 0);
  t.is(sample(after, 'partita_process_owned', { process: 'metered' }), 0, 'no run under way');
  const durationMs = (await api.get('metered'))!.aggregate.durationMs!;
  t.true(durationMs > 0 && durationMs < 60_000, `the aggregate's durationMs (${durationMs}) is of the database's clock, both ends`);
});
