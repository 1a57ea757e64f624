import { loadavg } from 'node:os';
import { performance } from 'node:perf_hooks';
import { cpuPerThousand, cpuSample, startCpuProfile, type CpuPerThousand, type CpuSample } from '../lib/cpu.js';
import { queryStatsTable, resetQueryStats } from '../lib/querystats.js';
import { round, sleep } from '../lib/stats.js';
import type { BenchJob, BenchSystem, JobRef } from '../systems/types.js';
import type { WorkloadContext } from './types.js';

export interface DrainPlan {
  jobs: number;
  batch: number;
  concurrency: number;
  /** Jobs queued beforehand that the draining workers must not run (0: none). */
  backlog: number;
  /**
   * Where the backlog sits: another queue of the partition (default, the depth run), or the
   * drained queue itself under one execution key whose holder is running (the hotkey run).
   */
  backlogKind?: 'queue' | 'hotkey';
  /** EXPLAIN ANALYZE the system's claim query once right after the backlog went in, with nothing else queued (the idle claim). */
  explainIdle?: boolean;
  /** EXPLAIN ANALYZE the system's claim query once, before the first measured drain (if --explain). */
  explain?: boolean;
  /** Builds job i's payload and group (default: an empty no-op payload). */
  job?: (i: number) => BenchJob;
}

/** One enqueue-then-drain measurement. */
export interface DrainRun {
  enqueueMs: number;
  enqueuePerSec: number;
  /** First handler start → every job finished in the database. */
  processMs: number;
  processPerSec: number;
  /** startWorkers() called → first handler start (not in processMs). */
  startupMs: number;
  /** First → last handler start. */
  handlersMs: number;
  /** Last handler start → the poll that saw every job finished returned (completion flush + one poll); null if timed out. */
  flushMs: number | null;
  processed: number;
  /** Handler calls in the measured drain (more than jobs: some ran twice). */
  handlerCalls: number;
  duplicates: number;
  timedOut: boolean;
  /** 1-minute load average when the drain started: other work on the machine skews results. */
  loadAvg1m: number;
  /** CPU ms per 1,000 jobs from the workers' start to the end of the drain: this process, Postgres, NATS. */
  cpuMsPerThousandJobs: CpuPerThousand;
}

/** The median run (by process rate) with the median enqueue rate across runs, and every run's rates. */
export interface DrainResult extends DrainRun {
  jobs: number;
  repeat: number;
  runs: {
    enqueuePerSec: number;
    processPerSec: number;
    processMs: number;
    flushMs: number | null;
    handlerCalls: number;
    duplicates: number;
    timedOut: boolean;
    loadAvg1m: number;
    cpuMsPerThousandJobs: CpuPerThousand;
  }[];
  backlog?: { jobs: number; insertMs: number; insertPerSec: number; vacuumAnalyzeMs: number; how: string };
  explain?: string;
  /** The claim's plan with only the backlog queued (explainIdle). */
  explainIdle?: string;
}

const emptyJob = (): BenchJob => ({ payload: {} });
/** The measured jobs carry `{ n }` so a job run twice is seen (a no-op payload otherwise). */
const numberedJob = (i: number): BenchJob => ({ payload: { n: i } });

async function enqueueInBatches(system: BenchSystem, jobs: BenchJob[][]): Promise<JobRef[]> {
  const refs: JobRef[] = [];
  for (const batch of jobs) {
    const ids = await system.enqueueMany(batch);
    for (const id of ids) refs.push(id);
  }
  return refs;
}

function makeBatches(count: number, size: number, job: (i: number) => BenchJob): BenchJob[][] {
  const batches: BenchJob[][] = [];
  for (let i = 0; i < count; i += size) {
    const n = Math.min(size, count - i);
    batches.push(Array.from({ length: n }, (_, k) => job(i + k)));
  }
  return batches;
}

