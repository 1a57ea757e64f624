import pg from 'pg';
import {
  DuplicateQueueKeyError,
  FINISHED_JOB_STATES,
  LIVE_JOB_STATES,
  NAME_PATTERN,
  UnknownPartitionError,
  UnknownQueueError,
  ValidationError,
  describeError,
  isUuid,
  lookupWithTraceContext,
  silentLogger,
  traceEnqueue,
  toJsonStrict,
  uuidv7,
  type EnqueueOptions,
  type JobError,
  type JobRecord,
  type Logger,
} from '@partita/core';
import type { HandoffJob } from '@partita/protocol';
import { migrate } from './migrate.js';
import { assertSchemaName, loadOps, type OpName, type Statement } from './sql.js';
import { lookupIndex, lookupValue } from './lookup.js';
import { toJobRecord, type JobRow } from './rows.js';
import { ROLL_CALL_NOTICE, controlNotice, notifyChannel, wakeNotice } from './notices.js';

export const DEFAULT_SCHEMA = 'partita';
export const DEFAULT_PAYLOAD_LIMIT_BYTES = 1024 * 1024;
/** A job whose node dies this many times while running it is failed instead of rescued again. */
export const DEFAULT_MAX_RESCUES = 5;
/** How many jobs go into one INSERT statement; larger batches are split inside one transaction. */
const ENQUEUE_CHUNK = 5000;

export type PgOptions = pg.PoolConfig;

export interface StoreOptions {
  /** A connection string, pg pool options, or an existing pool (then close() leaves it open). */
  postgres: string | PgOptions | pg.Pool;
  schema?: string;
  logger?: Logger;
  payloadLimitBytes?: number;
  /** Run migrations when opening (default true). */
  migrate?: boolean;
  /** Refuse enqueues to partitions/queues no node has declared (default true). */
  checkQueues?: boolean;
  maxRescues?: number;
}

export interface NewJob extends EnqueueOptions {
  partition: string;
  type: string;
  payload?: unknown;
  /** The enqueuer's W3C trace context, set by the `partita.enqueue` span when tracing is on. */
  traceparent?: string;
}

export interface EnqueueOutcome {
  id: string;
  /** Set when the job was not enqueued because its queue key is held by another live job. */
  refused?: { reason: 'queue_key'; queueKey: string; heldBy: string | undefined };
}

/**
 * A job a claim (or a hand-off) made this node's running attempt: the hand-off's wire shape, plus
 * what only a claim can carry. `attempt` is the fencing token a completion must present.
 */
export interface ClaimedJob extends HandoffJob {
  executionKey: string | null;
  cancelRequested: boolean;
}

export interface ClaimRequest {
  nodeId: string;
  partition: string;
  leaseMs: number;
  queues: { queue: string; limit: number }[];
  /**
   * The job types the node defines: jobs of other types stay queued for nodes that define them
   * (in a rolling deploy, old nodes leave the new types alone). Undefined: any type (tools, tests).
   */
  types?: readonly string[];
}

/** A job type as nodes register it: what a client needs to enqueue it without the definition. */
export interface RegisteredJobType {
  type: string;
  queue: string;
  maxAttempts: number;
  timeoutMs: number | null;
  /** Key templates ('invoice:{invoice}'); null when the type declares none as data. */
  queueKey: string | null;
  executionKey: string | null;
}

export interface RateLimitedClaimRequest {
  nodeId: string;
  partition: string;
  leaseMs: number;
  /**
   * `limit`: jobs to claim at most; each key may start `rateLimit` jobs per `periodMs`, where the
   * key is the text at the dot-separated payload path `keyPath` (absent: the queue is one key).
   */
  queues: { queue: string; limit: number; keyPath?: string; rateLimit: number; periodMs: number }[];
  /** As ClaimRequest.types: the job types the node defines; undefined: any. */
  types?: readonly string[];
}

/** What a rate-limited queue's limit did in one claim. */
export interface RateLimitOutcome {
  /** Keys at their limit: skipped, or filled by this claim (a queue limited as a whole has one key). */
  limitedKeys: number;
  /** Ms until the first of those keys has a token again; null when none is at its limit. */
  waitMs: number | null;
  /** A queue limited as a whole: tokens its bucket has left. Null per key. */
  tokensLeft: number | null;
  /** While a key is at its limit: due jobs (up to the claim's limit) the claim left queued. */
  held: number;
}

export interface Completion {
  id: string;
  attempt: number;
  result: unknown;
  /** The result's JSON text when the caller has checked it already (toJsonStrict); then `result` is not read. */
  json?: string;
}

/**
 * The ids a batch write recorded. `refused` holds the rows the database would not take (id → why,
 * e.g. a value Postgres cannot store): they were left as they were, and the rest of the batch was
 * recorded without them.
 */
export type Recorded = Set<string> & { refused: Map<string, string> };

export interface Failure {
  id: string;
  attempt: number;
  /** Null when the attempt ended without an error of its own (e.g. cancelled before running). */
  error: JobError | null;
  /** When to try again; absent means this was the last attempt. */
  retryAt?: Date;
  /** Final state when not retried (default failed). */
  finalState?: 'failed' | 'cancelled';
}

export interface RescuedJob {
  id: string;
  partition: string;
  queue: string;
  executionKey: string | null;
  /** True when the job was failed for good (rescued too many times), false when requeued. */
  failed: boolean;
}

export interface CancelOutcome {
  id: string;
  partition: string;
  /** True when the job was running: its node must abort it. */
  running: boolean;
  node: string | null;
}

/** A pause/throttle change made in Postgres (see JobStore.changeControl). */
export type ControlChange =
  | { op: 'pause' | 'resume'; queue: string }
  | { op: 'throttle'; ms: number; queue?: string; node?: string };

/** A partition's pause/throttle state as Postgres holds it; `version` grows with every change. */
export interface ControlRow {
  paused: string[];
  throttles: { ms: number; queue?: string; node?: string }[];
  version: number;
}

function controlRow(row: ControlRow): ControlRow {
  // bigint comes back as a string from pg.
  return { paused: row.paused, throttles: row.throttles, version: Number(row.version) };
}

/** A row of the schema's `migrations` table. */
export interface AppliedMigration {
  version: number;
  name: string;
  appliedAt: Date;
}

/** What JobStore.listJobs shows; every field left out matches everything. */
export interface JobListFilter {
  partition?: string;
  queue?: string;
  type?: string;
  /** Any of these states (none given: all). */
  states?: readonly JobRecord['state'][];
  /** Every key must match; an array: the job's values for the key must include each. */
  lookup?: Record<string, string | number | readonly (string | number)[]>;
  /** Only jobs with ids below this one (the previous page's last id). */
  before?: string;
  /** Only these ids. */
  ids?: readonly string[];
  limit: number;
}

/** Which jobs a bulk operation (retry, cancel, delete, count) acts on: list_jobs's filter without a page size. */
export type JobMatch = Omit<JobListFilter, 'limit'>;

/** The bulk operations: each applies to some states only (see bulkStates). */
export type BulkOperation = 'cancel' | 'retry' | 'delete';

export interface RetryOutcome {
  id: string;
  partition: string;
  queue: string;
  type: string;
  /** Attempts made before the retry (the next run's first attempt is this plus one). */
  attempts: number;
  queueKey: string | null;
  /** False when a live job holds the job's queue key: it stays finished. */
  retried: boolean;
  /** The raised attempt limit (retried jobs only). */
  maxAttempts: number | null;
}

export interface BulkCancelOutcome extends CancelOutcome {
  queue: string;
  type: string;
  attempts: number;
}

