import pg from 'pg';
import { silentLogger, traceEnqueue, type JobRecord, type Logger } from '@partita/core';
import { migrate } from './migrate.js';
import { assertSchemaName } from './template.js';
import { loadOps } from './ops.js';
import type { StoreContext } from './context.js';
import { notifyChannel } from './notices.js';
import { inTransaction, type StatementConfig, type TransactionOptions } from './transaction.js';
import type { ClientStore, EngineStore, GlobalStore, AdminStore } from './ports.js';
import * as enqueueOps from './jobs/enqueue.js';
import * as claimOps from './jobs/claim.js';
import * as outcomeOps from './jobs/outcomes.js';
import * as readOps from './jobs/reads.js';
import * as keyOps from './jobs/keys.js';
import * as bulkOps from './jobs/bulk.js';
import * as controlOps from './control.js';
import * as nodeOps from './nodes.js';
import * as registryOps from './registry.js';
import * as historyOps from './history.js';
import type { EnqueueOutcome, LeasedOutcome, LeasedSent, NewJob } from './jobs/enqueue.js';
import type { ClaimedJob, ClaimRequest, RateLimitedClaimRequest, RateLimitOutcome } from './jobs/claim.js';
import type { Completed, Completion, CompleteOptions, Failure, Recorded, RescuedJob } from './jobs/outcomes.js';
import type { JobListFilter } from './jobs/reads.js';
import type { HeldExecutionKey } from './jobs/keys.js';
import type { BulkCancelOutcome, BulkOperation, CancelOutcome, JobMatch, RetryOutcome } from './jobs/bulk.js';
import type { ControlChange, ControlRow } from './control.js';
import type { RegisteredJobType } from './registry.js';
import type { AppliedMigration } from './history.js';

export type { EnqueueOutcome, LeasedOutcome, LeasedSent, NewJob } from './jobs/enqueue.js';
export type { ClaimedJob, ClaimRequest, RateLimitedClaimRequest, RateLimitOutcome } from './jobs/claim.js';
export {
  isRowRefusal,
  isTransientDbError,
  type Completed,
  type Completion,
  type CompleteOptions,
  type Failure,
  type Recorded,
  type RescuedJob,
  type Settled,
  type TakeInto,
} from './jobs/outcomes.js';
export type { JobListFilter } from './jobs/reads.js';
export type { HeldExecutionKey } from './jobs/keys.js';
export type { BulkCancelOutcome, BulkOperation, CancelOutcome, JobMatch, RetryOutcome } from './jobs/bulk.js';
export type { ControlChange, ControlRow } from './control.js';
export type { RegisteredJobType } from './registry.js';
export type { AppliedMigration } from './history.js';

export const DEFAULT_SCHEMA = 'partita';
export const DEFAULT_PAYLOAD_LIMIT_BYTES = 1024 * 1024;
/** A job whose node dies this many times while running it is failed instead of rescued again. */
export const DEFAULT_MAX_RESCUES = 5;

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
  /**
   * Enqueues jobs as node `nodeId`'s running attempts (leased for `leaseMs`), returned as claimed:
   * for a node handing its own follow-ups to its engine after the commit. No queue or execution
   * key, no later start (ValidationError): those wait for a claim. `claimed` null: the job's
   * queue is paused or stopped for that node in Postgres (whether or not the node has heard), so it
   * was stored queued, for a claim once the queue runs again; do not start it.
   */
  enqueueLeased(jobs: NewJob[], nodeId: string, leaseMs: number): Promise<LeasedOutcome[]>;
  /**
   * enqueueLeased, sent as with sendLast: resolves with the jobs' ids once its statement is on the
   * wire, so the COMMIT follows it without waiting for its answer; `stored` tells, after the
   * commit, which jobs were leased (`claimed`) and which stored queued. Its failure fails the
   * transaction, as a sendLast statement's does.
   */
  sendLeased(jobs: NewJob[], nodeId: string, leaseMs: number): Promise<LeasedSent>;
  /**
   * Sends the transaction's last statement (a prepared one; `{{schema}}` is not expanded) and queues
   * COMMIT right behind it when the function given to withTransaction returns, without waiting for
   * its answer: one round trip fewer per transaction. Only for a write whose answer nothing waits for
   * before the commit; if it fails, the transaction rolls back and rejects with its error
   * (`mapError`'s, when given: TransactionTail.send).
   */
  sendLast<R extends pg.QueryResultRow = any>(statement: StatementConfig, mapError?: (err: unknown) => unknown): Promise<R[]>;
  /**
   * COMMIT without waiting for the WAL flush (synchronous_commit off for this transaction only; see
   * TransactionTail.commitAsync): a Postgres crash soon after may undo it. Only for a transaction
   * nothing outside is told of before a later synchronous commit makes it durable.
   */
  commitAsync(): void;
}