/** While the newest refs are unfinished, waitFinished asks for this many of them... */
const TAIL_REFS = 100;
/** ...and, every HEAD_EVERY polls, for this many of the oldest refs not yet seen finished. */
const HEAD_REFS = 2_000;
const HEAD_EVERY = 10;
/** Pause between those polls (a poll of the tail and head alone costs Postgres about 0.3 ms). */
const TAIL_POLL_MS = 2;
/**
 * Between a workflow run's polls (seconds long, so 20 ms is under 1 % of it): asked every 2 ms, its
 * polls (a plan over every start-day partition of wf_workflows at each bind) took ~14 % of a core
 * beside a 3.5 s run.
 */
export const WORKFLOW_POLL_MS = 20;

/**
 * Polls until the database shows none of refs unfinished; returns when the first empty poll
 * returned (an upper bound: never flatters a system), or undefined at the deadline.
 *
 * Jobs are claimed oldest first, so while any of the newest TAIL_REFS is unfinished the drain is
 * not over, and polls ask for those, and now and then for the oldest refs not yet seen finished
 * (a finished job stays finished), until then; then for every ref not yet seen finished. Asked for
 * every ref at every poll, a caller that polls through the drain (the cluster workload, whose jobs
 * run in other processes) sent up to 100,000 ids per poll: 1.4–1.7 s of Postgres bind and execute
 * per 100,000-job drain against 3.8–4.6 s for the claims, on the drain's two cores; and one final
 * poll of all 100,000 took 0.4–1.9 s at load average 6–12, counted in the drain. A system that does
 * not finish its newest jobs last loses nothing: its tail comes back finished at once and the polls
 * after it ask for what remains, as before.
 */
export function waitFinished(system: BenchSystem, refs: JobRef[], deadline: number): Promise<number | undefined> {
  return waitUntilFinished((asked) => system.unfinished(asked), refs, deadline);
}

/**
 * waitFinished with any question "which of these are not finished yet?" (a workflow bench asks
 * its workflows' table): the same small polls, tail and head, whatever the things are.
 */
export async function waitUntilFinished(
  unfinished: (refs: string[]) => Promise<string[]>,
  refs: string[],
  deadline: number,
  pollMs = TAIL_POLL_MS,
): Promise<number | undefined> {
  // refs[next...] are not yet asked for; stragglers were asked for and were unfinished.
  let next = 0;
  let stragglers: JobRef[] = [];
  let tail = refs.length > TAIL_REFS + HEAD_REFS ? refs.slice(-TAIL_REFS) : [];
  const tailFrom = refs.length - tail.length;
  for (let poll = 0; tail.length > 0; poll++) {
    // At most HEAD_REFS: refs the drain has not reached yet stay stragglers, and take the place of new ones.
    const headPoll = poll % HEAD_EVERY === 0;
    const upTo = headPoll ? Math.min(tailFrom, next + HEAD_REFS - stragglers.length) : next;
    const head = headPoll ? [...stragglers, ...refs.slice(next, upTo)] : [];
    const left = new Set(await unfinished([...head, ...tail]));
    if (headPoll) {
      stragglers = head.filter((r) => left.has(r));
      next = upTo;
    }
    tail = tail.filter((r) => left.has(r));
    if (tail.length === 0) break;
    if (performance.now() > deadline) return undefined;
    await sleep(pollMs);
  }
  let remaining = [...stragglers, ...refs.slice(next, tailFrom)];
  for (;;) {
    remaining = await unfinished(remaining);
    if (remaining.length === 0) return performance.now();
    if (performance.now() > deadline) return undefined;
    await sleep(1);
  }
}

/** Starts workers, runs `count` jobs through them untimed, stops them: JIT, statements, pools, queue registration (with `job`'s groups, if given). */
export async function warmUp(
  ctx: WorkloadContext,
  system: BenchSystem,
  count: number,
  batch: number,
  concurrency: number,
  job?: (i: number) => BenchJob,
): Promise<void> {
  await system.startWorkers({ concurrency });
  try {
    if (count === 0) return;
    ctx.probe.reset();
    // A custom plan warms up its own path (e.g. execution keys) with the same groups, empty payloads.
    const warmJob = job ? (i: number): BenchJob => ({ ...job(i), payload: {} }) : emptyJob;
    const refs = await enqueueInBatches(system, makeBatches(count, batch, warmJob));
    const deadline = performance.now() + ctx.options.drainTimeoutS * 1000;
    if (!(await ctx.probe.waitForStarts(count, ctx.options.drainTimeoutS * 1000)))
      throw new Error(`warm-up: only ${ctx.probe.started}/${count} jobs started`);
    if ((await waitFinished(system, refs, deadline)) === undefined) throw new Error('warm-up: jobs never finished in the database');
  } finally {
    await system.stopWorkers();
    ctx.probe.reset();
  }
}

