import { readFileSync, readdirSync } from 'node:fs';
import { createHash } from 'node:crypto';
import type pg from 'pg';
import { PartitaError, type JobState } from '@partita/core';
import { SQL_DIR, renderOp } from './template.js';
import type { JobRow } from './rows.js';
import { markedStatement } from './plans.js';

/**
 * The typed op registry: one exported function per file of sql/ops, with its parameters and rows
 * typed, so a call site that passes the wrong arguments fails to compile instead of at the
 * database. Every op runs through `runOp`, on a pool or on a transaction's client.
 */

/** Every op, by file name (sql/ops/NAME.sql); loadOps refuses a folder that does not match. */
export const OP_NAMES = [
  'enqueue_batch',
  'enqueue_one',
  'enqueue_handoff',
  'enqueue_leased',
  'queue_key_holders',
  'claim_batch',
  'claim_rate_limited',
  'prune_rate_buckets',
  'load_control',
  'change_control',
  'adopt_control',
  'notify',
  'nodes_seen',
  'roll_call_request',
  'node_leave',
  'execution_key_holder',
  'release_execution_key',
  'live_jobs',
  'live_job_counts',
  'queued_job_counts',
  'queue_heads',
  'held_execution_keys',
  'clear_queue_key',
  'complete_batch',
  'complete_plain',
  'fail_batch',
  'heartbeat',
  'rescue_expired',
  'rescue_dead_nodes',
  'jobs_pages',
  'cancel_jobs',
  'get_job',
  'jobs_by_key',
  'list_jobs',
  'ensure_history_partitions',
  'prune_history',
  'register_queues',
  'known_queues',
  'update_progress',
  'register_job_types',
  'job_types',
  'release_jobs',
  'lease_acquire',
  'lease_renew',
  'lease_release',
  'lease_holder',
  'lease_raise_epoch',
  'lease_check',
  'global_state_load',
  'global_state_save',
  'global_state_epoch',
  'retry_jobs',
  'cancel_matching',
  'delete_matching',
  'count_matching',
  'applied_migrations',
  'settle_execution_keys',
  'stale_execution_keys',
  'lock_execution_key_heads',
] as const;

export type OpName = (typeof OP_NAMES)[number];

/** A SQL operation from sql/ops, rendered for a schema, with a prepared-statement name. */
export interface Statement {
  name: string;
  text: string;
  /** Marked `-- plan: generic` in its file: see plans.ts. */
  generic?: boolean;
}

export type Statements = Record<OpName, Statement>;

/** Where an op runs: the store's pool, or a client checked out of it (a transaction's). */
export type Queryable = pg.Pool | pg.PoolClient;

/** Decides whether a failed attempt of an op is tried again (attempt counts from 1). */
export type RetryPolicy = (err: unknown, attempt: number) => boolean;

/**
 * Loads every operation once per schema; named so pg prepares each once per connection. The files
 * of `sqlDir`/ops must be exactly OP_NAMES: a file without its typed function would never run, and a
 * function without its file would fail at its first call, so either is refused here, by name.
 */
export function loadOps(schema: string, sqlDir: string = SQL_DIR): Statements {
  const dir = sqlDir + 'ops/';
  const files = readdirSync(dir).filter((f) => f.endsWith('.sql'));
  const known = new Set<string>(OP_NAMES);
  const unused = files.filter((f) => !known.has(f.slice(0, -4)));
  if (unused.length > 0) {
    throw new PartitaError(
      'SQL_OPS',
      `sql/ops/${unused.join(', sql/ops/')}: no op of @partita/postgres runs ${unused.length === 1 ? 'this file' : 'these files'}; add a typed function for each to src/ops.ts (and its name to OP_NAMES), or delete the file`,
    );
  }
  const present = new Set(files.map((f) => f.slice(0, -4)));
  const missing = OP_NAMES.filter((op) => !present.has(op));
  if (missing.length > 0) {
    throw new PartitaError(
      'SQL_OPS',
      `sql/ops/${missing.join('.sql, sql/ops/')}.sql ${missing.length === 1 ? 'is' : 'are'} missing; the package's sql folder is damaged or out of date, reinstall @partita/postgres`,
    );
  }
  const ops = {} as Statements;
  for (const op of OP_NAMES) {
    const file = `${op}.sql`;
    const text = renderOp(readFileSync(dir + file, 'utf8'), `sql/ops/${file}`, schema, sqlDir);
    const digest = createHash('sha1').update(text).digest('hex').slice(0, 10);
    ops[op] = markedStatement(`partita_${op}_${digest}`, text);
  }
  return ops;
}

