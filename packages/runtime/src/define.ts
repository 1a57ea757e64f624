import { NAME_PATTERN, ValidationError, parseKeyTemplate, type JobError, type JobSpec, type Logger } from '@partita/core';
import type { EnqueueOutcome, NewJob, Tx } from '@partita/postgres';

export interface JobContext {
  id: string;
  partition: string;
  queue: string;
  /** 1 on the first run. */
  attempt: number;
  /** Aborted on cancel, timeout, lease loss or forced shutdown; `signal.reason` says which. */
  signal: AbortSignal;
  logger: Logger;
  /** Records progress (stored with the job, batched); later also published as a job event. */
  progress(value: unknown): void;
}

/**
 * What onSuccess, onError, onFailed and onCancel are told about their job. They run after the
 * attempt's outcome was recorded: there is nothing left to abort and no progress to record.
 */
export type HookContext = Pick<JobContext, 'id' | 'partition' | 'queue' | 'attempt' | 'logger'>;

/** A job whose final outcome a continuation sees, recorded in the transaction it runs in. */
export interface FinishedJob<P = any, R = any> {
  id: string;
  type: string;
  partition: string;
  queue: string;
  payload: P;
  /** The attempt that ended the job. */
  attempt: number;
  state: 'completed' | 'failed' | 'cancelled';
  /** Completed jobs: what perform returned. */
  result?: R;
  /** Failed and cancelled jobs: the last attempt's error (null: cancelled before it ran). */
  error?: JobError | null;
}

/**
 * Runs inside the transaction that records a batch of final outcomes (completed, failed for good,
 * cancelled), with the jobs of that batch it was attached to: what it writes through `tx`
 * (tx.enqueue, tx.query) commits together with those outcomes, exactly once. A throw rolls the
 * outcomes back too; they are written again after a backoff, and a job whose continuation still
 * throws after a few tries fails on its own with that error (its continuation is not run again).
 * It holds the jobs' rows locked while it runs: keep it to a few statements.
 */
export type Continuation<P = any, R = any> = (tx: ContinuationTx, jobs: FinishedJob<P, R>[], prepared?: unknown) => void | Promise<void>;

/**
 * Sends, before the outcomes' statements are answered, what a continuation would send first once it
 * runs (pipelined behind them on the transaction's connection: one round trip fewer), and returns
 * what `run` gets as its third argument (its pending answers). `jobs` are the batch's final outcomes
 * bound for the continuation, before the store said which it accepts: its statements must change
 * nothing for a job whose outcome the store refuses (a lease lost meanwhile), or `run` must undo it.
 * When it returns something other than undefined, `run` is called even if the store accepted none
 * of them (with no jobs). It must not throw: a statement's failure is heard through its answer.
 */
export type ContinuationPrepare<P = any, R = any> = (tx: ContinuationTx, jobs: FinishedJob<P, R>[]) => unknown;

/** The transaction a continuation runs in: the store's, plus enqueueing into this node's own hands. */
export interface ContinuationTx extends Tx {
  /**
   * tx.enqueue, except that each job this node's engine of the job's partition could start now (it
   * defines the type, the queue has room in its window and is not paused, throttled or rate-limited,
   * the job has no queue or execution key and no later start) is stored as this node's running
   * attempt and started here as soon as the transaction commits: no wake-up, no claim. The others
   * are enqueued as tx.enqueue does. Such a job is leased like a claimed one, so if the node dies
   * before starting it, the lease runs out and it is rescued like any other. For follow-ups that
   * may run on any node of the partition; a job that must reach other nodes takes tx.enqueue.
   */
  enqueueHere(jobs: NewJob[]): Promise<EnqueueOutcome[]>;
  /**
   * Runs `fn` once the transaction has committed (never when it rolls back, and never before the
   * commit): for effects outside Postgres that must follow what the continuation wrote, e.g. a
   * message about it. At most once: a crash between the commit and `fn` loses it, so only for what
   * may be lost or is made good otherwise. A throw is logged.
   */
  afterCommit(fn: () => void): void;
  /**
   * This continuation's writes of the batch need not wait for the WAL flush at COMMIT (Tx.commitAsync):
   * nothing outside the node is told of them (no message published, no caller answered) before a
   * later synchronous commit makes them durable. The transaction commits so only when every
   * continuation that ran in it asked, and none of its jobs' definitions has outcome callbacks. Its
   * outcomes commit with it: a Postgres crash that undoes them (within a few wal_writer_delay) leaves
   * those jobs to run again, as a node crash mid-attempt does.
   */
  commitAsync(): void;
}