/**
 * One transaction of JobStore.withTransaction: ops given it run on its connection and commit or
 * roll back together. Valid only while the function given to withTransaction runs.
 */
export interface Tx {
  /** The transaction's connection (checked out of the store's pool). */
  readonly client: pg.PoolClient;
  /** Runs SQL in the transaction; `{{schema}}` in the text is the store's schema. */
  query<R extends pg.QueryResultRow = pg.QueryResultRow>(sql: string, params?: unknown[]): Promise<R[]>;
  /** JobStore.enqueue inside the transaction: the jobs exist only if it commits. */
  enqueue(jobs: NewJob[]): Promise<EnqueueOutcome[]>;
}

/**
 * The durable job store: every Postgres round trip Partita makes goes through here, each one a
 * SQL file in sql/ops. Batch in, batch out: callers group work, this class never loops per job.
 */
export class JobStore {
  readonly pool: pg.Pool;
  /** Claims only (see the constructor); the same pool as `pool` when one was handed in. */
  private readonly onePlanPool: pg.Pool;
  readonly schema: string;
  readonly payloadLimitBytes: number;
  private readonly ownsPool: boolean;
  private closed = false;
  private readonly ops: Record<OpName, Statement>;
  private readonly logger: Logger;
  private readonly checkQueues: boolean;
  private readonly maxRescues: number;
  private known: Map<string, Set<string>> | undefined;

  private constructor(options: StoreOptions) {
    this.schema = options.schema ?? DEFAULT_SCHEMA;
    assertSchemaName(this.schema);
    if (options.postgres instanceof pg.Pool) {
      this.pool = options.postgres;
      this.onePlanPool = options.postgres;
      this.ownsPool = false;
    } else {
      const config: PgOptions = typeof options.postgres === 'string' ? { connectionString: options.postgres } : { ...options.postgres };
      config.max ??= 10;
      config.application_name ??= 'partita';
      // The batch statements take arrays whose sizes vary wildly; a generic plan chosen for one
      // size (a nested loop over unnest) stalled completions for seconds. Plan each execution.
      const userOptions = config.options;
      // JIT never pays for these short statements, and a generic plan's inflated cost estimate
      // (the claim's, with a million jobs queued) made Postgres spend 0.6 s compiling each run.
      config.options ??= '-c plan_cache_mode=force_custom_plan -c jit=off';
      this.pool = new pg.Pool(config);
      // Statements of one shape whatever their arguments, on the path from enqueue to start, are
      // the other way round: the claim (planning it each time cost more than running it, 0.6 of
      // 1.2 ms) and the single-job INSERTs (planning was 0.2 of 1.5 ms). Their own few
      // connections keep one cached generic plan each.
      this.onePlanPool = new pg.Pool({
        ...config,
        max: Math.max(2, Math.ceil(config.max / 4)),
        options: `${userOptions ? `${userOptions} ` : ''}-c plan_cache_mode=force_generic_plan -c jit=off`,
      });
      this.ownsPool = true;
    }
    this.logger = options.logger ?? silentLogger();
    // An idle client that loses its connection (server restart) emits 'error' on the pool;
    // unhandled, that would kill the process. The next query reconnects.
    // After close(), a connection the pool let go of may still be shutting when the server stops
    // (pg's end() does not wait for the sockets): that error is expected, not worth a warning.
    for (const pool of new Set([this.pool, this.onePlanPool])) {
      pool.on('error', (err) => {
        if (!this.closed) this.logger.warn({ err: err.message }, 'idle Postgres connection failed; it will be replaced');
      });
    }
    this.payloadLimitBytes = options.payloadLimitBytes ?? DEFAULT_PAYLOAD_LIMIT_BYTES;
    this.checkQueues = options.checkQueues ?? true;
    this.maxRescues = options.maxRescues ?? DEFAULT_MAX_RESCUES;
    this.ops = loadOps(this.schema);
  }

  static async open(options: StoreOptions): Promise<JobStore> {
    const store = new JobStore(options);
    if (options.migrate ?? true) {
      try {
        await store.migrate();
      } catch (err) {
        await store.close();
        throw err;
      }
    }
    return store;
  }

  async migrate(): Promise<number[]> {
    const applied = await migrate(this.pool, this.schema, this.logger);
    await this.ensureHistoryPartitions();
    return applied;
  }

  async close(): Promise<void> {
    this.closed = true;
    if (this.ownsPool) await Promise.all([this.pool.end(), this.onePlanPool.end()]);
  }

  /**
   * Runs `fn` in one transaction (BEGIN … COMMIT on a connection of the pool); the ops given the
   * `Tx` (tx.enqueue, tx.query, complete/fail with their `tx` argument) take part in it. A throw
   * rolls everything back and rejects with it.
   */
  async withTransaction<T>(fn: (tx: Tx) => Promise<T>): Promise<T> {
    const client = await this.pool.connect();
    const tx: Tx = {
      client,
      query: async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
        (await client.query<R>(sql.replaceAll('{{schema}}', `"${this.schema}"`), params)).rows,
      enqueue: (jobs) => traceEnqueue(jobs, (traced) => this.insertJobs(traced, client), (outcomes) => outcomes.filter((o) => !o.refused).map((o) => o.id)),
    };
    let broken: unknown;
    try {
      await client.query('BEGIN');
      const value = await fn(tx);
      await client.query('COMMIT');
      return value;
    } catch (err) {
      // A connection that cannot even roll back is not given back to the pool for reuse.
      await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
      throw err;
    } finally {
      client.release(broken instanceof Error ? broken : undefined);
    }
  }

  private async run<R extends pg.QueryResultRow>(
    op: OpName,
    values: unknown[],
    client?: pg.PoolClient | pg.Pool,
    retry?: (err: unknown, attempt: number) => boolean,
  ): Promise<R[]> {
    const stmt = this.ops[op];
    for (let attempt = 1; ; attempt++) {
      try {
        return (await (client ?? this.pool).query<R>({ name: stmt.name, text: stmt.text, values })).rows;
      } catch (err) {
        if (!retry?.(err, attempt)) throw err;
      }
    }
  }

  // ── enqueue ────────────────────────────────────────────────────────────────────────────────

  /**
   * Inserts jobs in one round trip per few thousand. Jobs whose queue key is taken are not
   * inserted and come back with `refused`; everything else is durable when this resolves.
   */
  async enqueue(jobs: NewJob[]): Promise<EnqueueOutcome[]> {
    return traceEnqueue(jobs, (traced) => this.insertJobs(traced), (outcomes) => outcomes.filter((o) => !o.refused).map((o) => o.id));
  }