/** Untimed housekeeping before each measured run, the same for every system: VACUUM ANALYZE (the bench server may run without autovacuum) and a CHECKPOINT. */
async function settle(ctx: WorkloadContext, system: BenchSystem): Promise<void> {
  await system.vacuum();
  await ctx.admin.query('CHECKPOINT').catch(() => undefined);
}

function describeCpu(c: CpuPerThousand): string {
  return `this process ${c.bench}, postgres ${c.postgres} (its own backends ${c.postgresOwn}), nats ${c.nats}`;
}

function median<T>(items: T[], key: (t: T) => number): T {
  const sorted = [...items].sort((a, b) => key(a) - key(b));
  return sorted[Math.floor((sorted.length - 1) / 2)]!;
}

/** Warm EXPLAIN ANALYZE runs of the idle claim (hotkey); the median is reported. */
const IDLE_CLAIM_RUNS = 5;

/** The plan whose planning + execution time is the median of the runs'. */
function medianPlan(plans: string[]): string {
  const total = (plan: string) =>
    Number(/Planning Time: ([\d.]+) ms/.exec(plan)?.[1] ?? 0) + Number(/Execution Time: ([\d.]+) ms/.exec(plan)?.[1] ?? 0);
  return median(plans, total);
}

/** Warm-up, backlog (and the idle claim's plan), discarded warm-up runs: everything before the measured runs. */
async function prepare(
  ctx: WorkloadContext,
  system: BenchSystem,
  plan: DrainPlan,
): Promise<{ backlog?: DrainResult['backlog']; explainIdle?: string }> {
  const { options } = ctx;
  await warmUp(ctx, system, options.warmup, plan.batch, plan.concurrency, plan.job);

  let backlog: DrainResult['backlog'];
  let explainIdle: string | undefined;
  if (plan.backlog > 0) {
    const hot = plan.backlogKind === 'hotkey';
    ctx.log(`${system.name}: inserting ${plan.backlog.toLocaleString()} ${hot ? 'hot-key' : 'backlog'} jobs…`);
    if (hot && !system.insertHotKey) throw new Error(`${system.name} has no hot-key backlog (insertHotKey)`);
    const b = hot ? await system.insertHotKey!(plan.backlog) : await system.insertBacklog(plan.backlog);
    backlog = {
      jobs: plan.backlog,
      insertMs: round(b.insertMs),
      insertPerSec: round(plan.backlog / (b.insertMs / 1000)),
      vacuumAnalyzeMs: round(b.vacuumAnalyzeMs),
      how: b.how,
    };
    ctx.log(
      `${system.name}: backlog inserted in ${(b.insertMs / 1000).toFixed(1)} s, VACUUM ANALYZE ${(b.vacuumAnalyzeMs / 1000).toFixed(1)} s`,
    );
    if (plan.explainIdle && system.explainClaim) {
      // The first run reads the index into the cache and warms the backend's catalog caches (on a
      // fresh connection its planning alone took 14 ms, the next runs ~0.6); the claim a polling
      // node pays is one of many on a warm connection, so the median of the next five is reported
      // (one run of two read 12.6 ms at load 5 on this 2-core machine, its neighbours ~1).
      await system.explainClaim();
      const runs: string[] = [];
      for (let i = 0; i < IDLE_CLAIM_RUNS; i++) runs.push(await system.explainClaim());
      explainIdle = medianPlan(runs);
    }
  }

  for (let r = 0; r < options.warmupRuns; r++) {
    await settle(ctx, system);
    const run = await measureOnce(ctx, system, plan);
    ctx.log(`${system.name}: warm-up run ${r + 1}/${options.warmupRuns} (discarded): process ${run.processPerSec.toLocaleString()} jobs/s`);
  }
  return { ...(backlog ? { backlog } : {}), ...(explainIdle ? { explainIdle } : {}) };
}

