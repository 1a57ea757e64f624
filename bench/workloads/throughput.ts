import { ratio } from '../lib/stats.js';
import { enqueueThenDrain, type DrainResult } from './drain.js';
import type { Workload, WorkloadContext } from './types.js';

export const ENQUEUE_TARGET_PER_SEC = 40_000;
export const PROCESS_TARGET_RATIO = 1.5;

/** Runs the plain throughput measurement for every selected system; shared with depth (as its baseline). */
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

export interface PlainBaseline {
  processPerSec: number;
  enqueuePerSec: number;
  from: string;
}

/**
 * Each system's plain run of this bench session, the baseline of the workloads that vary it
 * (depth, keys): taken from the throughput workload's results, or run now as `<workload>-plain`.
 */
export async function plainBaselines(ctx: WorkloadContext, workload: string): Promise<Map<string, PlainBaseline>> {
  const baseline = new Map<string, PlainBaseline>();
  const missing = ctx.systems.filter((s) => !ctx.results.has(`throughput/${s.name}`));
  for (const s of ctx.systems) {
    const line = ctx.results.get(`throughput/${s.name}`);
    if (line)
      baseline.set(s.name, {
        processPerSec: line.processPerSec as number,
        enqueuePerSec: line.enqueuePerSec as number,
        from: 'throughput workload',
      });
  }
  if (missing.length) {
    const plain = await plainThroughput({ ...ctx, systems: missing }, `${workload}-plain`);
    for (const [name, r] of plain)
      baseline.set(name, { processPerSec: r.processPerSec, enqueuePerSec: r.enqueuePerSec, from: `plain run inside ${workload}` });
  }
  return baseline;
}

/** A varied run's result line fields against its system's plain run: the baseline and the ratios. */
export function versusPlain(r: { processPerSec: number; enqueuePerSec: number }, base: PlainBaseline | undefined) {
  return {
    plain: base ? { processPerSec: base.processPerSec, enqueuePerSec: base.enqueuePerSec, from: base.from } : null,
    vsPlain: base ? { process: ratio(r.processPerSec, base.processPerSec), enqueue: ratio(r.enqueuePerSec, base.enqueuePerSec) } : null,
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