  /** `tx`: a connection inside a transaction (withTransaction): every statement runs there. */
  private async insertJobs(jobs: NewJob[], tx?: pg.PoolClient): Promise<EnqueueOutcome[]> {
    if (jobs.length === 0) return [];
    const now = Date.now();
    const batch = new EnqueueBatch();
    const single = jobs.length === 1;
    for (let i = 0; i < jobs.length; i++) this.addJob(batch, jobs[i]!, i, single, now);
    await this.assertKnownQueues(batch.queuePairs);
    // Only keyed jobs come back: the others cannot be refused, so the statement succeeding means
    // they were inserted.
    const inserted = new Set<string>();
    if (jobs.length <= ENQUEUE_CHUNK) {
      const rows = single
        ? await this.run<{ id: string }>('enqueue_one', batch.single(), tx ?? this.onePlanPool)
        : await this.run<{ id: string }>('enqueue_batch', batch.params(0, jobs.length), tx);
      for (const r of rows) inserted.add(r.id);
    } else if (tx) {
      for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
        for (const r of await this.run<{ id: string }>('enqueue_batch', batch.params(i, Math.min(i + ENQUEUE_CHUNK, jobs.length)), tx)) inserted.add(r.id);
      }
    } else {
      const client = await this.pool.connect();
      try {
        await client.query('BEGIN');
        for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
          const params = batch.params(i, Math.min(i + ENQUEUE_CHUNK, jobs.length));
          for (const r of await this.run<{ id: string }>('enqueue_batch', params, client)) inserted.add(r.id);
        }
        await client.query('COMMIT');
      } catch (err) {
        await client.query('ROLLBACK').catch(() => undefined);
        throw err;
      } finally {
        client.release();
      }
    }
    const { ids, partitions, queueKeys } = batch;
    const outcomes: EnqueueOutcome[] = [];
    const refused: number[] = [];
    for (let i = 0; i < ids.length; i++) {
      outcomes.push({ id: ids[i]! });
      if (queueKeys[i] !== null && !inserted.has(ids[i]!)) refused.push(i);
    }
    if (refused.length > 0) {
      const holders = new Map<string, string>();
      const keysByPartition = new Map<string, string[]>();
      for (const i of refused) {
        const keys = keysByPartition.get(partitions[i]!) ?? [];
        keys.push(queueKeys[i]!);
        keysByPartition.set(partitions[i]!, keys);
      }
      for (const [partition, keys] of keysByPartition) {
        const found = await this.run<{ queue_key: string; id: string }>('queue_key_holders', [partition, keys], tx);
        for (const h of found) holders.set(`${partition}\u0000${h.queue_key}`, h.id);
      }
      for (const i of refused) {
        const queueKey = queueKeys[i]!;
        const heldBy = holders.get(`${partitions[i]}\u0000${queueKey}`);
        outcomes[i]!.refused = { reason: 'queue_key', queueKey, heldBy: heldBy === ids[i] ? undefined : heldBy };
      }
    }
    return outcomes;
  }

  /**
   * Enqueues one job straight into a node's hands: stored as that node's running attempt, leased
   * for `leaseMs`, and returned as claimed (the node runs it from a hand-off message, no claim).
   * A taken queue key is a DuplicateQueueKeyError. Jobs with an execution key are not handed off:
   * their key's turn is the claim's to decide.
   */
  async enqueueHandedOff(job: NewJob, nodeId: string, leaseMs: number): Promise<ClaimedJob> {
    return traceEnqueue([job], ([traced]) => this.insertHandedOff(traced!, nodeId, leaseMs), (claimed) => [claimed.id]);
  }

  private async insertHandedOff(job: NewJob, nodeId: string, leaseMs: number): Promise<ClaimedJob> {
    const batch = new EnqueueBatch();
    this.addJob(batch, job, 0, true, Date.now());
    if (batch.executionKeys[0] !== null) throw new ValidationError('a job with an execution key is claimed, never handed off', 'executionKey');
    await this.assertKnownQueues(batch.queuePairs);
    const [row] = await this.run<ClaimRow>('enqueue_handoff', [...batch.single(), nodeId, leaseMs], this.onePlanPool);
    if (!row) {
      const queueKey = batch.queueKeys[0]!;
      throw new DuplicateQueueKeyError(queueKey, await this.queueKeyHolder(batch.partitions[0]!, queueKey));
    }
    return claimedJob(batch.partitions[0]!, { ...row, execution_key: null, cancel_requested: false, traceparent: job.traceparent ?? null });
  }

  /** Enqueues one job; a taken queue key is a DuplicateQueueKeyError. */
  async enqueueOne(job: NewJob): Promise<string> {
    const [outcome] = await this.enqueue([job]);
    if (outcome!.refused) throw new DuplicateQueueKeyError(outcome!.refused.queueKey, outcome!.refused.heldBy);
    return outcome!.id;
  }

  /** Validates job `index` of a batch and appends it to the batch's columns. */
  private addJob(batch: EnqueueBatch, job: NewJob, index: number, single: boolean, now: number): void {
    if (typeof job !== 'object' || job === null) throw new ValidationError('must be an object', jobPath(index, single));
    const fields = fieldsOf(job);
    const { partition, queue: queueGiven, type, priority: priorityGiven, maxAttempts: attemptsGiven, timeoutMs: timeoutGiven } = fields;
    const { runAt: runAtDate, delayMs, queueKey, executionKey, payload: value, lookup } = fields;
    const queue = queueGiven ?? 'default';
    const priority = priorityGiven ?? 0;
    const maxAttempts = attemptsGiven ?? 1;
    const timeoutMs = timeoutGiven ?? null;
    if (typeof partition !== 'string' || !NAME_PATTERN.test(partition)) {
      throw new ValidationError('partition must be 1-64 letters, digits, _ or -', jobPath(index, single, 'partition'));
    }
    if (typeof queue !== 'string' || !NAME_PATTERN.test(queue)) {
      throw new ValidationError('queue must be 1-64 letters, digits, _ or -', jobPath(index, single, 'queue'));
    }
    if (typeof type !== 'string' || type.length === 0 || type.length > 200) {
      throw new ValidationError('type must be a non-empty string (the name given to defineJob)', jobPath(index, single, 'type'));
    }
    if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
      throw new ValidationError('priority must be an integer (lower runs first)', jobPath(index, single, 'priority'));
    }
    if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) {
      throw new ValidationError('maxAttempts must be an integer from 1 to 1000', jobPath(index, single, 'maxAttempts'));
    }
    if (timeoutMs !== null && (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 2_147_483_647)) {
      throw new ValidationError('timeoutMs must be a whole number of milliseconds ≥ 0', jobPath(index, single, 'timeoutMs'));
    }
    let runAt: string | null = null;
    if (runAtDate !== undefined && delayMs !== undefined) throw new ValidationError('give runAt or delayMs, not both', jobPath(index, single));
    if (runAtDate !== undefined) {
      if (!(runAtDate instanceof Date) || Number.isNaN(runAtDate.getTime())) throw new ValidationError('runAt must be a valid Date', jobPath(index, single, 'runAt'));
      runAt = runAtDate.toISOString();
    } else if (delayMs !== undefined) {
      if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
        throw new ValidationError('delayMs must be a number of milliseconds ≥ 0', jobPath(index, single, 'delayMs'));
      }
      if (delayMs > 0) runAt = new Date(now + delayMs).toISOString();
    }
    if (queueKey !== undefined && (typeof queueKey !== 'string' || queueKey.length === 0 || queueKey.length > 500)) {
      throw new ValidationError('queueKey must be a non-empty string of at most 500 characters', jobPath(index, single, 'queueKey'));
    }
    if (executionKey !== undefined && (typeof executionKey !== 'string' || executionKey.length === 0 || executionKey.length > 500)) {
      throw new ValidationError('executionKey must be a non-empty string of at most 500 characters', jobPath(index, single, 'executionKey'));
    }
    // Kept as JSON text: it is spliced into the batch's payload document as is, never parsed back.
    const payload = value === undefined ? 'null' : toJsonStrict(value, () => jobPath(index, single, 'payload'), this.payloadLimitBytes).json;
    const indexed = lookup === undefined || lookup === null ? null : lookupIndex(lookup, jobPath(index, single, 'lookup'));
    batch.add(
      uuidv7(now),
      partition,
      queue,
      type,
      payload,
      priority,
      runAt,
      maxAttempts,
      timeoutMs,
      queueKey ?? null,
      executionKey ?? null,
      job.traceparent ? JSON.stringify(lookupWithTraceContext(indexed && lookup, job.traceparent)) : indexed ? JSON.stringify(lookup) : null,
      indexed ? JSON.stringify(indexed) : null,
    );
  }

  /** Throws UnknownPartitionError unless some node declared this partition (cached; re-read on a miss). */
  async assertKnownPartition(partition: string): Promise<void> {
    if (this.known?.has(partition)) return;
    this.known = await this.knownQueues();
    if (!this.known.has(partition)) throw new UnknownPartitionError(partition, [...this.known.keys()].sort());
  }

  private async assertKnownQueues(rows: { partition: string; queue: string }[]): Promise<void> {
    if (!this.checkQueues) return;
    const missing = (known: Map<string, Set<string>>) => rows.find((r) => !known.get(r.partition)?.has(r.queue));
    if (this.known && !missing(this.known)) return;
    this.known = await this.knownQueues();
    const row = missing(this.known);
    if (!row) return;
    const queues = this.known.get(row.partition);
    if (!queues) throw new UnknownPartitionError(row.partition, [...this.known.keys()].sort());
    throw new UnknownQueueError(row.partition, row.queue, [...queues].sort());
  }

  /** Partitions and their queues as declared by every node that ever registered. */
  /** The migrations applied to this schema, oldest first. */
  async appliedMigrations(): Promise<AppliedMigration[]> {
    const rows = await this.run<{ version: number; name: string; applied_at: Date }>('applied_migrations', []);
    return rows.map((r) => ({ version: r.version, name: r.name, appliedAt: r.applied_at }));
  }

  async knownQueues(): Promise<Map<string, Set<string>>> {
    const rows = await this.run<{ partition: string; queue: string }>('known_queues', []);
    const known = new Map<string, Set<string>>();
    for (const r of rows) {
      let set = known.get(r.partition);
      if (!set) known.set(r.partition, (set = new Set()));
      set.add(r.queue);
    }
    return known;
  }

  async registerQueues(nodeId: string, queues: { partition: string; queue: string; concurrency: number }[]): Promise<void> {
    if (queues.length === 0) return;
    await this.run('register_queues', [queues.map((q) => q.partition), queues.map((q) => q.queue), queues.map((q) => q.concurrency), nodeId]);
    this.known = undefined;
  }

  /** Records the job types a node defines, with the keys they declare as templates (null: none, or a function). */
  async registerJobTypes(nodeId: string, types: RegisteredJobType[]): Promise<void> {
    if (types.length === 0) return;
    await this.run('register_job_types', [
      types.map((t) => t.type),
      types.map((t) => t.queue),
      types.map((t) => t.maxAttempts),
      types.map((t) => t.timeoutMs),
      types.map((t) => t.queueKey ?? null),
      types.map((t) => t.executionKey ?? null),
      nodeId,
    ]);
  }

  /** Defaults and key templates of every job type some node has defined, by type. */
  async jobTypes(): Promise<Map<string, Omit<RegisteredJobType, 'type'>>> {
    const rows = await this.run<{ type: string; queue: string; max_attempts: number; timeout_ms: number | null; queue_key: string | null; execution_key: string | null }>(
      'job_types',
      [],
    );
    return new Map(
      rows.map((r) => [r.type, { queue: r.queue, maxAttempts: r.max_attempts, timeoutMs: r.timeout_ms, queueKey: r.queue_key, executionKey: r.execution_key }]),
    );
  }

  // ── the engine's hot path ─────────────────────────────────────────────────────────────────

  /** Claims up to `limit` due jobs of each queue of one partition, in one statement. */
  async claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    return (await this.claimCounted(request)).jobs;
  }

  /**
   * claim(), plus how many claimable jobs each queue had, up to its limit: when that reaches the
   * limit there are more to claim even if fewer came back (only one job per execution key is
   * taken per claim).
   */
  async claimCounted(request: ClaimRequest): Promise<{ jobs: ClaimedJob[]; found: Map<string, number> }> {
    const wanted = request.queues.filter((q) => q.limit > 0);
    const found = new Map<string, number>();
    if (wanted.length === 0) return { jobs: [], found };
    const rows = await this.run<ClaimRow & { id: string | null; found: number | null }>(
      'claim_batch',
      [request.partition, wanted.map((q) => q.queue), wanted.map((q) => q.limit), request.nodeId, request.leaseMs, request.types ?? null],
      this.onePlanPool,
      retryOnKeyRace,
    );
    const jobs: ClaimedJob[] = [];
    // Rows come in claim order (priority, run_at, id), the per-queue counts last.
    for (const r of rows) {
      if (r.id === null) found.set(r.queue, r.found ?? 0);
      else jobs.push(claimedJob(request.partition, r as ClaimRow));
    }
    return { jobs, found };
  }

  /**
   * The claim for rate-limited queues (see sql/ops/claim_rate_limited.sql): each queue takes up to
   * `limit` due jobs, skipping keys whose bucket is full, and takes the claimed jobs' tokens in the
   * same transaction, on the database's clock. Per queue it also answers how many claimable jobs it
   * found and what the limit did (`RateLimitOutcome`).
   */
  async claimRateLimited(request: RateLimitedClaimRequest): Promise<{ jobs: ClaimedJob[]; found: Map<string, number>; limited: Map<string, RateLimitOutcome> }> {
    const wanted = request.queues.filter((q) => q.limit > 0);
    const found = new Map<string, number>();
    const limited = new Map<string, RateLimitOutcome>();
    if (wanted.length === 0) return { jobs: [], found, limited };
    const rows = await this.run<
      ClaimRow & { id: string | null; found: number | null; limited_keys: number | null; wait_ms: number | null; tokens_left: number | null; held: number | null }
    >(
      'claim_rate_limited',
      [
        request.partition,
        wanted.map((q) => q.queue),
        wanted.map((q) => q.limit),
        wanted.map((q) => q.keyPath ?? null),
        wanted.map((q) => q.rateLimit),
        wanted.map((q) => q.periodMs),
        request.nodeId,
        request.leaseMs,
        request.types ?? null,
      ],
      undefined,
      retryOnKeyRace,
    );
    const jobs: ClaimedJob[] = [];
    for (const r of rows) {
      if (r.id !== null) {
        jobs.push(claimedJob(request.partition, r as ClaimRow));
        continue;
      }
      found.set(r.queue, r.found ?? 0);
      limited.set(r.queue, { limitedKeys: r.limited_keys ?? 0, waitMs: r.wait_ms, tokensLeft: r.tokens_left, held: r.held ?? 0 });
    }
    return { jobs, found, limited };
  }

  /** Drops rate-limit buckets with nothing left in their window; returns how many. */
  async pruneRateBuckets(): Promise<number> {
    const [row] = await this.run<{ dropped: number }>('prune_rate_buckets', []);
    return row?.dropped ?? 0;
  }

  /**
   * Records successes; returns the ids accepted (the rest were not this node's to complete), and
   * apart the rows refused (a result that is not JSON, or that Postgres would not store).
   * With `tx` it writes inside that transaction, and a row Postgres refuses rejects the whole write
   * (an aborted transaction takes no more statements, so the batch cannot be split there).
   */
  async complete(nodeId: string, items: Completion[], tx?: Tx): Promise<Recorded> {
    const refused = new Map<string, string>();
    if (items.length === 0) return recorded([], refused);
    // The hottest write: its arrays go as array literals built here, which the driver passes
    // through, instead of its generic serialiser escaping each element with two regexes. Ids (uuids
    // from a claim) and attempts need no quoting; most jobs return nothing, stored as JSON null.
    const ids: string[] = [];
    const attempts: number[] = [];
    const results: string[] = [];
    for (const c of items) {
      let element: string;
      if (c.json !== undefined) element = arrayElement(c.json);
      else if (c.result === undefined || c.result === null) element = '"null"';
      else {
        try {
          element = arrayElement(toJsonStrict(c.result, 'result').json);
        } catch (err) {
          refused.set(c.id, describeError(err).message);
          continue;
        }
      }
      ids.push(c.id);
      attempts.push(c.attempt);
      results.push(element);
    }
    const write = (lo: number, hi: number) =>
      this.run<{ id: string }>(
        'complete_batch',
        [`{${ids.slice(lo, hi).join(',')}}`, `{${attempts.slice(lo, hi).join(',')}}`, `{${results.slice(lo, hi).join(',')}}`, nodeId],
        tx?.client,
      );
    const rows = tx ? await write(0, ids.length) : await this.isolatingRows(ids, refused, write);
    return recorded(rows.map((r) => r.id), refused);
  }

  /** Records failed attempts (retried or final); returns the ids accepted, and apart the rows Postgres refused. `tx`: as complete(). */
  async fail(nodeId: string, items: Failure[], tx?: Tx): Promise<Recorded> {
    const refused = new Map<string, string>();
    if (items.length === 0) return recorded([], refused);
    const ids = items.map((f) => f.id);
    const attempts = items.map((f) => f.attempt);
    const errors = items.map((f) => (f.error ? JSON.stringify(f.error) : null));
    const retryAts = items.map((f) => (f.retryAt ? f.retryAt.toISOString() : null));
    const finalStates = items.map((f) => f.finalState ?? 'failed');
    const write = (lo: number, hi: number) =>
      this.run<{ id: string }>(
        'fail_batch',
        [ids.slice(lo, hi), attempts.slice(lo, hi), errors.slice(lo, hi), retryAts.slice(lo, hi), finalStates.slice(lo, hi), nodeId],
        tx?.client,
      );
    const rows = tx ? await write(0, ids.length) : await this.isolatingRows(ids, refused, write);
    return recorded(rows.map((r) => r.id), refused);
  }

  /**
   * Runs a batch write over rows [0, ids.length). When the database refuses the statement for a
   * property of a row, the batch is split in halves until each refused row stands alone: those
   * land in `refused`, every other row is written. A statement writes all of its rows or none, so
   * writing the halves again never writes a row twice. Other failures (connection, timeouts,
   * deadlocks) reject as before, for the caller to retry the whole batch; one met halfway through
   * a split leaves the parts written before it written, and their rows are then refused on the
   * retry as no longer this node's (the lease check), which costs their events but no outcome.
   */
  private async isolatingRows<R>(ids: string[], refused: Map<string, string>, write: (lo: number, hi: number) => Promise<R[]>, lo = 0, hi = ids.length): Promise<R[]> {
    if (hi <= lo) return [];
    try {
      return await write(lo, hi);
    } catch (err) {
      if (!isRowRefusal(err)) throw err;
      if (hi - lo === 1) {
        refused.set(ids[lo]!, describeRefusal(err));
        return [];
      }
      if (lo === 0 && hi === ids.length) this.logger.warn({ err: err.message, rows: hi }, 'Postgres refused a batch for one of its rows; writing it in parts to find the row');
      const mid = lo + ((hi - lo) >>> 1);
      const first = await this.isolatingRows(ids, refused, write, lo, mid);
      return first.concat(await this.isolatingRows(ids, refused, write, mid, hi));
    }
  }

  /**
   * Renews the leases of the given running jobs in one statement; returns those still held by
   * this node (a missing id means the lease was lost) and which were asked to cancel.
   */
  async heartbeat(nodeId: string, leaseMs: number, jobIds: string[], info?: Record<string, unknown>): Promise<{ renewed: string[]; cancelRequested: string[] }> {
    const rows = await this.run<{ id: string; cancel_requested: boolean }>('heartbeat', [nodeId, leaseMs, info ? JSON.stringify(info) : null, jobIds]);
    return { renewed: rows.map((r) => r.id), cancelRequested: rows.filter((r) => r.cancel_requested).map((r) => r.id) };
  }

  /**
   * Hands claimed jobs back to the queue without counting the attempt; returns the ids released,
   * and apart those finished as cancelled instead (a cancel was asked while this node held them).
   * `executionKey` records a key derived from the job's definition for a job stored without one.
   */
  async release(
    nodeId: string,
    items: { id: string; attempt: number; executionKey?: string | null }[],
  ): Promise<{ released: Set<string>; cancelled: Set<string>; refused: Map<string, string> }> {
    const released = new Set<string>();
    const cancelled = new Set<string>();
    const refused = new Map<string, string>();
    if (items.length === 0) return { released, cancelled, refused };
    const ids = items.map((i) => i.id);
    const attempts = items.map((i) => i.attempt);
    const keys = items.map((i) => i.executionKey ?? null);
    const rows = await this.isolatingRows(ids, refused, (lo, hi) =>
      this.run<{ id: string; cancelled: boolean }>('release_jobs', [ids.slice(lo, hi), attempts.slice(lo, hi), nodeId, keys.slice(lo, hi)]),
    );
    for (const r of rows) (r.cancelled ? cancelled : released).add(r.id);
    return { released, cancelled, refused };
  }

  /** Requeues (or, past maxRescues, fails) jobs whose lease expired. Safe to run on every node. */
  async rescueExpired(): Promise<RescuedJob[]> {
    const rows = await this.run<{ id: string; partition: string; queue: string; execution_key: string | null; failed: boolean }>('rescue_expired', [this.maxRescues]);
    return rows.map((r) => ({ id: r.id, partition: r.partition, queue: r.queue, executionKey: r.execution_key, failed: r.failed }));
  }

  /**
   * Stores running jobs' progress; `json` is the value's JSON text when the caller has checked it.
   * Returns the values refused (id → why), which were dropped.
   */
  async updateProgress(nodeId: string, items: { id: string; progress: unknown; json?: string }[]): Promise<Map<string, string>> {
    const refused = new Map<string, string>();
    if (items.length === 0) return refused;
    const ids: string[] = [];
    const values: string[] = [];
    for (const p of items) {
      try {
        values.push(p.json ?? toJsonStrict(p.progress, 'progress').json);
        ids.push(p.id);
      } catch (err) {
        refused.set(p.id, describeError(err).message);
      }
    }
    await this.isolatingRows(ids, refused, (lo, hi) => this.run('update_progress', [ids.slice(lo, hi), values.slice(lo, hi), nodeId]));
    return refused;
  }

  // ── reads and control ─────────────────────────────────────────────────────────────────────

  async cancel(ids: string[]): Promise<CancelOutcome[]> {
    if (ids.length === 0) return [];
    const rows = await this.run<{ id: string; partition: string; node: string | null; running: boolean }>('cancel_jobs', [ids]);
    return rows.map((r) => ({ id: r.id, partition: r.partition, node: r.node, running: r.running }));
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    if (!isUuid(id)) return undefined;
    const [row] = await this.run<JobRow>('get_job', [id]);
    return row ? toJobRecord(row) : undefined;
  }

  async jobsByKey(partition: string, key: string, value: string | number, limit = 1000): Promise<JobRecord[]> {
    const rows = await this.run<JobRow>('jobs_by_key', [partition, key, lookupValue(value), limit]);
    return rows.map(toJobRecord);
  }

  /** Jobs live and finished, newest first (ids are UUIDv7), filtered (see sql/ops/list_jobs.sql). */
  async listJobs(filter: JobListFilter): Promise<JobRecord[]> {
    if (!Number.isSafeInteger(filter.limit) || filter.limit < 0) throw new ValidationError('must be a whole number ≥ 0', 'limit');
    const states = filter.states?.length ? new Set<string>(filter.states) : undefined;
    // null: no filter on that side; [] (asked only for states of the other side): that side is not read.
    const only = (all: readonly string[]) => {
      const wanted = states ? all.filter((s) => states.has(s)) : all;
      return wanted.length === all.length ? null : wanted;
    };
    const values = [
      ...matchParams(filter),
      only(LIVE_JOB_STATES),
      only(FINISHED_JOB_STATES),
      filter.limit,
    ];
    // Unnamed, unlike the other operations: planned with each call's values, so the filters left
    // out fold away (a prepared generic plan would keep them all and could not skip history).
    const { rows } = await this.pool.query<JobRow>({ text: this.ops.list_jobs.text, values });
    return rows.map(toJobRecord);
  }

  // ── execution keys and Global's reconciliation ────────────────────────────────────────────

  /** Which of these jobs are still live (a missing id is finished, or never existed). */
  async liveJobs(ids: string[]): Promise<Set<string>> {
    if (ids.length === 0) return new Set();
    return new Set((await this.run<{ id: string }>('live_jobs', [ids])).map((r) => r.id));
  }

  /** Execution keys held by running jobs of a partition, each with the queued jobs behind it in claim order. */
  async executionKeys(partition: string): Promise<Record<string, { holder: string; waiters: string[] }>> {
    const rows = await this.run<{ execution_key: string; holder: string; waiters: string[] }>('held_execution_keys', [partition]);
    return Object.fromEntries(rows.map((r) => [r.execution_key, { holder: r.holder, waiters: r.waiters }]));
  }

  /** The running job holding an execution key, if any. */
  async executionKeyHolder(partition: string, key: string): Promise<string | undefined> {
    const [row] = await this.run<{ id: string }>('execution_key_holder', [partition, key]);
    return row?.id;
  }

  /** Frees an execution key by hand (its running job goes on without it); returns that job, if one held it. */
  async releaseExecutionKey(partition: string, key: string): Promise<{ id: string; queue: string } | undefined> {
    const [row] = await this.run<{ id: string; queue: string }>('release_execution_key', [partition, key]);
    return row;
  }

  /** Live jobs by partition, queue and shown state, with a zero row for every declared queue (for metrics). */
  async liveJobCounts(): Promise<{ partition: string; queue: string; state: string; count: number }[]> {
    return this.run<{ partition: string; queue: string; state: string; count: number }>('live_job_counts', []);
  }

  /** Which live job holds a queue key, if any. */
  async queueKeyHolder(partition: string, queueKey: string): Promise<string | undefined> {
    const [row] = await this.run<{ queue_key: string; id: string }>('queue_key_holders', [partition, [queueKey]]);
    return row?.id;
  }

  /** Frees a queue key held by a live job (the job itself stays); returns whether one was held. */
  async clearQueueKey(partition: string, queueKey: string): Promise<boolean> {
    return (await this.run('clear_queue_key', [partition, queueKey])).length > 0;
  }

  /**
   * Applies one pause, resume or throttle change to a partition's control row (the row as it is
   * now, so concurrent writers never undo each other) and notifies every node on the schema's
   * channel when it commits. Returns the partition's control state after the change.
   */
  async changeControl(partition: string, change: ControlChange): Promise<ControlRow> {
    const queue = change.op === 'throttle' ? (change.queue ?? null) : change.queue;
    const [row] = await this.run<ControlRow>('change_control', [
      partition,
      change.op,
      queue,
      change.op === 'throttle' ? change.ms : 0,
      change.op === 'throttle' ? (change.node ?? null) : null,
      this.notifyChannel,
      controlNotice(partition),
    ]);
    return controlRow(row!);
  }

  /**
   * A new Global leader's control state: the partition's row when it has one (changes are made
   * there first), else `initial` (its snapshot's), written as the row. The leader's epoch is recorded.
   */
  async adoptControl(partition: string, initial: { paused: string[]; throttles: unknown[] }, epoch: number): Promise<ControlRow> {
    const [row] = await this.run<ControlRow>('adopt_control', [partition, initial.paused, JSON.stringify(initial.throttles), epoch]);
    return controlRow(row!);
  }

  /** A partition's pause/throttle state (nothing recorded: nothing paused or throttled, version 0). */
  async loadControl(partition: string): Promise<ControlRow> {
    const [row] = await this.run<ControlRow>('load_control', [partition]);
    return row ? controlRow(row) : { paused: [], throttles: [], version: 0 };
  }

  /**
   * The Postgres notification channel of this schema: nodes LISTEN on it for wake-ups and control
   * changes made by processes without the bus (see `Notices` and `parseNotice`).
   */
  get notifyChannel(): string {
    return notifyChannel(this.schema);
  }

  /** Tells nodes listening on the schema's channel that jobs of these queues were enqueued (one notification). */
  async notifyEnqueued(partition: string, queues: Iterable<string>): Promise<void> {
    await this.run('notify', [this.notifyChannel, wakeNotice(partition, queues)]);
  }

  /** Roll call from Postgres: the profiles stored by the nodes of `cluster` seen within `beats` of their heartbeats. */
  async nodesSeen(cluster: string, beats = 3): Promise<{ id: string; info: Record<string, unknown>; heartbeatAt: Date; ageMs: number }[]> {
    const rows = await this.run<{ id: string; info: Record<string, unknown>; heartbeat_at: Date; age_ms: number }>('nodes_seen', [cluster, beats]);
    return rows.map((r) => ({ id: r.id, info: r.info, heartbeatAt: r.heartbeat_at, ageMs: r.age_ms }));
  }

  /**
   * Asks every node listening on the schema's channel to store its profile now (a heartbeat);
   * returns the database's time of asking, to tell fresh rows from older ones.
   */
  async requestRollCall(): Promise<Date> {
    const [row] = await this.run<{ asked_at: Date }>('roll_call_request', [this.notifyChannel, ROLL_CALL_NOTICE]);
    return row!.asked_at;
  }

  /** Removes a stopping node from the roll call. */
  async leaveNodes(nodeId: string): Promise<void> {
    await this.run('node_leave', [nodeId]);
  }

  // ── history ───────────────────────────────────────────────────────────────────────────────

  /** Makes sure daily history partitions exist from yesterday to `daysAhead` days ahead. */
  async ensureHistoryPartitions(daysAhead = 7): Promise<number> {
    const [row] = await this.run<{ created: number }>('ensure_history_partitions', [daysAhead]);
    return row?.created ?? 0;
  }

  /** Drops history partitions that ended more than `retentionDays` ago; returns their names. */
  async pruneHistory(retentionDays: number): Promise<string[]> {
    if (!Number.isInteger(retentionDays) || retentionDays < 0) throw new ValidationError('must be a whole number of days ≥ 0', 'retention.historyDays');
    const rows = await this.run<{ name: string }>('prune_history', [retentionDays]);
    return rows.map((r) => r.name);
  }

  // ── retry and bulk operations ─────────────────────────────────────────────────────────────
  // Run unnamed, as listJobs is: planned with each call's values, so the filters left out fold away.

  /**
   * Moves up to `limit` failed or cancelled jobs matching `match` (newest first) back to the live
   * table, queued to run now, in one statement; see sql/ops/retry_jobs.sql. `maxAttempts`: the
   * attempts the new run gets (default: the job type's, as nodes registered it). Jobs whose queue
   * key is held come back with `retried: false`.
   */
  async retryJobs(match: JobMatch, limit: number, maxAttempts?: number): Promise<RetryOutcome[]> {
    checkBatchLimit(limit);
    if (maxAttempts !== undefined && (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000)) {
      throw new ValidationError('must be an integer from 1 to 1000 (the attempts the retried job gets)', 'maxAttempts');
    }
    const { finished } = bulkStates('retry', match.states);
    const rows = await this.query<{ id: string; partition: string; queue: string; type: string; attempts: number; queue_key: string | null; max_attempts: number | null; retried: boolean }>(
      'retry_jobs',
      [...matchParams(match), finished, limit, maxAttempts ?? null],
    );
    return rows.map((r) => ({ id: r.id, partition: r.partition, queue: r.queue, type: r.type, attempts: r.attempts, queueKey: r.queue_key, retried: r.retried, maxAttempts: r.max_attempts }));
  }

  /**
   * Cancels up to `limit` live jobs matching `match` (newest first) in one statement, as cancel()
   * does by id; running jobs already asked to cancel are left out. See sql/ops/cancel_matching.sql.
   */
  async cancelMatching(match: JobMatch, limit: number): Promise<BulkCancelOutcome[]> {
    checkBatchLimit(limit);
    const { live } = bulkStates('cancel', match.states);
    const rows = await this.query<{ id: string; partition: string; queue: string; type: string; attempts: number; node: string | null; running: boolean }>(
      'cancel_matching',
      [...matchParams(match), live, limit],
    );
    return rows.map((r) => ({ id: r.id, partition: r.partition, queue: r.queue, type: r.type, attempts: r.attempts, node: r.node, running: r.running }));
  }

  /**
   * Deletes up to `limit` jobs matching `match` (newest first) in one statement: finished jobs
   * from history and live jobs that are not running. See sql/ops/delete_matching.sql.
   */
  async deleteMatching(match: JobMatch, limit: number): Promise<{ id: string; partition: string; live: boolean }[]> {
    checkBatchLimit(limit);
    const { live, finished } = bulkStates('delete', match.states);
    return this.query<{ id: string; partition: string; live: boolean }>('delete_matching', [...matchParams(match), live, finished, limit]);
  }

  /**
   * How many jobs match `match` among those `operation` applies to, by shown state. For delete,
   * running jobs are counted too (under `running`): delete leaves them alone, and says so.
   */
  async countMatching(match: JobMatch, operation: BulkOperation): Promise<Partial<Record<JobRecord['state'], number>>> {
    const { live, finished } = bulkStates(operation, match.states);
    const liveCounted = operation === 'delete' && live !== null && match.states?.includes('running') ? [...live, 'running'] : live;
    const rows = await this.query<{ state: JobRecord['state']; count: number }>('count_matching', [
      ...matchParams(match),
      liveCounted,
      finished,
      operation === 'cancel',
    ]);
    return Object.fromEntries(rows.map((r) => [r.state, r.count]));
  }

  /** Which live jobs hold these queue keys of a partition, by key (keys not held are absent). */
  async queueKeyHolders(partition: string, queueKeys: string[]): Promise<Map<string, string>> {
    if (queueKeys.length === 0) return new Map();
    const rows = await this.run<{ queue_key: string; id: string }>('queue_key_holders', [partition, queueKeys]);
    return new Map(rows.map((r) => [r.queue_key, r.id]));
  }

  private async query<R extends pg.QueryResultRow>(op: OpName, values: unknown[]): Promise<R[]> {
    return (await this.pool.query<R>({ text: this.ops[op].text, values })).rows;
  }
}

