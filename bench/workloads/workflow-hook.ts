import { summarize } from '../lib/stats.js';
import type { Workload } from './types.js';
import { eachWorkflowSystem } from './workflow-systems.js';

const WARMUP = 5;
/** Issue 18: hook() → waiting activity resumed p99 ≤ 20 ms. */
const TARGET_P99 = 20;

export const workflowHook: Workload = {
  name: 'workflow-hook',
  description: '--samples workflows that wait for a hook; time from the hook call to the waiting step resumed (DBOS: send → recv)',
  async run(ctx) {
    const results = await eachWorkflowSystem(ctx, 'workflow-hook', async (system) => {
      const samples: number[] = [];
      for (let i = 0; i < WARMUP + ctx.options.samples; i++) {
        const send = await system.armHook(i);
        const ms = await send();
        if (i >= WARMUP) samples.push(ms);
      }
      return { samples: samples.length, hookToResume: summarize(samples) };
    });
    const p = results.get('partita') as { hookToResume: { p99: number } } | undefined;
    ctx.target(
      `hook → resumed p99 ≤ ${TARGET_P99} ms`,
      p ? p.hookToResume.p99 <= TARGET_P99 : null,
      p ? `${p.hookToResume.p99} ms` : 'partita not run',
    );
  },
};