/** Runs a statement as a named (prepared once per connection) query; `retry` may run it again. */
export async function runOp<R extends pg.QueryResultRow>(
  stmt: Statement,
  db: Queryable,
  values: readonly unknown[],
  retry?: RetryPolicy,
): Promise<R[]> {
  for (let attempt = 1; ; attempt++) {
    try {
      return (await db.query<R>({ name: stmt.name, text: stmt.text, values: values as unknown[] })).rows;
    } catch (err) {
      if (!retry?.(err, attempt)) throw err;
    }
  }
}

/**
 * A statement's rows as arrays, in the order of `names` (its columns): no object per row. pg builds
 * each object row by storing every column under its name, and the engine's claim then copies the
 * row into a ClaimedJob and drops it: at tens of thousands of jobs a second that row was one of the
 * largest allocations per job. Readers find their columns by name, so the SQL's order is free.
 */
export interface ArrayRows {
  names: string[];
  rows: unknown[][];
}

/** runOp, with the rows as arrays (see ArrayRows). */
export async function runOpArrays(stmt: Statement, db: Queryable, values: readonly unknown[], retry?: RetryPolicy): Promise<ArrayRows> {
  for (let attempt = 1; ; attempt++) {
    try {
      const r = await db.query<unknown[]>({ name: stmt.name, text: stmt.text, values: values as unknown[], rowMode: 'array' });
      return { names: r.fields.map((f) => f.name), rows: r.rows };
    } catch (err) {
      if (!retry?.(err, attempt)) throw err;
    }
  }
}

/** The index of each of `columns` in `names`; a column the statement does not return is an error that names it. */
export function columnIndexes<C extends string>(names: readonly string[], columns: readonly C[], op: OpName): Record<C, number> {
  const at = {} as Record<C, number>;
  for (const c of columns) {
    const i = names.indexOf(c);
    if (i < 0) throw new PartitaError('SQL_OPS', `sql/ops/${op}.sql returns no column "${c}" (it returns ${names.join(', ')})`);
    at[c] = i;
  }
  return at;
}

/**
 * Runs a statement unnamed: planned with each call's values, so the filters left out fold away
 * (a prepared generic plan would keep them all and could not skip history).
 */
export async function runUnnamed<R extends pg.QueryResultRow>(stmt: Statement, db: Queryable, values: readonly unknown[]): Promise<R[]> {
  return (await db.query<R>({ text: stmt.text, values: values as unknown[] })).rows;
}

/** A typed op: `params` in the order of the SQL's $1, $2, …; rows as the SQL returns them. */
export type Op<P extends readonly unknown[], R extends pg.QueryResultRow> = (
  ops: Statements,
  db: Queryable,
  params: P,
  retry?: RetryPolicy,
) => Promise<R[]>;

const defined = new Set<OpName>();

function define(name: OpName): void {
  if (defined.has(name)) throw new PartitaError('SQL_OPS', `src/ops.ts defines two typed functions for ${name}; keep one`);
  defined.add(name);
}

function prepared<P extends readonly unknown[], R extends pg.QueryResultRow = pg.QueryResultRow>(name: OpName): Op<P, R> {
  define(name);
  return (ops, db, params, retry) => runOp<R>(ops[name], db, params, retry);
}

/** An op whose rows come as arrays (see ArrayRows). */
export type ArrayOp<P extends readonly unknown[]> = (ops: Statements, db: Queryable, params: P, retry?: RetryPolicy) => Promise<ArrayRows>;

function preparedArrays<P extends readonly unknown[]>(name: OpName): ArrayOp<P> {
  define(name);
  return (ops, db, params, retry) => runOpArrays(ops[name], db, params, retry);
}

function unnamed<P extends readonly unknown[], R extends pg.QueryResultRow = pg.QueryResultRow>(name: OpName): Op<P, R> {
  define(name);
  return (ops, db, params) => runUnnamed<R>(ops[name], db, params);
}

// ── rows ───────────────────────────────────────────────────────────────────────────────────────

/** A claimed job as the claim (and a hand-off) returns it. */
export interface ClaimRow {
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
  continuation: string | null;
}

/** A partition's control row; `version` is a bigint, so pg returns it as a string. */
export interface ControlRowRaw {
  paused: string[];
  throttles: { ms: number; queue?: string; node?: string }[];
  version: number | string;
}