/** The filter parameters list_jobs and the bulk operations share ($1-$6): partition, queue, type, before, ids, lookup. */
function matchParams(match: JobMatch): unknown[] {
  let lookup: Record<string, string[]> | null = null;
  for (const [key, value] of Object.entries(match.lookup ?? {})) (lookup ??= {})[key] = (Array.isArray(value) ? value : [value]).map(String);
  return [match.partition ?? null, match.queue ?? null, match.type ?? null, match.before ?? null, match.ids ?? null, lookup && JSON.stringify(lookup)];
}

/** The states each bulk operation applies to, on each side (live table, history). */
const BULK_STATES: Record<BulkOperation, { live: readonly string[]; finished: readonly string[]; none: string }> = {
  cancel: { live: LIVE_JOB_STATES, finished: [], none: 'cancel applies to live jobs (queued, scheduled, waiting, running)' },
  retry: { live: [], finished: ['failed', 'cancelled'], none: 'retry applies to failed and cancelled jobs' },
  delete: {
    live: ['queued', 'scheduled', 'waiting'],
    finished: FINISHED_JOB_STATES,
    none: 'delete applies to finished jobs and to live jobs that are not running (cancel running jobs first)',
  },
};

/**
 * The state arrays of a bulk statement for `operation` and the filter's states: null for "every
 * state the operation applies to on that side", [] for "none on that side". States the operation
 * does not apply to are dropped; a filter left with none is a ValidationError saying which apply.
 */