/**
 * A continuation attached by a plugin (the engine's `continuations` option) to job outcomes: to those
 * of some job types, and to those of the jobs marked with its name (NewJob.continuation, set by
 * whoever enqueues them in a transaction, e.g. a workflow's steps), whatever their type.
 */
export interface OutcomeContinuation {
  /**
   * Names it in logs and in the error a job fails with when it keeps throwing, and is the mark that
   * sends a job's outcome to it. Unique on the node.
   */
  name: string;
  /**
   * The job types it follows: a list, or a predicate asked for each finished job's type. Keep a
   * predicate cheap (a Set lookup): it runs for every job written. Omitted: only the jobs marked
   * with its name, so that every other job keeps the plain (non-transactional) write; prefer this
   * for jobs known only at run time (a workflow's worker topics) over a predicate that takes all.
   */
  types?: readonly string[] | ((type: string) => boolean);
  run: Continuation;
  /** Statements sent ahead, behind the outcomes' (see ContinuationPrepare). */
  prepare?: ContinuationPrepare;
  /**
   * Its statements, and the outcomes' written with them, are planned once per connection (a cached
   * generic plan) instead of at every execution (see TransactionOptions.genericPlans of
   * @partita/postgres). Only for a continuation whose every statement finds its rows by key
   * whatever its arguments' values or sizes. The transaction plans so when every continuation of
   * its batch asks for it.
   */
  genericPlans?: boolean;
  /**
   * It records the successes of the jobs marked with its name itself (their result, attempts and
   * timings, in rows of its own written in the same transaction), so such a job's success leaves
   * no row in job history: client.job(id), client.result(id) once the job has finished, `partita
   * job` and the dashboard's job page find nothing for it, and its success is read where the
   * continuation keeps it (a workflow step's, in its workflow's timeline). Its failures and
   * cancellations, and the jobs it takes by type without the mark, keep their history rows.
   */
  recordsSuccess?: boolean;
}

export interface JobDefinition<P = any, R = any> extends JobSpec<P> {
  type: string;
  queue: string;
  /**
   * One live job per key: enqueueing another while one is queued or running is refused
   * (DuplicateQueueKeyError). A template such as `'invoice:{invoice}'` (payload paths in braces,
   * `{customer.id}`, `{lines.0.sku}`) is registered with the type, so it holds for every enqueuer:
   * the CLI, a bare connect(), other services. A payload without a value for a path is refused
   * (ValidationError naming the path). A function `(payload) => key` holds only for clients given
   * the definitions (node.client, connect({ jobs }), the CLI with the config's jobs module).
   */
  queueKey?: JobSpec<P>['queueKey'];
  /** One running job per key, cluster-wide; later ones wait in order. A template or a function, as queueKey. */
  executionKey?: JobSpec<P>['executionKey'];
  /** Unset: the node's `defaults.maxAttempts` (1 unless configured). */
  maxAttempts?: number;
  /** Unset: the node's `defaults.backoff`. */
  backoff?: { baseMs: number; maxMs: number };
  /** Unset: the node's `defaults.timeoutMs`; 0: none. */
  timeoutMs?: number;
  perform(payload: P, ctx: JobContext): R | Promise<R>;
  /** After the success was recorded. */
  onSuccess?(result: R, payload: P, ctx: HookContext): void | Promise<void>;
  /** After each failed attempt that will be retried. */
  onError?(error: unknown, payload: P, ctx: HookContext): void | Promise<void>;
  /** After the last attempt failed and the job was recorded as failed. */
  onFailed?(error: unknown, payload: P, ctx: HookContext): void | Promise<void>;
  /**
   * Once, after a job cancelled while its attempt ran was recorded as cancelled: perform had
   * started, or the node holding the job died before it could record the cancel (the node that
   * rescues it calls onCancel). A job cancelled before its attempt started (queued, or still in a
   * node's prefetch) never runs and gets no onCancel.
   */
  onCancel?(payload: P, ctx: HookContext): void | Promise<void>;
  /**
   * Runs in the same transaction as the recording of this type's final outcomes, once per batch
   * (see Continuation): for follow-up jobs and rows that must exist exactly when the outcome does.
   * Retried attempts do not reach it. Unlike onSuccess/onFailed, which run after the commit and
   * may be lost to a crash, it cannot run without the outcome being recorded, nor the other way round.
   */
  continuation?(tx: Tx, jobs: FinishedJob<P, R>[]): void | Promise<void>;
}

