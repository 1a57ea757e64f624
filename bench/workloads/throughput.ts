import { ratio } from '../lib/stats.js';
import { alternatingDrains, enqueueThenDrain, type DrainPlan, type DrainResult } from './drain.js';
import type { BenchSystem, SystemFactory } from '../systems/types.js';
import type { Workload, WorkloadContext } from './types.js';

export const ENQUEUE_TARGET_PER_SEC = 40_000;
export const PROCESS_TARGET_RATIO = 1.5;

/** Runs the plain throughput measurement for every selected system. */
export async function plainThroughput(ctx: WorkloadContext, workload: string): Promise<Map<string, DrainResult>> {
  const out = new Map<string, DrainResult>();
  for (const factory of ctx.systems) {
    const result = await ctx.withSystem(factory, workload, async (system) => {
      ctx.log(`${workload}: ${system.name}…`);
      const r = await enqueueThenDrain(ctx, system, {
        jobs: ctx.options.jobs,
        batch: ctx.options.batch,
        concurrency: ctx.options.concurrency,
        backlog: 0,
      });
      return { r, info: system.info() };
    });
    if (result) out.set(factory.name, result.r);
    if (result && workload === 'throughput') {
      ctx.emit({
        workload,
        system: factory.name,
        ...result.r,
        batch: ctx.options.batch,
        concurrency: ctx.options.concurrency,
        info: result.info,
      });
    }
  }
  return out;
}

/**
 * A workload's drains (`plan`) alternating with plain drains of the same shape, each side in a schema
 * of its own (plain, varied, then varied, plain, …), the baseline of the workloads that vary the plain
 * run (depth, keys, hotkey). A plain run first and apart (the session's throughput run) met a process
 * the JIT had not settled yet and other minutes of the machine: the depth ratio swung 0.90-1.74
 * between sessions with the two runs' statements alike (bench/README.md, eighteenth session, wip-depth).
 * `after` reads the varied side once its drains are done.
 */
export async function alongsidePlain<T = undefined>(
  ctx: WorkloadContext,
  factory: SystemFactory,
  workload: string,
  plan: DrainPlan,
  after?: (system: BenchSystem) => Promise<T>,
) {
  return ctx.withSystem(factory, `${workload}-plain`, (plainSystem) =>
    ctx.withSystem(factory, workload, async (system) => {
      ctx.log(`${workload}: ${system.name}, its drains alternating with plain ones…`);
      const shape = { jobs: plan.jobs, batch: plan.batch, concurrency: plan.concurrency, backlog: 0 };
      const [plain, r] = await alternatingDrains(ctx, { system: plainSystem, plan: shape }, { system, plan });
      return { r, plain, info: system.info(), after: after ? await after(system) : undefined };
    }),
  );
}

/** A result line's comparison with its plain neighbours: the medians' ratio, and each run's over the plain run beside it. */
export function versusPlain(r: DrainResult, plain: DrainResult) {
  return {
    plain: { processPerSec: plain.processPerSec, enqueuePerSec: plain.enqueuePerSec, from: 'plain runs alternating with these' },
    vsPlain: { process: ratio(r.processPerSec, plain.processPerSec), enqueue: ratio(r.enqueuePerSec, plain.enqueuePerSec) },
    pairs: r.runs.map((d, i) => ratio(d.processPerSec, plain.runs[i]?.processPerSec ?? 0)),
    plainRuns: plain.runs,
  };
}

/** Emits the partita ÷ graphile line of a workload, when both ran, and returns its ratios. */
export function emitSystemRatio(
  ctx: WorkloadContext,
  workload: string,
  results: Map<string, { processPerSec: number; enqueuePerSec: number }>,
) {
  const p = results.get('partita');
  const g = results.get('graphile');
  if (!p || !g) return undefined;
  const r = { process: ratio(p.processPerSec, g.processPerSec), enqueue: ratio(p.enqueuePerSec, g.enqueuePerSec) };
  ctx.emit({ workload, ratio: r });
  return r;
}

export const throughput: Workload = {
  name: 'throughput',
  description: 'N no-op jobs enqueued in batches (no worker running), then drained at concurrency C',
  async run(ctx) {
    const results = await plainThroughput(ctx, 'throughput');
    const p = results.get('partita');
    if (p)
      ctx.target(
        `throughput: enqueue ≥ ${ENQUEUE_TARGET_PER_SEC.toLocaleString()} jobs/s`,
        p.enqueuePerSec >= ENQUEUE_TARGET_PER_SEC,
        `${p.enqueuePerSec.toLocaleString()} jobs/s`,
      );
    const r = emitSystemRatio(ctx, 'throughput', results);
    if (r)
      ctx.target(
        `throughput: process ≥ ${PROCESS_TARGET_RATIO}× graphile-worker`,
        r.process === null ? null : r.process >= PROCESS_TARGET_RATIO,
        `${r.process}×`,
      );
  },
};