function bulkStates(operation: BulkOperation, states: readonly string[] | undefined): { live: string[] | null; finished: string[] | null } {
  const applies = BULK_STATES[operation];
  if (!states?.length) {
    return { live: applies.live.length ? null : [], finished: applies.finished.length === FINISHED_JOB_STATES.length ? null : [...applies.finished] };
  }
  const live = applies.live.filter((s) => states.includes(s));
  const finished = applies.finished.filter((s) => states.includes(s));
  if (live.length + finished.length === 0) throw new ValidationError(`${applies.none}; none of ${states.join(', ')}`, 'states');
  return { live, finished };
}

function checkBatchLimit(limit: number): void {
  if (!Number.isSafeInteger(limit) || limit < 1) throw new ValidationError('must be a whole number ≥ 1', 'limit');
}

const JOB_FIELDS = ['partition', 'queue', 'type', 'payload', 'priority', 'maxAttempts', 'timeoutMs', 'runAt', 'delayMs', 'queueKey', 'executionKey', 'lookup'] as const;
type JobFields = { [K in (typeof JOB_FIELDS)[number]]: NewJob[K] | undefined };

/**
 * A job's fields in an object of one fixed shape. On Node 20, objects made by spread plus a
 * property (`{ ...job, partition }`, as the client builds them) each get a hidden class of their
 * own, so every field read from them is a megamorphic lookup, the absent fields' dearest: the
 * twelve reads cost about 2 µs a job, more than the rest of the validation. Object.assign copies
 * a plain object's own enumerable properties (which its fields are) without those lookups.
 * Anything else (a prototype with defaults, a class with getters) is read field by field,
 * inherited fields included.
 */
