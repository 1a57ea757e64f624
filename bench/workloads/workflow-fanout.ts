import { round } from '../lib/stats.js';
import type { Workload } from './types.js';
import { eachWorkflowSystem, fanOutChildren } from './workflow-systems.js';

/** Issue 18: 10,000 children awaited by one parent complete in ≤ 10 s. */
const TARGET_MS = 10_000;

export const workflowFanout: Workload = {
  name: 'workflow-fanout',
  description: 'one parent workflow starts --jobs/2 child workflows (one no-op step each) and awaits them all',
  async run(ctx) {
    const children = fanOutChildren(ctx);
    const results = await eachWorkflowSystem(ctx, 'workflow-fanout', async (system) => {
      if (!system.fanOut) return { children, skipped: `${system.name} has no fan-out of awaited children to run` };
      const ms = await system.fanOut(children, ctx.options.drainTimeoutS * 1000);
      return { children, ms: round(ms), childrenPerS: round((children * 1000) / ms) };
    });
    const p = results.get('partita')?.ms as number | undefined;
    ctx.target(
      `fan-out of ${children} ≤ ${TARGET_MS / 1000} s`,
      p === undefined ? null : p <= TARGET_MS,
      p === undefined ? 'partita not run' : `${p} ms`,
    );
  },
};
