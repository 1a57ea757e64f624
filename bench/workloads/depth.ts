import { ratio } from '../lib/stats.js';
import type { DrainResult } from './drain.js';
import { alongsidePlain, emitSystemRatio, versusPlain } from './throughput.js';
import type { Workload } from './types.js';

export const DEPTH_TOLERANCE = 0.1;

function executionMs(plan: string | undefined): number | undefined {
  const m = plan ? /Execution Time: ([\d.]+) ms/.exec(plan) : null;
  return m ? Number(m[1]) : undefined;
}

export const depth: Workload = {
  name: 'depth',
  description: 'the throughput run again with a large backlog already queued in another queue of the partition',
  async run(ctx) {
    const { options } = ctx;
    const results = new Map<string, DrainResult>();
    const baselines = new Map<string, DrainResult>();
    for (const factory of ctx.systems) {
      const out = await alongsidePlain(ctx, factory, 'depth', {
        jobs: options.jobs,
        batch: options.batch,
        concurrency: options.concurrency,
        backlog: options.backlog,
        explain: true,
      });
      if (!out) continue;
      const { explain, ...r } = out.r;
      if (explain)
        ctx.log(
          `depth: ${factory.name} claim query, EXPLAIN (ANALYZE, BUFFERS) with the backlog and ${options.jobs} jobs queued:\n${explain}`,
        );
      results.set(factory.name, out.r);
      baselines.set(factory.name, out.plain);
      ctx.emit({
        workload: 'depth',
        system: factory.name,
        ...r,
        ...(explain ? { claimExplainMs: executionMs(explain) } : {}),
        ...versusPlain(out.r, out.plain),
        batch: options.batch,
        concurrency: options.concurrency,
        info: out.info,
      });
    }
    emitSystemRatio(ctx, 'depth', results);
    const p = results.get('partita');
    const pb = baselines.get('partita');
    if (p && pb) {
      const vs = ratio(p.processPerSec, pb.processPerSec);
      ctx.target(
        `depth: partita process within ${DEPTH_TOLERANCE * 100} % of the plain run`,
        vs === null || p.timedOut ? false : vs >= 1 - DEPTH_TOLERANCE,
        `${p.processPerSec.toLocaleString()} vs ${pb.processPerSec.toLocaleString()} jobs/s (${vs}×)`,
      );
    }
  },
};
