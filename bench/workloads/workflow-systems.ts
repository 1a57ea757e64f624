/**
 * Durable-workflow systems for the workflow-* workloads (issue 18): DBOS Transact and Partita's
 * workflow layer, each in a fresh schema, on the same shape of workflow — a trigger and three no-op
 * worker steps. The job-queue systems (systems/index.ts) do not take part: these workloads measure
 * workflows, not jobs.
 */
import { performance } from 'node:perf_hooks';
import type { WorkloadContext } from './types.js';
import { dbosWorkflows } from '../systems/dbos.js';
import { partitaWorkflows } from './workflow-partita.js';

/** Step start times (performance.now() in this process) of one 3-step workflow run end to end. */
export interface WorkflowRun {
  startedAt: number;
  steps: number[];
  doneAt: number;
}

export interface WorkflowSystem {
  readonly name: string;
  info(): Record<string, unknown>;
  /** Schema, migrations, workers (untimed). */
  setup(): Promise<void>;
  /** Starts `count` workflows (trigger → 3 no-op steps) and returns their ids. */
  startMany(count: number, batch: number): Promise<string[]>;
  /** Resolves when every workflow of `ids` has finished, as the database sees it. */
  waitAll(ids: string[], timeoutMs: number): Promise<void>;
  /** One workflow started and awaited through the system's start-and-wait call (Partita: pubsub). */
  runOne(seq: number): Promise<WorkflowRun>;
  /** Starts a workflow that waits for a hook; resolves once it waits, with a function that sends the hook and resolves with the ms until the waiting step resumed. */
  armHook(seq: number): Promise<() => Promise<number>>;
  /**
   * A parent that starts `children` child workflows and awaits them all; resolves with its wall time
   * in ms. Absent when the system has no way to express it (the line says so instead of timing it).
   */
  fanOut?(children: number, timeoutMs: number): Promise<number>;
  teardown(): Promise<void>;
}

export interface WorkflowSystemFactory {
  readonly name: string;
  /** Undefined when the system can run here; otherwise why not (reported, not an error). */
  unavailable(): Promise<string | undefined>;
  create(ctx: WorkloadContext, schema: string): Promise<WorkflowSystem>;
}

/** In run order; ratios are partita / dbos. */
export const workflowSystems: readonly WorkflowSystemFactory[] = [partitaWorkflows, dbosWorkflows];

/**
 * Which workflow systems run: PARTITA_BENCH_WORKFLOW_SYSTEMS (comma-separated, e.g. `dbos`), else all.
 * Not --systems: that option names the job systems (partita, graphile) and refuses other names.
 */
function wanted(): string[] | undefined {
  const v = process.env.PARTITA_BENCH_WORKFLOW_SYSTEMS;
  return v
    ? v
        .split(',')
        .map((s) => s.trim())
        .filter(Boolean)
    : undefined;
}

/**
 * Runs `fn` against each selected workflow system that is available, in a fresh schema dropped after;
 * an unavailable one gets a `skipped` line, a failing one an `error` line.
 */
export async function eachWorkflowSystem(
  ctx: WorkloadContext,
  workload: string,
  fn: (system: WorkflowSystem) => Promise<Record<string, unknown>>,
): Promise<Map<string, Record<string, unknown>>> {
  const results = new Map<string, Record<string, unknown>>();
  for (const factory of workflowSystems) {
    const only = wanted();
    if (only && !only.includes(factory.name)) continue;
    const why = await factory.unavailable();
    if (why) {
      ctx.log(`${workload}: ${factory.name} skipped: ${why}`);
      ctx.emit({ workload, system: factory.name, skipped: why, info: { note: why } });
      continue;
    }
    const schema = `bench_${factory.name}_${workload.replace(/[^a-z0-9]/g, '_')}_${process.pid}_${Math.floor(performance.now())}`;
    let system: WorkflowSystem | undefined;
    try {
      system = await factory.create(ctx, schema);
      await system.setup();
      const line = { workload, system: factory.name, ...(await fn(system)), info: system.info() };
      ctx.emit(line);
      results.set(factory.name, line);
    } catch (err) {
      const e = err as Error;
      ctx.log(`${workload}: ${factory.name} failed: ${e.stack ?? e.message}`);
      ctx.emit({ workload, system: factory.name, error: e.message });
    } finally {
      if (system) await system.teardown().catch((err: Error) => ctx.log(`${factory.name} teardown: ${err.message}`));
      await ctx.admin.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`).catch((err: Error) => ctx.log(`drop ${schema}: ${err.message}`));
    }
  }
  return results;
}

/** Workflows per throughput run: --jobs (default 20,000, the size). */
export const throughputWorkflows = (ctx: WorkloadContext) => ctx.options.jobs;
/** Children of the fan-out parent: half of --jobs (default 10,000, the size). */
export const fanOutChildren = (ctx: WorkloadContext) => Math.max(1, Math.floor(ctx.options.jobs / 2));
