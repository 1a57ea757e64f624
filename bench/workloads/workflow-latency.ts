import { cpuPerThousand, cpuSample, type CpuSample } from '../lib/cpu.js';
import { ratio, round, sleep, summarize } from '../lib/stats.js';
import type { Workload } from './types.js';
import { eachWorkflowSystem } from './workflow-systems.js';

const WARMUP = 10;
/** Issue 18: pubsub of a 3-step workflow p50 ≤ 10 ms, p99 ≤ 30 ms; step → next step start p50 ≤ 3 ms. */
const E2E_P50 = 10;
const E2E_P99 = 30;
const HANDOFF_P50 = 3;

export const workflowLatency: Workload = {
  name: 'workflow-latency',
  description: '--samples sequential start-and-wait runs of a 3-step workflow on an idle system; also step → next step start',
  async run(ctx) {
    const results = await eachWorkflowSystem(ctx, 'workflow-latency', async (system) => {
      const e2e: number[] = [];
      const handoff: number[] = [];
      let cpuBefore: CpuSample | undefined;
      for (let i = 0; i < WARMUP + ctx.options.samples; i++) {
        if (i === WARMUP) cpuBefore = cpuSample('before');
        await sleep(5 + Math.random() * 10);
        const run = await system.runOne(i);
        if (run.steps.length !== 3) throw new Error(`${system.name}: a run recorded ${run.steps.length} steps, not 3`);
        if (i < WARMUP) continue;
        e2e.push(run.doneAt - run.startedAt);
        handoff.push(run.steps[1]! - run.steps[0]!, run.steps[2]! - run.steps[1]!);
      }
      // CPU per measured run (the pauses between runs cost none): this process (the system's node and
      // its client) and its own Postgres backends. Unlike the milliseconds, it does not move with what
      // else the machine runs, so it tells two trees apart on a loaded machine; on an idle node most of
      // it lies on the run's path (one workflow at a time).
      const cpu = cpuBefore ? cpuPerThousand(cpuBefore, cpuSample(), e2e.length) : undefined;
      return {
        samples: e2e.length,
        endToEnd: summarize(e2e),
        stepToNextStep: summarize(handoff),
        ...(cpu ? { cpuMsPerWorkflow: { bench: round(cpu.bench / 1000), postgresOwn: round(cpu.postgresOwn / 1000) } } : {}),
      };
    });
    const p = results.get('partita') as { endToEnd: { p50: number; p99: number }; stepToNextStep: { p50: number } } | undefined;
    const d = results.get('dbos') as { endToEnd: { p50: number } } | undefined;
    ctx.emit({ workload: 'workflow-latency', system: 'ratio partita/dbos', endToEndP50: ratio(p?.endToEnd.p50, d?.endToEnd.p50) });
    ctx.target(`workflow pubsub p50 ≤ ${E2E_P50} ms`, p ? p.endToEnd.p50 <= E2E_P50 : null, p ? `${p.endToEnd.p50} ms` : 'partita not run');
    ctx.target(`workflow pubsub p99 ≤ ${E2E_P99} ms`, p ? p.endToEnd.p99 <= E2E_P99 : null, p ? `${p.endToEnd.p99} ms` : 'partita not run');
    ctx.target(
      `step → next step p50 ≤ ${HANDOFF_P50} ms`,
      p ? p.stepToNextStep.p50 <= HANDOFF_P50 : null,
      p ? `${p.stepToNextStep.p50} ms` : 'partita not run',
    );
  },
};
