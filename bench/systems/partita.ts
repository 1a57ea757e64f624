import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { connect, type Client } from '@partita/client';
import { createLogger, silentLogger, type Logger } from '@partita/core';
import { loadOps, uuidArray } from '@partita/postgres';
import { defineJob, startNode, type JobDefinition, type PartitaNode } from '@partita/runtime';
import { noopHandler } from '../lib/probe.js';
import { sleep } from '../lib/stats.js';
import { quoteIdent } from '../lib/postgres.js';
import type { BacklogStats, BenchJob, BenchSystem, JobRef, LatencyChannel, SystemContext, SystemFactory } from './types.js';

const PARTITION = 'bench';
const QUEUE = 'default';
const BACKLOG_QUEUE = 'backlog';
/** The node's start-up work (startWorkers): the Global lease is waited for up to START_SETTLE_MAX_MS, then START_SETTLE_MS for the maintenance round after it. */
const START_SETTLE_MAX_MS = 5_000;
const START_SETTLE_MS = 300;
/** The hotkey workload's execution key: its holder runs (on no node) for the whole workload. */
export const HOT_KEY = 'hot';

/** Logs at PARTITA_LOG_LEVEL (default warn) to stderr, so stdout stays JSON lines. */
function benchLogger(): Logger {
  const level = process.env.PARTITA_LOG_LEVEL ?? 'warn';
  if (level === 'silent') return silentLogger();
  return createLogger({ name: 'partita-bench', level, transport: { target: 'pino/file', options: { destination: 2 } } });
}

function claimSql(schema: string): string {
  return loadOps(schema).claim_batch.text;
}

let sharedLogger: Logger | undefined;

class PartitaSystem implements BenchSystem {
  readonly name = 'partita';
  readonly schema: string;
  private client: Client | undefined;
  private node: PartitaNode | undefined;
  private readonly s: string;
  private readonly noop: JobDefinition<unknown, undefined>;
  private readonly logger: Logger;
  /**
   * The node's data dir, one per system instance like its schema. The Global state is kept in the
   * schema (the postgres persister, the default with a Postgres server); a data dir of its own still
   * keeps runs apart should the file persister be chosen.
   */
  private readonly dataDir: string;

  constructor(private readonly ctx: SystemContext) {
    this.schema = ctx.schema;
    this.dataDir = mkdtempSync(join(tmpdir(), `partita-${ctx.schema}-`));
    this.s = quoteIdent(ctx.schema);
    const handler = noopHandler(ctx.probe);
    this.noop = defineJob<unknown, undefined>({ type: 'noop', queue: QUEUE, perform: (payload) => handler(payload) });
    this.logger = sharedLogger ??= benchLogger();
  }

  info(): Record<string, unknown> {
    const pgOptions = process.env.PARTITA_BENCH_PARTITA_PG_OPTIONS;
    const nats = this.ctx.nats ? this.ctx.nats.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@') : false;
    return {
      pool: this.ctx.options.pool,
      pollMs: this.ctx.options.pollMs,
      nats,
      persister: 'postgres (the default with a Postgres server)',
      enqueue: 'connect().enqueueMany',
      ...(pgOptions ? { pgOptions } : {}),
    };
  }

  /** Pool options for the node and the client. PARTITA_BENCH_PARTITA_PG_OPTIONS (libpq `options`, e.g. "-c plan_cache_mode=force_custom_plan") is a diagnostic knob, off by default. */
  private pg() {
    const options = process.env.PARTITA_BENCH_PARTITA_PG_OPTIONS;
    return { connectionString: this.ctx.url, max: this.ctx.options.pool, ...(options ? { options } : {}) };
  }

  async setup(): Promise<void> {
    // connect() migrates the schema; the node registers the queues when it first starts.
    // With NATS the client publishes a wake-up per enqueue call (and an `enqueued` event per job, as it ships).
    this.client = await connect({
      postgres: this.pg(),
      schema: this.schema,
      nats: this.ctx.nats ?? false,
      cluster: 'bench',
      jobs: [this.noop],
      logger: this.logger,
    });
  }

  async enqueueMany(jobs: BenchJob[]): Promise<JobRef[]> {
    const { ids } = await this.client!.enqueueMany(
      PARTITION,
      // The backlog goes in before the node that defines `noop` first starts (and registers it).
      jobs.map((j) => ({
        type: 'noop',
        payload: j.payload,
        queue: QUEUE,
        allowUnknownType: true,
        ...(j.group ? { executionKey: j.group } : {}),
      })),
    );
    return ids;
  }

