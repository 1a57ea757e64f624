import { createRequire } from 'node:module';
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { performance } from 'node:perf_hooks';
import type * as GraphileWorker from 'graphile-worker';
import { noopHandler } from '../lib/probe.js';
import { quoteIdent } from '../lib/postgres.js';
import type { BacklogStats, BenchJob, BenchSystem, JobRef, LatencyChannel, SystemContext, SystemFactory } from './types.js';

type GraphileModule = typeof GraphileWorker;
type WorkerUtils = GraphileWorker.WorkerUtils & {
  /** graphile-worker ≥ 0.17 only. */
  addJobs?: (specs: { identifier: string; payload: unknown; queueName?: string }[]) => Promise<{ id: string }[]>;
};

/**
 * Which graphile-worker to load: the bench's devDependency, or (to compare versions) a module path
 * or directory given in PARTITA_BENCH_GRAPHILE_MODULE.
 */
async function loadGraphile(): Promise<{ mod: GraphileModule; version: string; from: string }> {
  const spec = process.env.PARTITA_BENCH_GRAPHILE_MODULE ?? 'graphile-worker';
  const require = createRequire(import.meta.url);
  const main = require.resolve(spec);
  let dir = dirname(main);
  let version = 'unknown';
  for (let i = 0; i < 5; i++) {
    const pkg = join(dir, 'package.json');
    if (existsSync(pkg)) {
      const json = JSON.parse(readFileSync(pkg, 'utf8')) as { name?: string; version?: string };
      if (json.name === 'graphile-worker') {
        version = json.version ?? version;
        break;
      }
    }
    dir = dirname(dir);
  }
  const ns = (await import(pathToFileURL(main).href)) as GraphileModule & { default?: GraphileModule };
  const mod = (ns.default && typeof ns.default.run === 'function' ? ns.default : ns) as GraphileModule;
  return { mod, version, from: dir };
}

function atLeast(version: string, major: number, minor: number): boolean {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return false;
  const [maj, min] = [Number(m[1]), Number(m[2])];
  return maj > major || (maj === major && min >= minor);
}

class GraphileSystem implements BenchSystem {
  readonly name = 'graphile';
  readonly schema: string;
  private utils: WorkerUtils | undefined;
  private runner: GraphileWorker.Runner | undefined;
  private readonly s: string;
  private readonly features: { localQueue: number | false; batchDelayMs: number | false; addJobs: boolean; note?: string };

  constructor(
    private readonly ctx: SystemContext,
    private readonly gw: { mod: GraphileModule; version: string; from: string },
  ) {
    this.schema = ctx.schema;
    this.s = quoteIdent(ctx.schema);
    const modern = atLeast(gw.version, 0, 17);
    const o = ctx.options;
    this.features = {
      localQueue: modern && o.graphileLocalQueue > 0 ? o.graphileLocalQueue : false,
      batchDelayMs: modern && o.graphileBatchDelayMs >= 0 ? o.graphileBatchDelayMs : false,
      addJobs: false,
    };
    if (!modern) {
      this.features.note = `graphile-worker ${gw.version} predates localQueue and batched completion (both added in 0.17.0): running without them`;
    }
  }

  info(): Record<string, unknown> {
    return {
      version: this.gw.version,
      localQueue: this.features.localQueue,
      completeJobBatchDelay: this.features.batchDelayMs,
      enqueue: this.features.addJobs ? 'WorkerUtils.addJobs' : 'add_jobs() via WorkerUtils.withPgClient',
      maxPoolSize: this.ctx.options.pool,
      pollInterval: this.ctx.options.pollMs,
      ...(this.features.note ? { note: this.features.note } : {}),
    };
  }

  private logger(): GraphileWorker.Logger {
    const log = this.ctx.log;
    return new this.gw.mod.Logger(() => (level: string, message: string) => {
      if (level !== 'error' && level !== 'warning') return;
      // Its "maxPoolSize smaller than concurrency" advice repeats at every start: say it once.
      if (level === 'warning' && warnedOnce.has(message)) return;
      warnedOnce.add(message);
      log(`graphile ${level}: ${message}`);
    });
  }

  private preset(): Record<string, unknown> {
    const worker: Record<string, unknown> = {};
    if (this.features.localQueue !== false) worker.localQueue = { size: this.features.localQueue };
    if (this.features.batchDelayMs !== false) {
      worker.completeJobBatchDelay = this.features.batchDelayMs;
      worker.failJobBatchDelay = this.features.batchDelayMs;
    }
    return { worker };
  }

