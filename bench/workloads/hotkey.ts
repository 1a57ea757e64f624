import { ratio } from '../lib/stats.js';
import type { DrainResult } from './drain.js';
import { alongsidePlain, emitSystemRatio, versusPlain } from './throughput.js';
import type { Workload } from './types.js';

export const HOTKEY_TOLERANCE = 0.1;
/** An idle claim of the queue holding the hot key's backlog, from its EXPLAIN ANALYZE (planning + execution). */
export const HOTKEY_IDLE_CLAIM_MS = 2;

function planMs(plan: string | undefined): { planning: number; execution: number } | undefined {
  const e = plan ? /Execution Time: ([\d.]+) ms/.exec(plan) : null;
  const p = plan ? /Planning Time: ([\d.]+) ms/.exec(plan) : null;
  return e ? { planning: p ? Number(p[1]) : 0, execution: Number(e[1]) } : undefined;
}

/**
 * The throughput run again, with a large backlog (--backlog) queued in the drained queue itself,
 * all under one execution key whose holder is running and never finishes: none of it may run, and
 * the plain stream should not notice it. graphile-worker: the same jobs in a named queue locked by
 * a worker, its serial queues' equivalent of a held key.
 */
export const hotkey: Workload = {
  name: 'hotkey',
  description: 'the throughput run with a large backlog of one execution key, held by a running job, queued ahead of it in the same queue',
  async run(ctx) {
    const { options } = ctx;
    const results = new Map<string, DrainResult>();
    const baselines = new Map<string, DrainResult>();
    for (const factory of ctx.systems) {
      const out = await alongsidePlain(
        ctx,
        factory,
        'hotkey',
        {
          jobs: options.jobs,
          batch: options.batch,
          concurrency: options.concurrency,
          backlog: options.backlog,
          backlogKind: 'hotkey',
          explainIdle: true,
        },
        // Every hot-key job must still be queued: its key's holder never finished.
        async (system) => (system.hotKeyQueued ? await system.hotKeyQueued() : undefined),
      );
      if (!out) continue;
      const { explainIdle, ...r } = out.r;
      if (explainIdle)
        ctx.log(
          `hotkey: ${factory.name} idle claim, EXPLAIN (ANALYZE, BUFFERS) with ${options.backlog.toLocaleString()} hot-key jobs queued:\n${explainIdle}`,
        );
      results.set(factory.name, out.r);
      baselines.set(factory.name, out.plain);
      const idle = planMs(explainIdle);
      ctx.emit({
        workload: 'hotkey',
        system: factory.name,
        ...r,
        ...(idle ? { idleClaimMs: { ...idle, total: Math.round((idle.planning + idle.execution) * 1000) / 1000 } } : {}),
        hotKeyQueued: out.after,
        ...versusPlain(out.r, out.plain),
        batch: options.batch,
        concurrency: options.concurrency,
        info: out.info,
      });
      if (out.after !== undefined && out.after !== options.backlog) {
        ctx.log(`hotkey: ${factory.name}: ${options.backlog - out.after} hot-key jobs ran while their key was held`);
      }
    }
    emitSystemRatio(ctx, 'hotkey', results);
    const p = results.get('partita');
    const pb = baselines.get('partita');
    if (p && pb) {
      const vs = ratio(p.processPerSec, pb.processPerSec);
      ctx.target(
        `hotkey: partita process within ${HOTKEY_TOLERANCE * 100} % of the plain run`,
        vs === null || p.timedOut ? false : vs >= 1 - HOTKEY_TOLERANCE,
        `${p.processPerSec.toLocaleString()} vs ${pb.processPerSec.toLocaleString()} jobs/s (${vs}×)`,
      );
    }
    if (p) {
      const idle = planMs(p.explainIdle);
      ctx.target(
        `hotkey: partita idle claim ≤ ${HOTKEY_IDLE_CLAIM_MS} ms`,
        idle ? idle.planning + idle.execution <= HOTKEY_IDLE_CLAIM_MS : null,
        idle ? `${(idle.planning + idle.execution).toFixed(2)} ms (planning ${idle.planning}, execution ${idle.execution})` : 'no plan',
      );
    }
  },
};
