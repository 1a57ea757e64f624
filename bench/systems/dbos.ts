/**
 * DBOS Transact (`@dbos-inc/dbos-sdk`, Postgres-only durable workflows, MIT) as a workflow bench
 * system: the workflow is a registered function with three `DBOS.runStep` no-op steps, started on a
 * queue with workerConcurrency 32 (the setting), its system tables in the run's fresh schema
 * (`systemDatabaseSchemaName`). DBOS is a process-wide singleton: one instance at a time, launched in
 * setup and shut down (deregistering its functions) in teardown, which is how the harness runs systems.
 */
import { performance } from 'node:perf_hooks';
import pg from 'pg';
import { DBOS } from '@dbos-inc/dbos-sdk';
import { sleep } from '../lib/stats.js';
import { WORKFLOW_POLL_MS, waitUntilFinished } from '../workloads/drain.js';
import type { WorkloadContext } from '../workloads/types.js';
import type { WorkflowRun, WorkflowSystem, WorkflowSystemFactory } from '../workloads/workflow-systems.js';

const QUEUE = 'bench';
/** The version pinned in bench/package.json. */
const DBOS_VERSION = '5.3.0';
const WORKER_CONCURRENCY = 32;
const HOOK_TOPIC = 'go';
/**
 * The queue's dispatch poll (DBOS default 1000 ms, which bounds a queue to about workerConcurrency
 * workflows per second): PARTITA_BENCH_DBOS_POLL_MS sets minPollingIntervalMs for a second figure.
 */
const POLL_MS = process.env.PARTITA_BENCH_DBOS_POLL_MS ? Number(process.env.PARTITA_BENCH_DBOS_POLL_MS) : undefined;

/** Step start times of workflows a sample waits for, by seq (the workflows run in this process). */
const runs = new Map<number, { steps: number[]; armed?: () => void }>();
const mark = (seq: number) => {
  if (seq >= 0) runs.get(seq)?.steps.push(performance.now());
};

// Step bodies are no-ops apart from the timestamp a latency sample needs (seq < 0: throughput, none).
const noopStep = async (seq: number) => DBOS.runStep(async () => mark(seq), { name: 'noop' });

async function threeSteps(seq: number): Promise<number> {
  await noopStep(seq);
  await noopStep(seq);
  await noopStep(seq);
  return seq;
}

async function hooked(seq: number): Promise<unknown> {
  await DBOS.runStep(async () => runs.get(seq)?.armed?.(), { name: 'arm' });
  const message = await DBOS.recv<unknown>(HOOK_TOPIC, 60);
  await noopStep(seq);
  return message;
}

async function child(): Promise<void> {
  await DBOS.runStep(async () => undefined, { name: 'noop' });
}