  async setup(): Promise<void> {
    this.utils = (await this.gw.mod.makeWorkerUtils({
      connectionString: this.ctx.url,
      schema: this.schema,
      maxPoolSize: this.ctx.options.pool,
      logger: this.logger(),
    })) as WorkerUtils;
    await this.utils.migrate();
    this.features.addJobs = typeof this.utils.addJobs === 'function';
  }

  async enqueueMany(jobs: BenchJob[]): Promise<JobRef[]> {
    const utils = this.utils!;
    if (utils.addJobs) {
      const added = await utils.addJobs(
        jobs.map((j) => ({ identifier: 'noop', payload: j.payload, ...(j.group ? { queueName: j.group } : {}) })),
      );
      return added.map((j) => String(j.id));
    }
    // 0.16: the same statement addJobs runs in 0.17+.
    const specs = JSON.stringify(jobs.map((j) => ({ identifier: 'noop', payload: j.payload, queue_name: j.group ?? null })));
    return utils.withPgClient(async (client) => {
      const { rows } = await client.query<{ id: string }>({
        name: `bench_add_jobs/${this.schema}`,
        text: `SELECT id::text FROM ${this.s}.add_jobs(array(SELECT json_populate_recordset(null::${this.s}.job_spec, $1::json)))`,
        values: [specs],
      });
      return rows.map((r) => r.id);
    });
  }

  async startWorkers({ concurrency }: { concurrency: number }): Promise<void> {
    if (this.runner) throw new Error('graphile workers already running');
    const handler = noopHandler(this.ctx.probe);
    this.runner = await this.gw.mod.run({
      connectionString: this.ctx.url,
      schema: this.schema,
      maxPoolSize: this.ctx.options.pool,
      concurrency,
      pollInterval: this.ctx.options.pollMs,
      noHandleSignals: true,
      logger: this.logger(),
      taskList: { noop: async (payload: unknown) => void (await handler(payload)) },
      preset: this.preset() as GraphileWorker.RunnerOptions['preset'],
    });
  }

  async stopWorkers(): Promise<void> {
    const runner = this.runner;
    this.runner = undefined;
    if (runner) await runner.stop();
  }

  async unfinished(refs: JobRef[]): Promise<JobRef[]> {
    if (refs.length === 0) return [];
    const { rows } = await this.ctx.admin.query<{ id: string }>(
      `SELECT id::text FROM ${this.s}._private_jobs WHERE id = ANY($1::bigint[])`,
      [refs],
    );
    return rows.map((r) => r.id);
  }

  latencyChannels(): LatencyChannel[] {
    return [
      {
        name: 'notify',
        wake: 'push',
        note: 'WorkerUtils.addJob; the worker wakes on LISTEN/NOTIFY as graphile-worker ships',
        enqueue: async (job) => {
          await this.utils!.addJob('noop', job.payload, job.group ? { queueName: job.group } : {});
        },
      },
    ];
  }

  async insertBacklog(count: number): Promise<BacklogStats> {
    const admin = this.ctx.admin;
    let t = performance.now();
    let how: string;
    if (this.ctx.options.graphileBacklog === 'task') {
      // Another task identifier, not in the workers' task list: queued, never runnable by them.
      await admin.query(`INSERT INTO ${this.s}._private_tasks (identifier) VALUES ('backlog') ON CONFLICT (identifier) DO NOTHING`);
      await admin.query(
        `INSERT INTO ${this.s}._private_jobs (task_id, payload)
         SELECT (SELECT id FROM ${this.s}._private_tasks WHERE identifier = 'backlog'), '{}'::json FROM generate_series(1, $1::int)`,
        [count],
      );
      how = `task identifier "backlog" (not in the workers' task list), run_at now()`;
    } else {
      await admin.query(`INSERT INTO ${this.s}._private_tasks (identifier) VALUES ('noop') ON CONFLICT (identifier) DO NOTHING`);
      await admin.query(
        `INSERT INTO ${this.s}._private_jobs (task_id, payload, run_at)
         SELECT (SELECT id FROM ${this.s}._private_tasks WHERE identifier = 'noop'), '{}'::json, now() + interval '100 years' FROM generate_series(1, $1::int)`,
        [count],
      );
      how = `task "noop" scheduled 100 years ahead`;
    }
    const insertMs = performance.now() - t;
    t = performance.now();
    await admin.query(`VACUUM (ANALYZE) ${this.s}._private_jobs`);
    return { insertMs, vacuumAnalyzeMs: performance.now() - t, how };
  }