  /**
   * Starts a node with the drained queue stopped, lets its start-up work finish (the partition's Global
   * lease, the maintenance leader's first round: history partitions, pruning; a migrations check before
   * those), then starts the queue. That work ran inside the measured drain before: 100-140 ms of
   * Postgres per run, 5-7 CPU ms per 1,000 jobs of a 20,000-job drain, which a long-running node pays
   * once, not per job. graphile-worker's run() does its start-up before it resolves, so its own stays
   * outside the drain too.
   */
  async startWorkers({ concurrency }: { concurrency: number }): Promise<void> {
    if (this.node) throw new Error('partita node already running');
    const node = await this.startNodeStopped(concurrency);
    this.node = node;
    const until = performance.now() + START_SETTLE_MAX_MS;
    // The leader gauge alone: a whole scrape also runs the live job counts (a GROUP BY over every live
    // job), 0.3-0.5 s of Postgres with the depth workload's 1,000,000 jobs queued, right before the drain.
    const leader = node.metrics.registry.getSingleMetric('partita_global_leader');
    const isLeader = async () => (await leader?.get())?.values.some((v) => v.value === 1) ?? false;
    while (performance.now() < until && !(await isLeader())) await sleep(10);
    await sleep(START_SETTLE_MS);
    await node.startQueues(PARTITION, [QUEUE]);
  }

  private startNodeStopped(concurrency: number): Promise<PartitaNode> {
    return startNode({
      postgres: this.pg(),
      schema: this.schema,
      nats: this.ctx.nats ? { servers: this.ctx.nats } : false,
      dataDir: this.dataDir,
      cluster: 'bench',
      logger: this.logger,
      partitions: { [PARTITION]: { queues: { [QUEUE]: { concurrency }, [BACKLOG_QUEUE]: { concurrency: 0 } } } },
      jobs: [this.noop],
      engine: { pollMs: this.ctx.options.pollMs },
      stoppedQueues: { [PARTITION]: [QUEUE] },
    });
  }

  async stopWorkers(): Promise<void> {
    const node = this.node;
    this.node = undefined;
    // Diagnostic knob: the node's claim, flush and Global call timings of the run, on stderr.
    if (node && process.env.PARTITA_BENCH_NODE_METRICS) {
      const text = await node.metrics.scrape();
      process.stderr.write(
        text
          .split('\n')
          .filter((l) =>
            /^partita_(global_call_duration_seconds_(sum|count)|claim_duration_seconds_(sum|count)|flush_duration_seconds_(sum|count))/.test(
              l,
            ),
          )
          .join('\n') + '\n',
      );
    }
    if (node) await node.stop({ graceMs: 10_000 });
  }

  async unfinished(refs: JobRef[]): Promise<JobRef[]> {
    if (refs.length === 0) return [];
    // The ids go in binary, as the store sends its own: parsed from text they cost the server
    // ~0.5 us each (18,000 ids: ~23 against ~13 ms; graphile-worker's bigint ids ~10.5), the
    // harness's own work counted in Partita's Postgres CPU at every drain's last poll.
    const { rows } = await this.ctx.admin.query<{ id: string }>(`SELECT id::text FROM ${this.s}.jobs WHERE id = ANY($1::uuid[])`, [
      uuidArray(refs) ?? refs,
    ]);
    return rows.map((r) => r.id);
  }

  latencyChannels(): LatencyChannel[] {
    const nats = Boolean(this.ctx.nats);
    return [
      {
        name: 'local',
        wake: 'push',
        note: "node.client.enqueue: the node's own client wakes its engine in-process",
        enqueue: async (job) => {
          await this.node!.client.enqueue(PARTITION, 'noop', job.payload, {
            queue: QUEUE,
            ...(job.group ? { executionKey: job.group } : {}),
          });
        },
      },
      {
        name: 'client',
        wake: nats ? 'push' : 'poll',
        note: nats
          ? "a separate connect() client with NATS: its wake-up reaches the node's engine over NATS"
          : 'a separate connect() client without NATS: the engine finds the job at its next poll',
        enqueue: async (job) => {
          await this.client!.enqueue(PARTITION, 'noop', job.payload, { queue: QUEUE, ...(job.group ? { executionKey: job.group } : {}) });
        },
      },
    ];
  }

