import { performance } from 'node:perf_hooks';
import { allocationTable, cpuPerThousand, cpuSample, startCpuProfile, startHeapProfile } from '../lib/cpu.js';
import { queryStatsCalls, queryStatsTable, resetQueryStats } from '../lib/querystats.js';
import { ratio, round } from '../lib/stats.js';
import type { Workload } from './types.js';
import { eachWorkflowSystem, throughputWorkflows } from './workflow-systems.js';

/** Issue 18's targets: ≥ 3,000 workflows/s, ≥ 10× DBOS in the same run. */
const TARGET_PER_S = 3000;
const TARGET_VS_DBOS = 10;

export const workflowThroughput: Workload = {
  name: 'workflow-throughput',
  description: 'start --jobs workflows (trigger → 3 no-op worker steps) in --batch batches, time until all are done',
  async run(ctx) {
    const count = throughputWorkflows(ctx);
    const results = await eachWorkflowSystem(ctx, 'workflow-throughput', async (system) => {
      if (ctx.options.queryStats) resetQueryStats();
      const stopProfile = ctx.options.cpuProfile
        ? await startCpuProfile(ctx.options.cpuProfile, `wf-${system.name}-${Date.now()}`)
        : undefined;
      const stopHeap = ctx.options.heapProfile > 0 ? await startHeapProfile() : undefined;
      const cpuBefore = cpuSample();
      const t0 = performance.now();
      const ids = await system.startMany(count, ctx.options.batch);
      const startedMs = performance.now() - t0;
      await system.waitAll(ids, ctx.options.drainTimeoutS * 1000);
      const ms = performance.now() - t0;
      // Per 1,000 workflows, from the first start to the last finished: this process (the system's
      // workers and its client) and the local Postgres; statements counted only with --query-stats.
      const cpu = cpuPerThousand(cpuBefore, cpuSample(), count);
      if (stopProfile) ctx.log(`${system.name}: CPU profile of the run: ${await stopProfile()}`);
      const heap = stopHeap ? await stopHeap() : undefined;
      if (heap)
        ctx.log(
          `${system.name}: ${Math.round(heap.total / count)} bytes allocated per workflow; by function:\n${allocationTable(heap, count, ctx.options.heapProfile)}`,
        );
      const statements = ctx.options.queryStats ? queryStatsCalls() : undefined;
      if (ctx.options.queryStats) ctx.log(`${system.name}: statements (first start → all finished):\n${queryStatsTable(20)}`);
      return {
        // postgresOwn: only the backends of this process's connections (postgres: every one on the machine).
        cpuMsPerWorkflow: {
          bench: round(cpu.bench / 1000),
          postgres: round(cpu.postgres / 1000),
          postgresOwn: round(cpu.postgresOwn / 1000),
        },
        ...(statements !== undefined ? { statementsPerWorkflow: round(statements / count) } : {}),
        workflows: count,
        ms: round(ms),
        startMs: round(startedMs),
        workflowsPerS: round((count * 1000) / ms),
        // The summary table's columns: starts/s and finished workflows/s.
        enqueuePerSec: round((count * 1000) / startedMs),
        processPerSec: round((count * 1000) / ms),
        stepsPerS: round((3 * count * 1000) / ms),
      };
    });
    const p = results.get('partita')?.workflowsPerS as number | undefined;
    const d = results.get('dbos')?.workflowsPerS as number | undefined;
    const r = ratio(p, d);
    ctx.emit({ workload: 'workflow-throughput', system: 'ratio partita/dbos', workflowsPerS: r });
    ctx.target(
      `workflow throughput ≥ ${TARGET_PER_S}/s`,
      p === undefined ? null : p >= TARGET_PER_S,
      p === undefined ? 'partita not run' : `${p}/s`,
    );
    ctx.target(
      `workflow throughput ≥ ${TARGET_VS_DBOS}× dbos`,
      r === null ? null : r >= TARGET_VS_DBOS,
      r === null ? 'not both run' : `${r}×`,
    );
  },
};