/**
 * The durable job store: every Postgres round trip Partita makes goes through here, each one a
 * SQL file in sql/ops. Batch in, batch out: callers group work, this class never loops per job.
 * It is a facade: each op family (jobs/enqueue, jobs/claim, jobs/outcomes, jobs/reads, jobs/keys,
 * jobs/bulk, control, nodes, registry, history) is a module of functions over the store's context,
 * and callers that need only some of them depend on a port (ports.ts) instead of this class.
 */
export class JobStore implements EngineStore, GlobalStore, ClientStore, AdminStore {
  readonly pool: pg.Pool;
  /** Claims, single-job enqueues and completions (see the constructor); the same pool as `pool` when one was handed in. */
  private readonly onePlanPool: pg.Pool;
  readonly schema: string;
  readonly payloadLimitBytes: number;
  private readonly ownsPool: boolean;
  private closed = false;
  private readonly logger: Logger;
  /** What the op-family modules work with: one object per store, built once. */
  private readonly ctx: StoreContext;

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
      // Statements of one shape whatever their arguments, on the hot paths, are
      // the other way round: the claim (planning it each time cost more than running it, 0.6 of
      // 1.2 ms), the single-job INSERTs (planning was 0.2 of 1.5 ms) and the completion (its
      // batch, inlined as constants, cost 1-2.5 ms of planning a statement). Their own few
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
    this.ctx = {
      pool: this.pool,
      onePlanPool: this.onePlanPool,
      schema: this.schema,
      ops: loadOps(this.schema),
      logger: this.logger,
      payloadLimitBytes: this.payloadLimitBytes,
      checkQueues: options.checkQueues ?? true,
      maxRescues: options.maxRescues ?? DEFAULT_MAX_RESCUES,
      known: undefined,
    };
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
   * rolls everything back and rejects with it. `options.genericPlans`: see TransactionOptions.
   */
  async withTransaction<T>(fn: (tx: Tx) => Promise<T>, options?: TransactionOptions): Promise<T> {
    return inTransaction(
      this.pool,
      (client, tail) =>
        fn({
          client,
          sendLast: (statement, mapError) => tail.send(statement, mapError),
          commitAsync: () => tail.commitAsync(),
          query: async <R extends pg.QueryResultRow>(sql: string, params: unknown[] = []) =>
            (await client.query<R>(sql.replaceAll('{{schema}}', `"${this.schema}"`), params)).rows,
          enqueue: (jobs) =>
            traceEnqueue(
              jobs,
              (traced) => enqueueOps.insertJobs(this.ctx, traced, client),
              (outcomes) => outcomes.filter((o) => !o.refused).map((o) => o.id),
            ),
          enqueueLeased: (jobs, nodeId, leaseMs) => enqueueOps.insertLeased(this.ctx, jobs, nodeId, leaseMs, client),
          sendLeased: (jobs, nodeId, leaseMs) => enqueueOps.sendLeased(this.ctx, jobs, nodeId, leaseMs, client, (s) => tail.send(s)),
        }),
      options,
    );
  }

  // ── enqueue ────────────────────────────────────────────────────────────────────────────────

  /**
   * Inserts jobs in one round trip per few thousand. Jobs whose queue key is taken are not
   * inserted and come back with `refused`; everything else is durable when this resolves.
   */
  enqueue(jobs: NewJob[]): Promise<EnqueueOutcome[]> {
    return enqueueOps.enqueue(this.ctx, jobs);
  }

  /**
   * Enqueues one job straight into a node's hands: stored as that node's running attempt, leased
   * for `leaseMs`, and returned as claimed (the node runs it from a hand-off message, no claim).
   * A taken queue key is a DuplicateQueueKeyError. Jobs with an execution key are not handed off:
   * their key's turn is the claim's to decide. `claimed` is null when the job's queue is paused or
   * stopped for that node in Postgres: it was stored queued for a claim; do not hand it over.
   */
  enqueueHandedOff(job: NewJob, nodeId: string, leaseMs: number): Promise<LeasedOutcome> {
    return enqueueOps.enqueueHandedOff(this.ctx, job, nodeId, leaseMs);
  }

  /** Enqueues one job; a taken queue key is a DuplicateQueueKeyError. */
  enqueueOne(job: NewJob): Promise<string> {
    return enqueueOps.enqueueOne(this.ctx, job);
  }