function fieldsOf(job: NewJob): JobFields {
  const fields: JobFields = {
    partition: undefined,
    queue: undefined,
    type: undefined,
    payload: undefined,
    priority: undefined,
    maxAttempts: undefined,
    timeoutMs: undefined,
    runAt: undefined,
    delayMs: undefined,
    queueKey: undefined,
    executionKey: undefined,
    lookup: undefined,
  };
  if (Object.getPrototypeOf(job) === Object.prototype) {
    Object.assign(fields, job);
    // An own "__proto__" key (JSON.parse makes those) goes through the setter and swaps the copy's
    // prototype; read such a job field by field instead.
    if (Object.getPrototypeOf(fields) === Object.prototype) return fields;
  }
  const slow = {} as Record<string, unknown>;
  for (const key of JOB_FIELDS) slow[key] = job[key];
  return slow as JobFields;
}

/** Names job `index` of a batch in error messages; only called when there is an error to report. */
function jobPath(index: number, single: boolean, field?: string): string {
  const job = single ? 'job' : `jobs[${index}]`;
  return field === undefined ? job : `${job}.${field}`;
}

/**
 * Validated jobs as parallel columns, encoded per chunk into enqueue_batch's parameters. Column
 * arrays replace the one JSON document of rows, which Postgres had to parse and then pick apart
 * field by field. The arrays are joined here, not handed to pg as JS arrays, which escapes every
 * element with two regex replaces: only values that never need escaping (ids, numbers, names,
 * ISO times) go as array literals, and anything else as JSON, as before.
 */