/** One settled, measured run, logged. */
async function measuredRun(ctx: WorkloadContext, system: BenchSystem, plan: DrainPlan, r: number, onExplain?: (plan: string) => void) {
  await settle(ctx, system);
  const run = await measureOnce(ctx, system, plan, onExplain);
  ctx.log(
    `${system.name}${plan.backlog > 0 ? ` (backlog ${plan.backlog.toLocaleString()})` : ''}: run ${r + 1}/${ctx.options.repeat}: enqueue ${run.enqueuePerSec.toLocaleString()} jobs/s, process ${run.processPerSec.toLocaleString()} jobs/s${run.timedOut ? ' (TIMED OUT)' : ''}; CPU ms per 1k jobs: ${describeCpu(run.cpuMsPerThousandJobs)}`,
  );
  return run;
}

function summarize(
  plan: DrainPlan,
  runs: DrainRun[],
  before: { backlog?: DrainResult['backlog']; explainIdle?: string },
  explain?: string,
): DrainResult {
  const mid = median(runs, (x) => x.processPerSec);
  const enqueueMid = median(runs, (x) => x.enqueuePerSec);
  return {
    jobs: plan.jobs,
    repeat: runs.length,
    ...mid,
    enqueueMs: enqueueMid.enqueueMs,
    enqueuePerSec: enqueueMid.enqueuePerSec,
    runs: runs.map((x) => ({
      enqueuePerSec: x.enqueuePerSec,
      processPerSec: x.processPerSec,
      processMs: x.processMs,
      flushMs: x.flushMs,
      handlerCalls: x.handlerCalls,
      duplicates: x.duplicates,
      timedOut: x.timedOut,
      loadAvg1m: x.loadAvg1m,
      cpuMsPerThousandJobs: x.cpuMsPerThousandJobs,
    })),
    ...(before.backlog ? { backlog: before.backlog } : {}),
    ...(explain ? { explain } : {}),
    ...(before.explainIdle ? { explainIdle: before.explainIdle } : {}),
  };
}

/**
 * The throughput measurement: warm up, (insert the backlog,) then `repeat` times: enqueue `jobs` in
 * batches with no worker running, start the workers and time the drain.
 */
export async function enqueueThenDrain(ctx: WorkloadContext, system: BenchSystem, plan: DrainPlan): Promise<DrainResult> {
  const [result] = await drainsSideBySide(ctx, [{ system, plan }]);
  return result!;
}

/**
 * Two measurements of one system side by side (two instances, each its own schema), their runs
 * alternating — a, b, then b, a, … — so that what changes over a session (the process's JIT
 * settling, the machine's other work) falls on both alike: the depth workload's drains and their
 * plain baseline. Each run of a pair is settled and measured as enqueueThenDrain's are.
 */
export async function alternatingDrains(
  ctx: WorkloadContext,
  a: { system: BenchSystem; plan: DrainPlan },
  b: { system: BenchSystem; plan: DrainPlan },
): Promise<[DrainResult, DrainResult]> {
  const [ra, rb] = await drainsSideBySide(ctx, [a, b]);
  return [ra!, rb!];
}

/**
 * The measurement of each side (prepared one after the other), their measured runs taken in turns,
 * the order reversed every other round. Rounds stop early once they have used the drain budget (per
 * side), so a slow system stays bounded, and after a round in which a run timed out.
 */