  // ── registry: partitions, queues and job types nodes declare ──────────────────────────────

  /** Throws UnknownPartitionError unless some node declared this partition (cached; re-read on a miss). */
  assertKnownPartition(partition: string): Promise<void> {
    return registryOps.assertKnownPartition(this.ctx, partition);
  }

  /** Partitions and their queues as declared by every node that ever registered. */
  knownQueues(): Promise<Map<string, Set<string>>> {
    return registryOps.knownQueues(this.ctx);
  }

  registerQueues(nodeId: string, queues: { partition: string; queue: string; concurrency: number }[]): Promise<void> {
    return registryOps.registerQueues(this.ctx, nodeId, queues);
  }

  /** Records the job types a node defines, with the keys they declare as templates (null: none, or a function). */
  registerJobTypes(nodeId: string, types: RegisteredJobType[]): Promise<void> {
    return registryOps.registerJobTypes(this.ctx, nodeId, types);
  }

  /** Defaults and key templates of every job type some node has defined, by type. */
  jobTypes(): Promise<Map<string, Omit<RegisteredJobType, 'type'>>> {
    return registryOps.jobTypes(this.ctx);
  }

  // ── the engine's hot path ─────────────────────────────────────────────────────────────────

  /** Claims up to `limit` due jobs of each queue of one partition, in one statement. */
  claim(request: ClaimRequest): Promise<ClaimedJob[]> {
    return claimOps.claim(this.ctx, request);
  }

  /**
   * claim(), plus how many claimable jobs each queue had, up to its limit: when that reaches the
   * limit there are more to claim even if fewer came back (only one job per execution key is
   * taken per claim).
   */
  claimCounted(request: ClaimRequest): Promise<{ jobs: ClaimedJob[]; found: Map<string, number> }> {
    return claimOps.claimCounted(this.ctx, request);
  }

  /** The claim for rate-limited queues: see jobs/claim.ts and sql/ops/claim_rate_limited.sql. */
  claimRateLimited(
    request: RateLimitedClaimRequest,
  ): Promise<{ jobs: ClaimedJob[]; found: Map<string, number>; limited: Map<string, RateLimitOutcome> }> {
    return claimOps.claimRateLimited(this.ctx, request);
  }

  /** Drops rate-limit buckets with nothing left in their window; returns how many. */
  pruneRateBuckets(): Promise<number> {
    return claimOps.pruneRateBuckets(this.ctx);
  }

  /**
   * Records successes; returns the ids accepted (the rest were not this node's to complete), and
   * apart the rows refused. With `tx` it writes inside that transaction (see jobs/outcomes.ts).
   */
  complete(nodeId: string, items: Completion[], tx?: Tx, options?: CompleteOptions): Promise<Completed> {
    return outcomeOps.complete(this.ctx, nodeId, items, tx, options);
  }

  /** Records failed attempts (retried or final); returns the ids accepted, and apart the rows Postgres refused. `tx`: as complete(). */
  fail(nodeId: string, items: Failure[], tx?: Tx): Promise<Recorded> {
    return outcomeOps.fail(this.ctx, nodeId, items, tx);
  }

  /**
   * Renews the leases of the given running jobs in one statement; returns those still held by
   * this node (a missing id means the lease was lost) and which were asked to cancel. With
   * `renewWithinMs`, only leases ending within that long are written; fresher ones are checked only.
   */
  heartbeat(
    nodeId: string,
    leaseMs: number,
    jobIds: string[],
    info?: Record<string, unknown>,
    renewWithinMs?: number,
  ): Promise<{ renewed: string[]; cancelRequested: string[] }> {
    return outcomeOps.heartbeat(this.ctx, nodeId, leaseMs, jobIds, info, renewWithinMs);
  }

  /**
   * Hands claimed jobs back to the queue without counting the attempt; returns the ids released,
   * and apart those finished as cancelled instead (a cancel was asked while this node held them).
   * `executionKey` records a key derived from the job's definition for a job stored without one.
   */
  release(
    nodeId: string,
    items: { id: string; attempt: number; executionKey?: string | null }[],
  ): Promise<{ released: Set<string>; cancelled: Set<string>; refused: Map<string, string> }> {
    return outcomeOps.release(this.ctx, nodeId, items);
  }

  /**
   * Requeues (or, past maxRescues, fails) every job whose lease expired, whichever node held it:
   * a sequential scan of jobs (no index covers running jobs), for a cadence of its own. Safe to run
   * on every node.
   */
  rescueExpired(): Promise<RescuedJob[]> {
    return outcomeOps.rescueExpired(this.ctx);
  }