  async insertBacklog(count: number): Promise<BacklogStats> {
    const admin = this.ctx.admin;
    let t = performance.now();
    // Ids are valid UUIDv7s with timestamp 0 and a sequence number: older than every real id, and
    // appended to the primary key in order (random v4 ids would double the insert time).
    await admin.query(
      `INSERT INTO ${this.s}.jobs (id, partition, queue, type, payload)
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, $2, $3, 'noop', 'null'::jsonb
       FROM generate_series(1, $1::int) AS g`,
      [count, PARTITION, BACKLOG_QUEUE],
    );
    const insertMs = performance.now() - t;
    t = performance.now();
    await admin.query(`VACUUM (ANALYZE) ${this.s}.jobs`);
    return {
      insertMs,
      vacuumAnalyzeMs: performance.now() - t,
      how: `queue "${BACKLOG_QUEUE}" of partition "${PARTITION}" (declared with concurrency 0)`,
    };
  }

  async insertHotKey(count: number): Promise<BacklogStats> {
    const admin = this.ctx.admin;
    let t = performance.now();
    // The holder: attempt 1 of a job of the key, running under a lease that outlasts the bench and
    // a node id no node has, so no node completes it and no rescue takes it back.
    await admin.query(
      `INSERT INTO ${this.s}.jobs (id, partition, queue, type, payload, execution_key, state, attempts, locked_by, locked_until, started_at)
       VALUES ('00000000-0000-7000-8000-000000000000', $1, $2, 'noop', '{}'::jsonb, $3, 'running', 1, 'bench-hot-holder', now() + interval '1 day', now())`,
      [PARTITION, QUEUE, HOT_KEY],
    );
    // The holder is the key's head (migration 0013), and the jobs behind it are stored as enqueue
    // stores them behind a held key: waiting.
    await admin.query(
      `INSERT INTO ${this.s}.execution_key_heads (partition, execution_key, head) VALUES ($1, $2, '00000000-0000-7000-8000-000000000000')`,
      [PARTITION, HOT_KEY],
    );
    // Ids as insertBacklog's (UUIDv7, timestamp 0): ahead of every measured job in claim order, the
    // worst case for a claim that walks the queue. Empty payloads: were one to run, the probe would
    // count a start no measured job made, and hotKeyQueued would show it.
    await admin.query(
      `INSERT INTO ${this.s}.jobs (id, partition, queue, type, payload, execution_key, state)
       SELECT ('00000000-0000-7000-8000-' || lpad(to_hex(g), 12, '0'))::uuid, $2, $3, 'noop', '{}'::jsonb, $4, 'waiting'
       FROM generate_series(1, $1::int) AS g`,
      [count, PARTITION, QUEUE, HOT_KEY],
    );
    const insertMs = performance.now() - t;
    t = performance.now();
    await admin.query(`VACUUM (ANALYZE) ${this.s}.jobs`);
    return {
      insertMs,
      vacuumAnalyzeMs: performance.now() - t,
      how: `queue "${QUEUE}" of partition "${PARTITION}", execution key "${HOT_KEY}" held by a running job`,
    };
  }

  async hotKeyQueued(): Promise<number> {
    const { rows } = await this.ctx.admin.query<{ n: number }>(
      `SELECT count(*)::integer AS n FROM ${this.s}.jobs WHERE partition = $1 AND execution_key = $2 AND state <> 'running'`,
      [PARTITION, HOT_KEY],
    );
    return rows[0]!.n;
  }

  async vacuum(): Promise<void> {
    await this.ctx.admin.query(`VACUUM (ANALYZE) ${this.s}.jobs`);
  }

  async explainClaim(): Promise<string> {
    const client = await this.ctx.admin.connect();
    try {
      await client.query('BEGIN');
      // As Partita's own pools run it: without JIT (whose compile time would swamp the plan).
      await client.query('SET LOCAL jit = off');
      const { rows } = await client.query<{ 'QUERY PLAN': string }>(`EXPLAIN (ANALYZE, BUFFERS) ${claimSql(this.schema)}`, [
        PARTITION,
        [QUEUE],
        [this.ctx.options.concurrency],
        'bench-explain',
        30_000,
        [this.noop.type], // the types the node defines, as its engine claims
        [], // the continuations it runs (none): marked jobs are left to nodes that run theirs
      ]);
      return rows.map((r) => r['QUERY PLAN']).join('\n');
    } finally {
      await client.query('ROLLBACK').catch(() => undefined);
      client.release();
    }
  }

  async teardown(): Promise<void> {
    await this.stopWorkers().catch((err) => this.ctx.log(`partita stop failed: ${(err as Error).message}`));
    const client = this.client;
    this.client = undefined;
    if (client) await client.close();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

export const partita: SystemFactory = {
  name: 'partita',
  async create(ctx) {
    return new PartitaSystem(ctx);
  },
};