async function drainsSideBySide(ctx: WorkloadContext, sides: { system: BenchSystem; plan: DrainPlan }[]): Promise<DrainResult[]> {
  const { options } = ctx;
  const before: Awaited<ReturnType<typeof prepare>>[] = [];
  for (const { system, plan } of sides) before.push(await prepare(ctx, system, plan));
  const runs: DrainRun[][] = sides.map(() => []);
  const explain: (string | undefined)[] = sides.map(() => undefined);
  const order = sides.map((_, i) => i);
  const budgetS = sides.length * options.drainTimeoutS;
  const budgetEnd = performance.now() + budgetS * 1000;
  for (let r = 0; r < options.repeat; r++) {
    if (r > 0 && performance.now() > budgetEnd) {
      const what = sides.length > 1 ? 'rounds of runs' : 'runs';
      ctx.log(`${sides[0]!.system.name}: ${r} of ${options.repeat} ${what} fit in the ${budgetS} s budget; reporting those`);
      break;
    }
    let timedOut = false;
    for (const i of r % 2 === 0 ? order : [...order].reverse()) {
      const { system, plan } = sides[i]!;
      const run = await measuredRun(
        ctx,
        system,
        plan,
        r,
        r === 0 && options.explain && plan.explain ? (text) => (explain[i] = text) : undefined,
      );
      runs[i]!.push(run);
      timedOut ||= run.timedOut;
    }
    if (timedOut) break;
  }
  return sides.map((side, i) => summarize(side.plan, runs[i]!, before[i]!, explain[i]));
}

async function measureOnce(
  ctx: WorkloadContext,
  system: BenchSystem,
  plan: DrainPlan,
  onExplain?: (plan: string) => void,
): Promise<DrainRun> {
  const { options, probe } = ctx;
  const batches = makeBatches(plan.jobs, plan.batch, plan.job ?? numberedJob);
  const t0 = performance.now();
  const refs = await enqueueInBatches(system, batches);
  const enqueueMs = performance.now() - t0;
  if (refs.length !== plan.jobs) throw new Error(`enqueue returned ${refs.length} ids for ${plan.jobs} jobs`);

  if (onExplain && system.explainClaim) onExplain(await system.explainClaim());
  await ctx.admin.query('SELECT 1'); // the poll connection is open before the clock starts

  probe.reset();
  probe.track(plan.jobs);
  if (options.queryStats) resetQueryStats();
  const timeoutMs = options.drainTimeoutS * 1000;
  const load = loadavg()[0] ?? 0;
  const stopProfile = options.cpuProfile ? await startCpuProfile(options.cpuProfile, `${system.name}-${Date.now()}`) : undefined;
  const startCalled = performance.now();
  const deadline = startCalled + timeoutMs;
  await system.startWorkers({ concurrency: plan.concurrency });
  const cpuBefore = cpuSample('before');
  let finishedAt: number | undefined;
  let timedOut = false;
  let cpuAfter: CpuSample | undefined;
  try {
    const allStarted = await probe.waitForStarts(plan.jobs, Math.max(0, deadline - performance.now()));
    if (allStarted) finishedAt = await waitFinished(system, refs, deadline);
    timedOut = finishedAt === undefined;
  } finally {
    // Stop before anything else touches the database, so the next run starts quiet.
    finishedAt ??= performance.now();
    cpuAfter = cpuSample('after');
    if (stopProfile) ctx.log(`${system.name}: CPU profile of the drain: ${await stopProfile()}`);
    if (options.queryStats) ctx.log(`${system.name}: statements during the drain (start → all finished):\n${queryStatsTable()}`);
    await system.stopWorkers();
  }
  const first = probe.firstStartAt ?? finishedAt;
  const distinct = probe.distinct();
  const processed = timedOut ? distinct : plan.jobs;
  if (!timedOut && distinct !== plan.jobs && !plan.job)
    throw new Error(`only ${distinct} of ${plan.jobs} distinct jobs ran, yet the database shows them all finished`);
  const processMs = finishedAt - first;
  const run: DrainRun = {
    enqueueMs: round(enqueueMs),
    enqueuePerSec: round(plan.jobs / (enqueueMs / 1000)),
    processMs: round(processMs),
    processPerSec: round(processed / (processMs / 1000)),
    startupMs: round(first - startCalled),
    handlersMs: round((probe.lastStartAt ?? first) - first),
    flushMs: timedOut ? null : round(finishedAt - (probe.lastStartAt ?? first)),
    processed,
    handlerCalls: probe.started,
    duplicates: probe.duplicates,
    timedOut,
    loadAvg1m: round(load),
    cpuMsPerThousandJobs: cpuPerThousand(cpuBefore, cpuAfter!, processed),
  };
  probe.reset();
  return run;
}