  async insertHotKey(count: number): Promise<BacklogStats> {
    const admin = this.ctx.admin;
    let t = performance.now();
    // graphile-worker's equivalent of an execution key whose holder runs: a named queue locked by a
    // worker that never unlocks it (its job is locked too), with the jobs behind it. The locked_at
    // is recent, so the 4-hour stale-lock sweep leaves it. Task `noop`, the drained task.
    await admin.query(`INSERT INTO ${this.s}._private_tasks (identifier) VALUES ('noop') ON CONFLICT (identifier) DO NOTHING`);
    await admin.query(
      `INSERT INTO ${this.s}._private_job_queues (queue_name, locked_at, locked_by) VALUES ('hot', now(), 'bench-hot-holder')`,
    );
    await admin.query(
      `INSERT INTO ${this.s}._private_jobs (job_queue_id, task_id, payload, locked_at, locked_by, attempts)
       SELECT (SELECT id FROM ${this.s}._private_job_queues WHERE queue_name = 'hot'),
              (SELECT id FROM ${this.s}._private_tasks WHERE identifier = 'noop'), '{}'::json, now(), 'bench-hot-holder', 1`,
    );
    await admin.query(
      `INSERT INTO ${this.s}._private_jobs (job_queue_id, task_id, payload)
       SELECT (SELECT id FROM ${this.s}._private_job_queues WHERE queue_name = 'hot'),
              (SELECT id FROM ${this.s}._private_tasks WHERE identifier = 'noop'), '{}'::json
       FROM generate_series(1, $1::int)`,
      [count],
    );
    const insertMs = performance.now() - t;
    t = performance.now();
    await admin.query(`VACUUM (ANALYZE) ${this.s}._private_jobs, ${this.s}._private_job_queues`);
    return {
      insertMs,
      vacuumAnalyzeMs: performance.now() - t,
      how: 'task "noop" in named queue "hot", locked by a worker that never finishes its job',
    };
  }

  async hotKeyQueued(): Promise<number> {
    const { rows } = await this.ctx.admin.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM ${this.s}._private_jobs
       WHERE job_queue_id = (SELECT id FROM ${this.s}._private_job_queues WHERE queue_name = 'hot') AND locked_at IS NULL`,
    );
    return rows[0]!.n;
  }

  async vacuum(): Promise<void> {
    await this.ctx.admin.query(`VACUUM (ANALYZE) ${this.s}._private_jobs, ${this.s}._private_job_queues`);
  }

  async explainClaim(): Promise<string> {
    const limit = this.features.localQueue === false ? 1 : this.features.localQueue;
    const client = await this.ctx.admin.connect();
    try {
      await client.query('BEGIN');
      const { rows: tasks } = await client.query<{ id: number }>(`SELECT id FROM ${this.s}._private_tasks WHERE identifier = 'noop'`);
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(
        `EXPLAIN (ANALYZE, BUFFERS)
         SELECT jobs.job_queue_id, jobs.priority, jobs.run_at, jobs.id
         FROM ${this.s}._private_jobs AS jobs
         WHERE jobs.is_available = true AND run_at <= now() AND task_id = ANY($1::int[])
           AND (jobs.job_queue_id IS NULL OR jobs.job_queue_id IN (
             SELECT id FROM ${this.s}._private_job_queues AS job_queues WHERE job_queues.is_available = true FOR UPDATE SKIP LOCKED))
         ORDER BY priority ASC, run_at ASC
         LIMIT ${limit}
         FOR UPDATE SKIP LOCKED`,
        [tasks.map((t) => t.id)],
      );
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  async teardown(): Promise<void> {
    await this.stopWorkers().catch((err) => this.ctx.log(`graphile stop failed: ${(err as Error).message}`));
    const utils = this.utils;
    this.utils = undefined;
    if (utils) await utils.release();
  }
}

const warnedOnce = new Set<string>();

let loaded: Promise<{ mod: GraphileModule; version: string; from: string }> | undefined;

export const graphile: SystemFactory = {
  name: 'graphile',
  async create(ctx) {
    loaded ??= loadGraphile();
    return new GraphileSystem(ctx, await loaded);
  },
};