type Id = { id: string };

// ── parameters ─────────────────────────────────────────────────────────────────────────────────

/** enqueue_batch: parallel columns as array literals or JSON texts (see EnqueueBatch.params). */
export type EnqueueBatchParams = [
  ids: string,
  partitions: string,
  queues: string,
  types: string,
  payloads: string,
  priorities: string,
  runAts: string | null,
  maxAttempts: string,
  timeouts: string | null,
  queueKeys: string | null,
  executionKeys: string | null,
  lookups: string | null,
  lookupIndexes: string | null,
  continuations: string | null,
];

/** enqueue_one: one job's values (runAt null: now). */
export type EnqueueOneParams = [
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
  continuation: string | null,
];

/** The job filter list_jobs and the bulk operations share ($1-$6). */
export type MatchParams = [
  partition: string | null,
  queue: string | null,
  type: string | null,
  before: string | null,
  ids: readonly string[] | null,
  lookup: string | null,
];

type States = readonly string[] | null;

// ── enqueue ────────────────────────────────────────────────────────────────────────────────────

export const enqueueBatch = prepared<EnqueueBatchParams, Id>('enqueue_batch');
export const enqueueOne = prepared<EnqueueOneParams, Id>('enqueue_one');
export const enqueueHandoff = prepared<
  [...EnqueueOneParams, nodeId: string, leaseMs: number],
  Omit<ClaimRow, 'execution_key' | 'cancel_requested' | 'traceparent' | 'continuation'> & { state: 'running' | 'queued' }
>('enqueue_handoff');
/**
 * enqueue_batch's columns (jobs without keys or a later start), inserted as node $15's running
 * attempts; returns the ids of those stored queued instead, their queue being stopped.
 */
export const enqueueLeased = prepared<[...EnqueueBatchParams, nodeId: string, leaseMs: number], Id>('enqueue_leased');
export const queueKeyHolders = prepared<[partition: string, queueKeys: string[]], { queue_key: string; id: string }>('queue_key_holders');

// ── claim ──────────────────────────────────────────────────────────────────────────────────────

/**
 * Job rows in claim order, then one row per queue with `id` null and `found` set: the columns of
 * ClaimRow and `found`, as arrays (the engine's hottest read; see ArrayRows), with `priority` and
 * `cancel_requested` NULL where they hold their defaults (0, false).
 */
export const claimBatch =
  preparedArrays<
    [
      partition: string,
      queues: string[],
      limits: number[],
      nodeId: string,
      leaseMs: number,
      types: readonly string[] | null,
      continuations: readonly string[] | null,
    ]
  >('claim_batch');
export const claimRateLimited = prepared<
  [
    partition: string,
    queues: string[],
    limits: number[],
    keyPaths: (string | null)[],
    rateLimits: number[],
    periodsMs: number[],
    nodeId: string,
    leaseMs: number,
    types: readonly string[] | null,
    continuations: readonly string[] | null,
  ],
  ClaimRow & {
    id: string | null;
    found: number | null;
    limited_keys: number | null;
    wait_ms: number | null;
    tokens_left: number | null;
    held: number | null;
  }
>('claim_rate_limited');
export const pruneRateBuckets = prepared<[], { dropped: number }>('prune_rate_buckets');

// ── outcomes ───────────────────────────────────────────────────────────────────────────────────

/** A job a statement ended, requeued or dropped, with the execution key it held (to settle). */
type Keyed = { id: string; partition: string; execution_key: string | null };

/**
 * complete_plain's parameters, and complete_batch's first: numbered alike, since both statements
 * include the same fragments (completion_at_address, completion_by_id, completion_history).
 */
type CompletionParams = [
  ids: string | Buffer,
  attempts: string,
  results: string,
  nodeId: string,
  recordedElsewhere: readonly string[] | null,
  tids: Buffer | string | null,
];

/**
 * ids sorted, as a binary uuid[] (or an array literal), attempts as an integer array literal in the
 * same order, results as a JSON object keyed by id, only where not null (see jobs/outcomes.ts). Rows (as arrays) of `not_done`, `partition`, `execution_key`: with
 * `not_done`, an id sent that was not completed (every other id was); without, a key its completion
 * could not settle (to settle again). tids: each job's row address as complete_plain takes them; a
 * taken job's row comes back with its own (`tid`).
 */