  /** The pages of the live jobs table, dead rows' included: what a sweep (rescueExpired) reads. */
  jobsPages(): Promise<number> {
    return outcomeOps.jobsPages(this.ctx);
  }

  /**
   * Requeues (or fails) the expired jobs of nodes that stopped heartbeating; reads only the nodes
   * table while none did. A node counts as stopped once its last heartbeat is older than its lease
   * less its heartbeat period, from the profile it stored (`leaseMs`, `heartbeatMs`), else
   * `staleMs`. Its row is removed once it holds no running job. Safe to run on every node.
   */
  rescueDeadNodes(staleMs: number): Promise<RescuedJob[]> {
    return outcomeOps.rescueDeadNodes(this.ctx, staleMs);
  }

  /**
   * Stores running jobs' progress; `json` is the value's JSON text when the caller has checked it.
   * Returns the values refused (id → why), which were dropped.
   */
  updateProgress(nodeId: string, items: { id: string; progress: unknown; json?: string }[]): Promise<Map<string, string>> {
    return outcomeOps.updateProgress(this.ctx, nodeId, items);
  }

  // ── reads ─────────────────────────────────────────────────────────────────────────────────

  getJob(id: string): Promise<JobRecord | undefined> {
    return readOps.getJob(this.ctx, id);
  }

  jobsByKey(partition: string, key: string, value: string | number, limit = 1000): Promise<JobRecord[]> {
    return readOps.jobsByKey(this.ctx, partition, key, value, limit);
  }

  /** Jobs live and finished, newest first (ids are UUIDv7), filtered (see sql/ops/list_jobs.sql). */
  listJobs(filter: JobListFilter): Promise<JobRecord[]> {
    return readOps.listJobs(this.ctx, filter);
  }

  /** Which of these jobs are still live (a missing id is finished, or never existed). */
  liveJobs(ids: string[]): Promise<Set<string>> {
    return readOps.liveJobs(this.ctx, ids);
  }

  /** Live jobs by partition, queue and shown state, with a zero row for every declared queue (for metrics). */
  liveJobCounts(): Promise<{ partition: string; queue: string; state: string; count: number }[]> {
    return readOps.liveJobCounts(this.ctx);
  }

  /** Due and scheduled jobs per queue of these partitions, cluster-wide (a node's roll-call answer). */
  queuedJobCounts(partitions: string[]): Promise<{ partition: string; queue: string; queued: number; scheduled: number }[]> {
    return readOps.queuedJobCounts(this.ctx, partitions);
  }

  /** The job at the head of each declared queue (its next claim's) and when it became due. */
  queueHeads(): Promise<{ partition: string; queue: string; id: string; dueAt: Date }[]> {
    return readOps.queueHeads(this.ctx);
  }

  // ── queue keys and execution keys ─────────────────────────────────────────────────────────

  /** Execution keys held by running jobs of a partition, each with the jobs behind it (the first few in claim order, and their count). */
  executionKeys(partition: string): Promise<Record<string, HeldExecutionKey>> {
    return keyOps.executionKeys(this.ctx, partition);
  }

  /** The running job holding an execution key, if any. */
  executionKeyHolder(partition: string, key: string): Promise<string | undefined> {
    return keyOps.executionKeyHolder(this.ctx, partition, key);
  }

  /** Frees an execution key by hand (its running job goes on without it); returns that job, if one held it. */
  releaseExecutionKey(partition: string, key: string): Promise<{ id: string; queue: string } | undefined> {
    return keyOps.releaseExecutionKey(this.ctx, partition, key);
  }

  /** Which live job holds a queue key, if any. */
  queueKeyHolder(partition: string, queueKey: string): Promise<string | undefined> {
    return keyOps.queueKeyHolder(this.ctx, partition, queueKey);
  }

  /** Which live jobs hold these queue keys of a partition, by key (keys not held are absent). */
  queueKeyHolders(partition: string, queueKeys: string[]): Promise<Map<string, string>> {
    return keyOps.queueKeyHolders(this.ctx, partition, queueKeys);
  }

  /** Frees a queue key held by a live job (the job itself stays); returns whether one was held. */
  clearQueueKey(partition: string, queueKey: string): Promise<boolean> {
    return keyOps.clearQueueKey(this.ctx, partition, queueKey);
  }

  // ── control: pause, throttle, notices ─────────────────────────────────────────────────────

