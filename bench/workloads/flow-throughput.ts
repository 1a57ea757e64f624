/**
 * flow-throughput (issue 14): flow jobs/s through a 3-stage flow (`defineFlow` of `@partita/workflows`, stages chained
 * by nextQueue, one lookup attribute per job) next to the plain 3-step workflow of
 * workflow-throughput (trigger → 3 worker steps through `app(client, id)`), in the same run, each in
 * a fresh schema with a node in this process. Both are the same executor; the difference is what a
 * flow adds: its state merge mapping per stage, its lookup row per job, its stage events (each stage
 * is `emit: true`, one bus publication job per stage) and one job queue per stage.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type Client } from '@partita/client';
import { createLogger, silentLogger, type Logger } from '@partita/core';
import { defineFlow, type Flow } from '@partita/workflows';
import { cpuPerThousand, cpuSample } from '../lib/cpu.js';
import { ratio, round } from '../lib/stats.js';
import type { Workload, WorkloadContext } from './types.js';
import { partitaWorkflows, waitWorkflows } from './workflow-partita.js';
import type { WorkflowSystem } from './workflow-systems.js';

const PARTITION = 'bench';
/** Per stage queue; the plain workflow's node runs its 3 steps in one queue of 32. */
const CONCURRENCY = 32;

function benchLogger(): Logger {
  const level = process.env.PARTITA_LOG_LEVEL ?? 'warn';
  if (level === 'silent') return silentLogger();
  return createLogger({ name: 'partita-bench-flow', level, transport: { target: 'pino/file', options: { destination: 2 } } });
}

class FlowSystem implements WorkflowSystem {
  readonly name = 'partita-flow';
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'partita-bench-flow-'));
  private readonly flow: Flow<Record<string, unknown>, { seq: number; batch: string }, 'batch'>;
  private client: Client | undefined;
  private reader: Flow<Record<string, unknown>, { seq: number; batch: string }, 'batch'> | undefined;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly schema: string,
  ) {
    const definition = {
      name: 'bench',
      partition: PARTITION,
      queues: [{ name: 's1', nextQueue: 's2', lookupAttributes: ['batch' as const] }, { name: 's2', nextQueue: 's3' }, { name: 's3' }],
    };
    this.flow = defineFlow(definition);
    for (const q of ['s1', 's2', 's3']) this.flow.createWorkers(q, () => undefined, { concurrency: CONCURRENCY });
    this.reader = defineFlow(definition);
  }

  info() {
    return {
      api: 'defineFlow: createJob, createWorkers, startAll',
      stages: '3 no-op stages (nextQueue chain), 1 lookup attribute',
      concurrency: `${CONCURRENCY} per stage`,
    };
  }

  async setup(): Promise<void> {
    const pg = { connectionString: this.ctx.url, max: this.ctx.options.pool };
    const logger = benchLogger();
    await this.flow.startAll({
      postgres: pg,
      schema: this.schema,
      nats: this.ctx.nats ? { servers: this.ctx.nats } : false,
      dataDir: this.dataDir,
      cluster: 'bench-flow',
      logger,
      engine: { pollMs: this.ctx.options.pollMs },
    });
    // Jobs are created through a separate client, as the workflow system pubs through one.
    this.client = await connect({ postgres: pg, schema: this.schema, nats: this.ctx.nats ?? false, cluster: 'bench-flow', logger });
    this.reader!.useClient(this.client);
    // Deploys nothing new (same version): makes the reader's first createJob not pay the check inside the timing.
    await this.reader!.createJob({ seq: -1, batch: 'warm' });
  }

  async startMany(count: number, batch: number): Promise<string[]> {
    const ids: string[] = [];
    for (let from = 0; from < count; from += batch) {
      const n = Math.min(batch, count - from);
      ids.push(...(await Promise.all(Array.from({ length: n }, (_, i) => this.reader!.createJob({ seq: from + i, batch: `b${from}` })))));
    }
    return ids;
  }

  waitAll(ids: string[], timeoutMs: number): Promise<void> {
    return waitWorkflows(this.ctx, this.schema, ids, timeoutMs, 'partita-flow', 'flow jobs');
  }

  runOne(): never {
    throw new Error('not used by flow-throughput');
  }

  armHook(): never {
    throw new Error('not used by flow-throughput');
  }

  async teardown(): Promise<void> {
    await this.client?.close().catch(() => undefined);
    await this.flow.stopAll();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

async function measure(ctx: WorkloadContext, system: WorkflowSystem, count: number) {
  const cpuBefore = cpuSample();
  const t0 = performance.now();
  const ids = await system.startMany(count, ctx.options.batch);
  const startMs = performance.now() - t0;
  await system.waitAll(ids, ctx.options.drainTimeoutS * 1000);
  const ms = performance.now() - t0;
  const cpu = cpuPerThousand(cpuBefore, cpuSample(), count);
  return {
    jobs: count,
    ms: round(ms),
    startMs: round(startMs),
    perS: round((count * 1000) / ms),
    stepsPerS: round((3 * count * 1000) / ms),
    cpuMsPerJob: { bench: round(cpu.bench / 1000), postgres: round(cpu.postgres / 1000) },
    enqueuePerSec: round((count * 1000) / startMs),
    processPerSec: round((count * 1000) / ms),
  };
}

export const flowThroughput: Workload = {
  name: 'flow-throughput',
  description:
    'create --jobs flow jobs through a 3-stage flow, and as many plain 3-step workflows, in --batch batches; time until all are done',
  async run(ctx) {
    const count = ctx.options.jobs;
    const results: Record<string, number | undefined> = {};
    const systems: { name: string; make: (schema: string) => Promise<WorkflowSystem> }[] = [
      {
        name: 'partita-workflow',
        make: async (schema) => {
          const why = await partitaWorkflows.unavailable();
          if (why) throw new Error(why);
          return partitaWorkflows.create(ctx, schema);
        },
      },
      { name: 'partita-flow', make: async (schema) => new FlowSystem(ctx, schema) },
    ];
    for (const { name, make } of systems) {
      const schema = `bench_${name.replace(/-/g, '_')}_flow_tp_${process.pid}_${Math.floor(performance.now())}`;
      let system: WorkflowSystem | undefined;
      try {
        system = await make(schema);
        await system.setup();
        const line = await measure(ctx, system, count);
        results[name] = line.perS;
        ctx.emit({ workload: 'flow-throughput', system: name, ...line, info: system.info() });
      } catch (err) {
        const e = err as Error;
        ctx.log(`flow-throughput: ${name} failed: ${e.stack ?? e.message}`);
        ctx.emit({ workload: 'flow-throughput', system: name, error: e.message });
      } finally {
        if (system) await system.teardown().catch((err: Error) => ctx.log(`${name} teardown: ${err.message}`));
        await ctx.admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch((err: Error) => ctx.log(`drop ${schema}: ${err.message}`));
      }
    }
    const r = ratio(results['partita-flow'], results['partita-workflow']);
    ctx.emit({ workload: 'flow-throughput', system: 'ratio flow/workflow', perS: r });
  },
};
