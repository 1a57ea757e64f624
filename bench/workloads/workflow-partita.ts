/**
 * Partita's workflow layer as a workflow bench system, written against DESIGN.md's API: a node with
 * `workflowsPlugin()` runs the worker steps (job types made with defineJob), and `app(client, id)`
 * deploys, activates, starts (`pub`, `pubsub`) and resumes (`hook`). Until @partita/workflows exports
 * `app` and `workflowsPlugin` the system reports itself unavailable ("partita workflows not
 * available"), so the bench runs without it and picks it up after the merge with no change here.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type Client } from '@partita/client';
import { createLogger, silentLogger, type Logger } from '@partita/core';
import { defineJob, startNode, type NodePlugin, type PartitaNode } from '@partita/runtime';
import { sleep } from '../lib/stats.js';
import { WORKFLOW_POLL_MS, waitUntilFinished } from './drain.js';
import type { WorkloadContext } from './types.js';
import type { WorkflowRun, WorkflowSystem, WorkflowSystemFactory } from './workflow-systems.js';

const APP_ID = 'bench';
const PARTITION = 'bench';
const CONCURRENCY = 32;

/** DESIGN.md's app handle, as far as these workloads use it. */
interface WorkflowApp {
  deploy(pathOrYaml: string): Promise<{ id: string; version: string }>;
  activate(version: string, options?: { delayMs?: number }): Promise<void>;
  pub(topic: string, data: unknown, options?: { id?: string; partition?: string }): Promise<string>;
  pubsub(topic: string, data: unknown, options?: { timeoutMs?: number }): Promise<unknown>;
  hook(topic: string, data: unknown): Promise<string | undefined>;
  getStatus(id: string): Promise<number>;
}
interface WorkflowsModule {
  app(client: Client, id: string, options?: { partition?: string }): WorkflowApp;
  workflowsPlugin(options?: Record<string, unknown>): NodePlugin;
}

/**
 * Waits until every workflow of `ids` in `schema` has ended (completed, failed or interrupted), on the
 * harness's pool, with drain.ts's small polls (the newest workflows, now and then the oldest not yet
 * seen ended): a status read per workflow was 20,000 statements a poll, and one count over every id
 * every 20 ms cost Postgres ~26 ms a poll (binding 20,000 ids), about a tenth of the machine taken
 * from the run it measured. A flow job is a workflow, so flow-throughput waits with it too.
 */
export async function waitWorkflows(
  ctx: WorkloadContext,
  schema: string,
  ids: string[],
  timeoutMs: number,
  system: string,
  what: string,
): Promise<void> {
  const unfinished = async (asked: string[]): Promise<string[]> =>
    (
      await ctx.admin.query<{ id: string }>(`SELECT id FROM "${schema}".wf_workflows WHERE id = ANY($1) AND (status > 0 OR status = -1)`, [
        asked,
      ])
    ).rows.map((r) => r.id);
  if ((await waitUntilFinished(unfinished, ids, performance.now() + timeoutMs, WORKFLOW_POLL_MS)) === undefined)
    throw new Error(`${system}: ${(await unfinished(ids)).length} of ${ids.length} ${what} unfinished after ${timeoutMs} ms`);
}

let loaded: WorkflowsModule | undefined;
async function workflowsModule(): Promise<WorkflowsModule | undefined> {
  if (loaded) return loaded;
  const mod = (await import('@partita/workflows')) as Partial<Record<keyof WorkflowsModule, unknown>>;
  if (typeof mod.app !== 'function' || typeof mod.workflowsPlugin !== 'function') return undefined;
  loaded = mod as unknown as WorkflowsModule;
  return loaded;
}

/**
 * Three no-op worker steps after the trigger; a hooked graph (arm → wait for bench.go → step); a
 * fan-out parent (an `await` with `items`) whose children run one no-op step each.
 */
const APP_YAML = `
app:
  id: ${APP_ID}
  version: '1'
  graphs:
    - subscribes: bench.run
      publishes: bench.done
      input: { schema: { type: object, properties: { seq: { type: number } } } }
      output: { schema: { type: object, properties: { seq: { type: number } } } }
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: bench.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
        s2: { type: worker, topic: bench.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
        s3: { type: worker, topic: bench.step, input: { maps: { seq: '{t1.output.data.seq}' } }, job: { maps: { seq: '{t1.output.data.seq}' } } }
      transitions:
        t1: [{ to: s1 }]
        s1: [{ to: s2 }]
        s2: [{ to: s3 }]
    - subscribes: bench.hooked
      input: { schema: { type: object, properties: { seq: { type: number } } } }
      activities:
        t1: { type: trigger }
        a1: { type: worker, topic: bench.arm, input: { maps: { seq: '{t1.output.data.seq}' } } }
        h1: { type: hook, hook: { schema: { type: object, properties: { seq: { type: number } } } } }
        s1: { type: worker, topic: bench.step, input: { maps: { seq: '{t1.output.data.seq}' } } }
      transitions:
        t1: [{ to: a1 }]
        a1: [{ to: h1 }]
        h1: [{ to: s1 }]
      hooks:
        bench.go:
          - to: h1
            conditions: { match: [{ expected: '{t1.output.data.seq}', actual: '{$self.hook.data.seq}' }] }
    - subscribes: bench.fan
      activities:
        t1: { type: trigger }
        fan: { type: await, topic: bench.leaf, items: '{t1.output.data.list}' }
      transitions:
        t1: [{ to: fan }]
    - subscribes: bench.leaf
      activities:
        t1: { type: trigger }
        s1: { type: worker, topic: bench.step, input: { maps: { seq: -1 } } }
      transitions:
        t1: [{ to: s1 }]
`;