export const completeBatch =
  preparedArrays<
    [
      ...CompletionParams,
      leaseMs: number | null,
      types: readonly string[] | null,
      continuations: readonly string[] | null,
      take: string | null,
    ]
  >('complete_batch');
/**
 * completeBatch for a batch of jobs without execution keys, taking nothing into hands: ids,
 * attempts, results and node as there, then the continuations that record their own successes.
 * tids: each job's row address as its claim left it, in the ids' order (binary tid[], or its text literal; NULL: none).
 * Rows of `not_done` (an id not completed), or `partition` and `execution_key` (a keyed job sent
 * anyway: its key, to settle).
 */
export const completePlain = preparedArrays<CompletionParams>('complete_plain');
export const failBatch = prepared<
  [ids: string[], attempts: number[], errors: (string | null)[], retryAts: (string | null)[], finalStates: string[], nodeId: string],
  Keyed
>('fail_batch');
export const heartbeat = prepared<
  [nodeId: string, leaseMs: number, info: string | null, ids: string[], renewWithinMs: number | null],
  { id: string; cancel_requested: boolean }
>('heartbeat');
export const releaseJobs = prepared<
  [ids: string[], attempts: number[], nodeId: string, executionKeys: (string | null)[]],
  Keyed & { cancelled: boolean }
>('release_jobs');
export const rescueExpired = prepared<
  [maxRescues: number],
  { id: string; partition: string; queue: string; execution_key: string | null; failed: boolean }
>('rescue_expired');
export const rescueDeadNodes = prepared<
  [maxRescues: number, staleMs: number],
  { id: string; partition: string; queue: string; execution_key: string | null; failed: boolean }
>('rescue_dead_nodes');
export const jobsPages = prepared<[], { pages: number }>('jobs_pages');
export const updateProgress = prepared<[ids: string[], values: string[], nodeId: string]>('update_progress');

// ── reads ──────────────────────────────────────────────────────────────────────────────────────

export const getJob = prepared<[id: string], JobRow>('get_job');
export const jobsByKey = prepared<[partition: string, key: string, value: string, limit: number], JobRow>('jobs_by_key');
export const listJobs = unnamed<[...MatchParams, live: States, finished: States, limit: number], JobRow>('list_jobs');
export const liveJobs = prepared<[ids: string[]], Id>('live_jobs');
export const liveJobCounts = prepared<[], { partition: string; queue: string; state: string; count: number }>('live_job_counts');
export const queuedJobCounts = prepared<[partitions: string[]], { partition: string; queue: string; queued: number; scheduled: number }>(
  'queued_job_counts',
);
export const queueHeads = prepared<[], { partition: string; queue: string; id: string; run_at: Date }>('queue_heads');

// ── keys ───────────────────────────────────────────────────────────────────────────────────────

export const heldExecutionKeys = prepared<
  [partition: string, shown: number],
  { execution_key: string; holder: string; waiters: string[]; waiting: number }
>('held_execution_keys');
export const executionKeyHolder = prepared<[partition: string, key: string], Id>('execution_key_holder');
export const releaseExecutionKey = prepared<[partition: string, key: string], { id: string; queue: string }>('release_execution_key');
export const clearQueueKey = prepared<[partition: string, queueKey: string]>('clear_queue_key');
/** Rows with `retry` false: a job promoted (queue to wake); true: a key to settle again. */
export const settleExecutionKeys = prepared<[partitions: string[], keys: string[]], SettleRow>('settle_execution_keys');

/** A settled key: `retry` to settle again; else `queue` had a job promoted. */
export type SettleRow = { partition: string; execution_key: string; queue: string | null; retry: boolean };
export const lockExecutionKeyHeads = prepared<[partitions: string[], keys: string[]]>('lock_execution_key_heads');
export const staleExecutionKeys = prepared<[limit: number], { partition: string; execution_key: string }>('stale_execution_keys');

// ── cancel, retry and bulk operations (unnamed, as list_jobs) ──────────────────────────────────

export const cancelJobs = prepared<
  [ids: string[]],
  { id: string; partition: string; node: string | null; running: boolean; execution_key: string | null }
>('cancel_jobs');
export const retryJobs = unnamed<
  [...MatchParams, finished: States, limit: number, maxAttempts: number | null],
  {
    id: string;
    partition: string;
    queue: string;
    type: string;
    attempts: number;
    queue_key: string | null;
    max_attempts: number | null;
    retried: boolean;
    execution_key: string | null;
  }