class EnqueueBatch {
  readonly ids: string[] = [];
  readonly partitions: string[] = [];
  readonly queues: string[] = [];
  readonly types: string[] = [];
  readonly payloads: string[] = [];
  readonly priorities: number[] = [];
  /** ISO timestamps, or NULL (array literal syntax) for "now". */
  readonly runAts: string[] = [];
  readonly maxAttempts: number[] = [];
  readonly timeouts: (number | 'NULL')[] = [];
  readonly queueKeys: (string | null)[] = [];
  readonly executionKeys: (string | null)[] = [];
  /** JSON texts; 'null' where the job has none. */
  readonly lookups: string[] = [];
  readonly lookupIndexes: string[] = [];
  /** Each partition and queue used, consecutive repeats left out, for the known-queue check. */
  readonly queuePairs: { partition: string; queue: string }[] = [];
  private runAtCount = 0;
  private timeoutCount = 0;
  private queueKeyCount = 0;
  private executionKeyCount = 0;
  private lookupCount = 0;

  add(
    id: string,
    partition: string,
    queue: string,
    type: string,
    payload: string,
    priority: number,
    runAt: string | null,
    maxAttempts: number,
    timeoutMs: number | null,
    queueKey: string | null,
    executionKey: string | null,
    lookup: string | null,
    lookupIndex: string | null,
  ): void {
    const last = this.queuePairs[this.queuePairs.length - 1];
    if (last === undefined || last.partition !== partition || last.queue !== queue) this.queuePairs.push({ partition, queue });
    this.ids.push(id);
    this.partitions.push(partition);
    this.queues.push(queue);
    this.types.push(type);
    this.payloads.push(payload);
    this.priorities.push(priority);
    this.runAts.push(runAt ?? 'NULL');
    if (runAt !== null) this.runAtCount++;
    this.maxAttempts.push(maxAttempts);
    this.timeouts.push(timeoutMs ?? 'NULL');
    if (timeoutMs !== null) this.timeoutCount++;
    this.queueKeys.push(queueKey);
    if (queueKey !== null) this.queueKeyCount++;
    this.executionKeys.push(executionKey);
    if (executionKey !== null) this.executionKeyCount++;
    this.lookups.push(lookup ?? 'null');
    this.lookupIndexes.push(lookupIndex ?? 'null');
    if (lookup !== null) this.lookupCount++;
  }