  /**
   * Applies one pause, resume or throttle change to a partition's control row and notifies every
   * node on the schema's channel when it commits. Returns the partition's control state after it.
   */
  changeControl(partition: string, change: ControlChange): Promise<ControlRow> {
    return controlOps.changeControl(this.ctx, partition, change);
  }

  /**
   * A new Global leader's control state: the partition's row when it has one (changes are made
   * there first), else `initial` (its snapshot's), written as the row. The leader's epoch is recorded.
   */
  adoptControl(partition: string, initial: { paused: string[]; throttles: unknown[] }, epoch: number): Promise<ControlRow> {
    return controlOps.adoptControl(this.ctx, partition, initial, epoch);
  }

  /** A partition's pause/throttle state (nothing recorded: nothing paused or throttled, version 0). */
  loadControl(partition: string): Promise<ControlRow> {
    return controlOps.loadControl(this.ctx, partition);
  }

  /**
   * The Postgres notification channel of this schema: nodes LISTEN on it for wake-ups and control
   * changes made by processes without the bus (see `Notices` and `parseNotice`).
   */
  get notifyChannel(): string {
    return notifyChannel(this.schema);
  }

  /** Tells nodes listening on the schema's channel that jobs of these queues were enqueued (one notification). */
  notifyEnqueued(partition: string, queues: Iterable<string>): Promise<void> {
    return controlOps.notifyEnqueued(this.ctx, partition, queues);
  }

  // ── nodes ─────────────────────────────────────────────────────────────────────────────────

  /** Roll call from Postgres: the profiles stored by the nodes of `cluster` seen within `beats` of their heartbeats. */
  nodesSeen(cluster: string, beats = 3): Promise<{ id: string; info: Record<string, unknown>; heartbeatAt: Date; ageMs: number }[]> {
    return nodeOps.nodesSeen(this.ctx, cluster, beats);
  }

  /**
   * Asks every node listening on the schema's channel to store its profile now (a heartbeat);
   * returns the database's time of asking, to tell fresh rows from older ones.
   */
  requestRollCall(): Promise<Date> {
    return nodeOps.requestRollCall(this.ctx);
  }

  /**
   * Removes a stopping node from the roll call. A node that still holds running jobs keeps its row,
   * out of the roll call, until rescueDeadNodes has rescued them.
   */
  leaveNodes(nodeId: string): Promise<void> {
    return nodeOps.leaveNodes(this.ctx, nodeId);
  }

  // ── schema and history ────────────────────────────────────────────────────────────────────

  /** The migrations applied to this schema, oldest first. */
  appliedMigrations(): Promise<AppliedMigration[]> {
    return historyOps.appliedMigrations(this.ctx);
  }

  /** Makes sure daily history partitions exist from yesterday to `daysAhead` days ahead. */
  ensureHistoryPartitions(daysAhead = 7): Promise<number> {
    return historyOps.ensureHistoryPartitions(this.ctx, daysAhead);
  }

  /** Drops history partitions that ended more than `retentionDays` ago; returns their names. */
  pruneHistory(retentionDays: number): Promise<string[]> {
    return historyOps.pruneHistory(this.ctx, retentionDays);
  }

  // ── cancel, retry and bulk operations ─────────────────────────────────────────────────────

  cancel(ids: string[]): Promise<CancelOutcome[]> {
    return bulkOps.cancel(this.ctx, ids);
  }

  /**
   * Moves up to `limit` failed or cancelled jobs matching `match` (newest first) back to the live
   * table, queued to run now, in one statement; see jobs/bulk.ts and sql/ops/retry_jobs.sql.
   */
  retryJobs(match: JobMatch, limit: number, maxAttempts?: number): Promise<RetryOutcome[]> {
    return bulkOps.retryJobs(this.ctx, match, limit, maxAttempts);
  }

  /** Cancels up to `limit` live jobs matching `match` (newest first) in one statement. See sql/ops/cancel_matching.sql. */
  cancelMatching(match: JobMatch, limit: number): Promise<BulkCancelOutcome[]> {
    return bulkOps.cancelMatching(this.ctx, match, limit);
  }

  /** Deletes up to `limit` jobs matching `match` (newest first) in one statement. See sql/ops/delete_matching.sql. */
  deleteMatching(match: JobMatch, limit: number): Promise<{ id: string; partition: string; live: boolean }[]> {
    return bulkOps.deleteMatching(this.ctx, match, limit);
  }

  /** How many jobs match `match` among those `operation` applies to, by shown state. */
  countMatching(match: JobMatch, operation: BulkOperation): Promise<Partial<Record<JobRecord['state'], number>>> {
    return bulkOps.countMatching(this.ctx, match, operation);
  }
}