>('retry_jobs');
export const cancelMatching = unnamed<
  [...MatchParams, live: States, limit: number],
  {
    id: string;
    partition: string;
    queue: string;
    type: string;
    attempts: number;
    node: string | null;
    running: boolean;
    execution_key: string | null;
  }
>('cancel_matching');
export const deleteMatching = unnamed<
  [...MatchParams, live: States, finished: States, limit: number],
  { id: string; partition: string; live: boolean; execution_key: string | null }
>('delete_matching');
export const countMatching = unnamed<[...MatchParams, live: States, finished: States, cancel: boolean], { state: JobState; count: number }>(
  'count_matching',
);

// ── control and notices ────────────────────────────────────────────────────────────────────────

export const loadControl = prepared<[partition: string], ControlRowRaw>('load_control');
export const changeControl = prepared<
  [partition: string, op: string, queue: string | null, ms: number, node: string | null, channel: string, notice: string],
  ControlRowRaw
>('change_control');
export const adoptControl = prepared<[partition: string, paused: string[], throttles: string, epoch: number], ControlRowRaw>(
  'adopt_control',
);
export const notify = prepared<[channel: string, payload: string]>('notify');

// ── nodes ──────────────────────────────────────────────────────────────────────────────────────

export const nodesSeen = prepared<
  [cluster: string, beats: number],
  { id: string; info: Record<string, unknown>; heartbeat_at: Date; age_ms: number }
>('nodes_seen');
export const rollCallRequest = prepared<[channel: string, notice: string], { asked_at: Date }>('roll_call_request');
export const nodeLeave = prepared<[nodeId: string]>('node_leave');

// ── registry ───────────────────────────────────────────────────────────────────────────────────

export const registerQueues = prepared<[partitions: string[], queues: string[], concurrency: number[], nodeId: string]>('register_queues');
export const knownQueues = prepared<[], { partition: string; queue: string }>('known_queues');
export const registerJobTypes =
  prepared<
    [
      types: string[],
      queues: string[],
      maxAttempts: number[],
      timeoutsMs: (number | null)[],
      queueKeys: (string | null)[],
      executionKeys: (string | null)[],
      nodeId: string,
    ]
  >('register_job_types');
export const jobTypes = prepared<
  [],
  { type: string; queue: string; max_attempts: number; timeout_ms: number | null; queue_key: string | null; execution_key: string | null }
>('job_types');

// ── history and schema ─────────────────────────────────────────────────────────────────────────

export const ensureHistoryPartitions = prepared<[daysAhead: number], { created: number }>('ensure_history_partitions');
export const pruneHistory = prepared<[retentionDays: number], { name: string }>('prune_history');
export const appliedMigrations = prepared<[], { version: number; name: string; applied_at: Date }>('applied_migrations');

// ── leases (by name) and Global's state ────────────────────────────────────────────────────────

export const leaseAcquire = prepared<[name: string, nodeId: string, ttlMs: number], { epoch: string; expires_at: Date; acquired_at: Date }>(
  'lease_acquire',
);
export const leaseRenew = prepared<[name: string, nodeId: string, epoch: number, ttlMs: number]>('lease_renew');
export const leaseRelease = prepared<[name: string, nodeId: string, epoch: number]>('lease_release');
export const leaseHolder = prepared<
  [name: string],
  { holder: string; epoch: string; expires_at: Date; acquired_at: Date; live: boolean; released: boolean }
>('lease_holder');
export const leaseRaiseEpoch = prepared<[name: string, nodeId: string, epoch: number, atLeast: number], { epoch: string }>(
  'lease_raise_epoch',
);
export const leaseCheck = prepared<[name: string, epoch: number], { held: boolean }>('lease_check');
export const globalStateLoad = prepared<[partition: string], { epoch: string; snapshot: unknown; saved_at: Date }>('global_state_load');
export const globalStateSave = prepared<[partition: string, epoch: number, json: string]>('global_state_save');
export const globalStateEpoch = prepared<[partition: string], { epoch: string | null }>('global_state_epoch');

// A name in OP_NAMES without its function here would load and never run: caught at import.
const undefinedOps = OP_NAMES.filter((op) => !defined.has(op));
if (undefinedOps.length > 0) {
  throw new PartitaError(
    'SQL_OPS',
    `src/ops.ts lists ${undefinedOps.join(', ')} in OP_NAMES but defines no typed function for ${undefinedOps.length === 1 ? 'it' : 'them'}`,
  );
}