  /** enqueue_one's parameters: the batch's only job. */
  single(): unknown[] {
    const nullIf = <T>(value: T, none: T) => (value === none ? null : value);
    return [
      this.ids[0],
      this.partitions[0],
      this.queues[0],
      this.types[0],
      this.payloads[0],
      this.priorities[0],
      nullIf(this.runAts[0], 'NULL'),
      this.maxAttempts[0],
      nullIf(this.timeouts[0], 'NULL'),
      this.queueKeys[0],
      this.executionKeys[0],
      nullIf(this.lookups[0], 'null'),
      nullIf(this.lookupIndexes[0], 'null'),
    ];
  }

  /**
   * enqueue_batch's parameters for jobs [from, to). A column with no value in the whole batch
   * goes as NULL: ROWS FROM pads it with nulls, so a batch of plain jobs sends no null lists.
   */
  params(from: number, to: number): unknown[] {
    const whole = from === 0 && to === this.ids.length;
    const part = <T>(column: T[]): T[] => (whole ? column : column.slice(from, to));
    return [
      `{${part(this.ids).join(',')}}`,
      // Names match NAME_PATTERN, so quoting is enough; quoted, a queue named null stays a name.
      `{"${part(this.partitions).join('","')}"}`,
      `{"${part(this.queues).join('","')}"}`,
      JSON.stringify(part(this.types)),
      `[${part(this.payloads).join(',')}]`,
      `{${part(this.priorities).join(',')}}`,
      this.runAtCount > 0 ? `{${part(this.runAts).join(',')}}` : null,
      `{${part(this.maxAttempts).join(',')}}`,
      this.timeoutCount > 0 ? `{${part(this.timeouts).join(',')}}` : null,
      this.queueKeyCount > 0 ? JSON.stringify(part(this.queueKeys)) : null,
      this.executionKeyCount > 0 ? JSON.stringify(part(this.executionKeys)) : null,
      this.lookupCount > 0 ? `[${part(this.lookups).join(',')}]` : null,
      this.lookupCount > 0 ? `[${part(this.lookupIndexes).join(',')}]` : null,
    ];
  }
}

/** Claims that hit another claim's just-committed hold on an execution key are retried: the retry reads past it. */
const CLAIM_KEY_RACE_RETRIES = 3;
function retryOnKeyRace(err: unknown, attempt: number): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && e.constraint === 'jobs_running_key_idx' && attempt <= CLAIM_KEY_RACE_RETRIES;
}

/** A claimed job as the claim (and a hand-off) returns it. */
interface ClaimRow {
  id: string;
  queue: string;
  type: string;
  payload: unknown;
  priority: number;
  attempts: number;
  max_attempts: number;
  timeout_ms: number | null;
  queue_key: string | null;
  execution_key: string | null;
  cancel_requested: boolean;
  traceparent: string | null;
}

function claimedJob(partition: string, r: ClaimRow): ClaimedJob {
  return {
    id: r.id,
    partition,
    queue: r.queue,
    type: r.type,
    payload: r.payload,
    priority: r.priority,
    attempt: r.attempts,
    maxAttempts: r.max_attempts,
    timeoutMs: r.timeout_ms,
    queueKey: r.queue_key,
    executionKey: r.execution_key,
    cancelRequested: r.cancel_requested,
    traceparent: r.traceparent,
  };
}

function recorded(ids: Iterable<string>, refused: Map<string, string>): Recorded {
  return Object.assign(new Set(ids), { refused });
}

/**
 * A statement failure caused by what one of its rows holds: a data exception (class 22: bad JSON,
 * a value too long, an encoding error), an integrity constraint violation (23), or a value over a
 * size limit (54000). Splitting the batch isolates such a row; retrying it whole never helps.
 */
/** A statement the database refused for a value in one of its rows (data exception, constraint, too complex). */
export function isRowRefusal(err: unknown): err is pg.DatabaseError {
  if (!(err instanceof pg.DatabaseError) || typeof err.code !== 'string') return false;
  return err.code.startsWith('22') || err.code.startsWith('23') || err.code === '54000';
}

/**
 * What a refused row is failed with, so it must be storable itself. A constraint's detail repeats
 * the whole row, which may be what was refused (and is large): only a data exception's detail,
 * which says what was wrong with the value, is kept, and short.
 */
function describeRefusal(err: pg.DatabaseError): string {
  const detail = err.code!.startsWith('22') && err.detail ? `; ${err.detail.slice(0, 200)}` : '';
  return `Postgres refused to store it (${err.message.slice(0, 300)}${detail}; SQLSTATE ${err.code})`;
}

/** A text element of a Postgres array literal: quoted, with backslashes and quotes escaped. */
function arrayElement(text: string): string {
  return `"${text.replace(/[\\"]/g, '\\$&')}"`;
}