export type JobDefinitionInput<P, R> = Omit<JobDefinition<P, R>, 'queue'> & { queue?: string };

/** A definition with the node's defaults filled in: what the engine runs. */
export type ResolvedJobDefinition<P = any, R = any> = JobDefinition<P, R> & {
  maxAttempts: number;
  backoff: { baseMs: number; maxMs: number };
};

/** Declares a job type. Checked at once, so a typo fails at start-up rather than at the first run. */
export function defineJob<P = any, R = any>(input: JobDefinitionInput<P, R>): JobDefinition<P, R> {
  const what = `defineJob(${typeof input?.type === 'string' ? JSON.stringify(input.type) : '?'})`;
  if (typeof input !== 'object' || input === null) throw new ValidationError('needs an object { type, perform, ... }', 'defineJob');
  if (typeof input.type !== 'string' || input.type.length === 0 || input.type.length > 200) {
    throw new ValidationError('type must be a non-empty string of at most 200 characters', `${what}.type`);
  }
  if (typeof input.perform !== 'function')
    throw new ValidationError('perform must be a function (payload, ctx) => result', `${what}.perform`);
  const queue = input.queue ?? 'default';
  if (!NAME_PATTERN.test(queue)) throw new ValidationError('queue must be 1-64 letters, digits, _ or -', `${what}.queue`);
  const { maxAttempts, backoff } = input;
  if (maxAttempts !== undefined && (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000)) {
    throw new ValidationError('maxAttempts must be an integer from 1 to 1000', `${what}.maxAttempts`);
  }
  if (
    backoff !== undefined &&
    (!Number.isFinite(backoff?.baseMs) || backoff.baseMs < 0 || !Number.isFinite(backoff.maxMs) || backoff.maxMs < backoff.baseMs)
  ) {
    throw new ValidationError('backoff must be { baseMs ≥ 0, maxMs ≥ baseMs }', `${what}.backoff`);
  }
  if (input.timeoutMs !== undefined && (!Number.isInteger(input.timeoutMs) || input.timeoutMs < 0)) {
    throw new ValidationError('timeoutMs must be a whole number of milliseconds ≥ 0 (0: none)', `${what}.timeoutMs`);
  }
  for (const key of ['queueKey', 'executionKey'] as const) {
    const rule = input[key];
    if (typeof rule === 'string') parseKeyTemplate(rule, `${what}.${key}`);
    else if (rule !== undefined && typeof rule !== 'function') {
      throw new ValidationError("must be a template such as 'invoice:{invoice}' or a function (payload) => key", `${what}.${key}`);
    }
  }
  for (const hook of ['onSuccess', 'onError', 'onFailed', 'onCancel', 'continuation'] as const) {
    if (input[hook] !== undefined && typeof input[hook] !== 'function') throw new ValidationError('must be a function', `${what}.${hook}`);
  }
  return Object.freeze({ ...input, queue, ...(backoff ? { backoff: { ...backoff } } : {}) });
}

/** Exponential backoff with "equal jitter": half the delay fixed, half random, capped at maxMs. */
export function backoffDelay(attempt: number, backoff: { baseMs: number; maxMs: number }, random = Math.random): number {
  const exp = Math.min(backoff.maxMs, backoff.baseMs * 2 ** Math.max(0, attempt - 1));
  return Math.round(exp / 2 + random() * (exp / 2));
}