/** Step start times by seq (the node runs in this process); seq < 0: throughput, no timestamps. */
const runs = new Map<number, { steps: number[]; armed?: () => void }>();

function benchLogger(): Logger {
  const level = process.env.PARTITA_LOG_LEVEL ?? 'warn';
  if (level === 'silent') return silentLogger();
  return createLogger({ name: 'partita-bench-wf', level, transport: { target: 'pino/file', options: { destination: 2 } } });
}

class PartitaWorkflows implements WorkflowSystem {
  readonly name = 'partita';
  private client: Client | undefined;
  private node: PartitaNode | undefined;
  private app: WorkflowApp | undefined;
  private readonly dataDir = mkdtempSync(join(tmpdir(), 'partita-bench-wf-'));
  private readonly logger = benchLogger();
  /**
   * A cluster of its own: NATS is shared with whatever else runs on the machine (other benches, test
   * runs), and a client that heard another process's node advertise under the same cluster name
   * would hand it this run's jobs (stored in this schema: that node cannot finish them, and they wait
   * for their lease to expire).
   */
  private get cluster(): string {
    return `bench-${this.schema.replaceAll('_', '-')}`;
  }

  constructor(
    private readonly ctx: WorkloadContext,
    private readonly schema: string,
    private readonly wf: WorkflowsModule,
  ) {}

  info() {
    return {
      api: 'app(client, id): deploy, activate, pub, pubsub, hook',
      steps: '3 worker activities (no-op jobs)',
      fanOut: 'await with items: one child per element, one no-op worker step each',
      concurrency: CONCURRENCY,
    };
  }

  async setup(): Promise<void> {
    const step = defineJob<{ seq: number }, null>({
      type: 'bench.step',
      async perform(payload) {
        if (payload.seq >= 0) runs.get(payload.seq)?.steps.push(performance.now());
        return null;
      },
    });
    const arm = defineJob<{ seq: number }, null>({
      type: 'bench.arm',
      async perform(payload) {
        runs.get(payload.seq)?.armed?.();
        return null;
      },
    });
    const pg = { connectionString: this.ctx.url, max: this.ctx.options.pool };
    this.node = await startNode({
      postgres: pg,
      schema: this.schema,
      nats: this.ctx.nats ? { servers: this.ctx.nats } : false,
      dataDir: this.dataDir,
      cluster: this.cluster,
      logger: this.logger,
      partitions: { [PARTITION]: { queues: { default: { concurrency: CONCURRENCY } } } },
      jobs: [step, arm],
      plugins: [this.wf.workflowsPlugin()],
      engine: { pollMs: this.ctx.options.pollMs },
    });
    this.client = await connect({
      postgres: pg,
      schema: this.schema,
      nats: this.ctx.nats ?? false,
      cluster: this.cluster,
      logger: this.logger,
    });
    // Every start (pub, pubsub) goes to the bench's partition, the only one its node declares.
    this.app = this.wf.app(this.client, APP_ID, { partition: PARTITION });
    const { version } = await this.app.deploy(APP_YAML);
    await this.app.activate(version);
  }

  async startMany(count: number, batch: number): Promise<string[]> {
    const ids: string[] = [];
    for (let from = 0; from < count; from += batch) {
      const n = Math.min(batch, count - from);
      ids.push(...(await Promise.all(Array.from({ length: n }, () => this.app!.pub('bench.run', { seq: -1 }, { partition: PARTITION })))));
    }
    return ids;
  }

  waitAll(ids: string[], timeoutMs: number): Promise<void> {
    return waitWorkflows(this.ctx, this.schema, ids, timeoutMs, 'partita', 'workflows');
  }

  async runOne(seq: number): Promise<WorkflowRun> {
    const run = { steps: [] as number[] };
    runs.set(seq, run);
    try {
      const startedAt = performance.now();
      await this.app!.pubsub('bench.run', { seq }, { timeoutMs: 10_000 });
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
    await this.app!.pub('bench.hooked', { seq }, { partition: PARTITION });
    await isArmed;
    // The hook activity follows the arm step: give it a moment to wait (an early hook is kept anyway).
    await sleep(20);
    return async () => {
      try {
        const t0 = performance.now();
        await this.app!.hook('bench.go', { seq });
        const end = t0 + 10_000;
        while (run.steps.length === 0) {
          if (performance.now() > end) throw new Error('partita: the hooked workflow did not resume within 10 s');
          await sleep(1);
        }
        return run.steps[0]! - t0;
      } finally {
        runs.delete(seq);
      }
    };
  }

  /** One parent whose `await` fans out over an array of `children` elements (one child per element, one no-op step each). */
  async fanOut(children: number, timeoutMs: number): Promise<number> {
    const list = Array.from({ length: children }, (_, i) => ({ i }));
    const t0 = performance.now();
    await this.app!.pubsub('bench.fan', { list }, { timeoutMs });
    return performance.now() - t0;
  }

  async teardown(): Promise<void> {
    await this.client?.close().catch(() => undefined);
    await this.node?.stop();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export const partitaWorkflows: WorkflowSystemFactory = {
  name: 'partita',
  async unavailable() {
    return (await workflowsModule()) ? undefined : 'partita workflows not available (@partita/workflows does not export app yet)';
  },
  async create(ctx, schema) {
    const wf = await workflowsModule();
    if (!wf) throw new Error('partita workflows not available');
    return new PartitaWorkflows(ctx, schema, wf);
  },
};