class DbosSystem implements WorkflowSystem {
  readonly name = 'dbos';
  private pool: pg.Pool | undefined;
  private wf!: (seq: number) => Promise<number>;
  private hookWf!: (seq: number) => Promise<unknown>;
  private childWf!: () => Promise<void>;
  private parentWf!: (children: number) => Promise<number>;

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly schema: string,
  ) {}

  info() {
    return {
      dbos: DBOS_VERSION,
      queue: { workerConcurrency: WORKER_CONCURRENCY, minPollingIntervalMs: POLL_MS ?? 'default (1000)' },
      steps: '3 × DBOS.runStep (no-op)',
      pool: this.ctx.options.pool,
    };
  }

  async setup(): Promise<void> {
    this.pool = new pg.Pool({ connectionString: this.ctx.url, max: 2 });
    DBOS.setConfig({
      name: 'partita-bench',
      systemDatabaseUrl: this.ctx.url,
      systemDatabaseSchemaName: this.schema,
      systemDatabasePoolSize: this.ctx.options.pool,
      logLevel: process.env.DBOS_LOG_LEVEL ?? 'warn',
    });
    this.wf = DBOS.registerWorkflow(threeSteps, { name: 'threeSteps' });
    this.hookWf = DBOS.registerWorkflow(hooked, { name: 'hooked' });
    this.childWf = DBOS.registerWorkflow(child, { name: 'child' });
    const childWf = this.childWf;
    this.parentWf = DBOS.registerWorkflow(
      async (children: number) => {
        const handles = [];
        for (let i = 0; i < children; i++) handles.push(await DBOS.startWorkflow(childWf, { queueName: QUEUE })());
        for (const h of handles) await h.getResult();
        return children;
      },
      { name: 'parent' },
    );
    await DBOS.launch();
    await DBOS.registerQueue(QUEUE, { workerConcurrency: WORKER_CONCURRENCY, ...(POLL_MS ? { minPollingIntervalMs: POLL_MS } : {}) });
  }

  async startMany(count: number, batch: number): Promise<string[]> {
    const ids: string[] = [];
    for (let from = 0; from < count; from += batch) {
      const n = Math.min(batch, count - from);
      const handles = await Promise.all(Array.from({ length: n }, () => DBOS.startWorkflow(this.wf, { queueName: QUEUE })(-1)));
      for (const h of handles) ids.push(h.workflowID);
    }
    return ids;
  }

  /** As the Partita workflow bench waits (waitUntilFinished's small polls), so neither run pays more for being watched. */
  async waitAll(ids: string[], timeoutMs: number): Promise<void> {
    const unfinished = async (asked: string[]): Promise<string[]> =>
      (
        await this.pool!.query<{ id: string }>(
          `SELECT workflow_uuid AS id FROM "${this.schema}".workflow_status WHERE workflow_uuid = ANY($1) AND status NOT IN ('SUCCESS', 'ERROR')`,
          [asked],
        )
      ).rows.map((r) => r.id);
    if ((await waitUntilFinished(unfinished, ids, performance.now() + timeoutMs, WORKFLOW_POLL_MS)) === undefined)
      throw new Error(`dbos: ${(await unfinished(ids)).length} of ${ids.length} workflows unfinished after ${timeoutMs} ms`);
  }

  async runOne(seq: number): Promise<WorkflowRun> {
    const run = { steps: [] as number[] };
    runs.set(seq, run);
    try {
      const startedAt = performance.now();
      const handle = await DBOS.startWorkflow(this.wf, { queueName: QUEUE })(seq);
      await handle.getResult();
      return { startedAt, steps: run.steps, doneAt: performance.now() };
    } finally {
      runs.delete(seq);
    }
  }

  async armHook(seq: number): Promise<() => Promise<number>> {
    let armed!: () => void;
    const isArmed = new Promise<void>((r) => (armed = r));
    const run = { steps: [] as number[], armed };
    runs.set(seq, run);
    const handle = await DBOS.startWorkflow(this.hookWf, { queueName: QUEUE })(seq);
    await isArmed;
    // recv() follows the arm step in the workflow: give it a moment to wait (DBOS keeps an early message anyway).
    await sleep(20);
    return async () => {
      try {
        const t0 = performance.now();
        await DBOS.send(handle.workflowID, { seq }, HOOK_TOPIC);
        await handle.getResult();
        const resumed = run.steps[0];
        if (resumed === undefined) throw new Error('dbos: the hooked workflow finished without its step');
        return resumed - t0;
      } finally {
        runs.delete(seq);
      }
    };
  }

  async fanOut(children: number, timeoutMs: number): Promise<number> {
    const t0 = performance.now();
    const handle = await DBOS.startWorkflow(this.parentWf)(children);
    const timer = sleep(timeoutMs).then(() => 'timeout' as const);
    const result = await Promise.race([handle.getResult(), timer]);
    if (result === 'timeout') throw new Error(`dbos: the fan-out of ${children} children did not finish within ${timeoutMs} ms`);
    return performance.now() - t0;
  }

  async teardown(): Promise<void> {
    await DBOS.shutdown({ deregister: true });
    await this.pool?.end();
  }
}

export const dbosWorkflows: WorkflowSystemFactory = {
  name: 'dbos',
  async unavailable() {
    // Installed as a dev dependency of the bench; the static import above fails first when it is not.
    return undefined;
  },
  async create(ctx, schema) {
    return new DbosSystem(ctx, schema);
  },
};
