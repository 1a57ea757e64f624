/** Shared job types: what Postgres stores and what the client and runtime hand around. */
import type { KeyRule } from './key-template.js';

/**
 * The job states, the one list every TypeScript package uses (SQL keeps its own in the ops and the
 * schema's CHECK). Live states are rows of the jobs table; finished ones are in the history.
 */
export const LIVE_JOB_STATES = ['queued', 'scheduled', 'waiting', 'running'] as const;
export const FINISHED_JOB_STATES = ['completed', 'failed', 'cancelled'] as const;
export const JOB_STATES = [...LIVE_JOB_STATES, ...FINISHED_JOB_STATES] as const;

export type LiveJobState = (typeof LIVE_JOB_STATES)[number];
export type FinishedJobState = (typeof FINISHED_JOB_STATES)[number];
export type JobState = (typeof JOB_STATES)[number];

export function isJobState(value: unknown): value is JobState {
  return (JOB_STATES as readonly unknown[]).includes(value);
}

export function isFinishedJobState(state: unknown): state is FinishedJobState {
  return (FINISHED_JOB_STATES as readonly unknown[]).includes(state);
}

export type LookupValue = string | number | (string | number)[];
export type Lookup = Record<string, LookupValue>;

export interface JobError {
  attempt: number;
  at: string;
  name: string;
  message: string;
  stack?: string;
  code?: string;
  /** Set when the attempt ended because its node stopped heartbeating, not because perform threw. */
  rescued?: boolean;
}

export interface JobRecord {
  id: string;
  partition: string;
  queue: string;
  type: string;
  payload: unknown;
  state: JobState;
  priority: number;
  attempts: number;
  maxAttempts: number;
  result: unknown;
  errors: JobError[];
  lookup: Lookup | null;
  queueKey: string | null;
  executionKey: string | null;
  runAt: Date;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
  /** Node that ran (or is running) the latest attempt. */
  node: string | null;
  progress: unknown;
}

/** Options accepted per job at enqueue (DESIGN.md). */
export interface EnqueueOptions {
  queue?: string;
  queueKey?: string;
  executionKey?: string;
  runAt?: Date;
  delayMs?: number;
  /** Lower runs first (as in Oban and graphile-worker); default 0. */
  priority?: number;
  maxAttempts?: number;
  timeoutMs?: number;
  lookup?: Lookup;
  /**
   * Enqueue a type no node of the cluster has defined yet (it is not in the job-type registry):
   * for deploy ordering, when the nodes that define it start after this enqueue. Without it such
   * an enqueue is an UnknownJobTypeError. The job waits queued until a node defining it runs.
   */
  allowUnknownType?: boolean;
}

/**
 * Semaphore values of client.status(), as in Roger: negative while waiting, positive while
 * running (the attempt number), zero when done, and two sentinels for the unhappy ends.
 */
export const STATUS_PENDING = -1;
export const STATUS_COMPLETED = 0;
export const STATUS_CANCELLED = -1_000_000_000;
export const STATUS_FAILED = -1_000_000_001;

export function statusOf(job: Pick<JobRecord, 'state' | 'attempts'>): number {
  switch (job.state) {
    case 'queued':
    case 'scheduled':
    case 'waiting':
      return STATUS_PENDING;
    case 'running':
      return Math.max(1, job.attempts);
    case 'completed':
      return STATUS_COMPLETED;
    case 'cancelled':
      return STATUS_CANCELLED;
    case 'failed':
      return STATUS_FAILED;
  }
}

/** Partition and queue names travel in NATS subjects and SQL, so they are kept to a safe alphabet. */
export const NAME_PATTERN = /^[A-Za-z0-9_-]{1,64}$/;

/**
 * What a client needs to know about a job type to enqueue it with the right defaults. The
 * runtime's JobDefinition extends this with perform and the callbacks; nodes record these
 * defaults in Postgres so a client without the definitions still gets the right queue.
 */
export interface JobSpec<P = unknown> {
  type: string;
  queue?: string;
  maxAttempts?: number;
  timeoutMs?: number;
  backoff?: { baseMs: number; maxMs: number };
  /**
   * A template such as `'invoice:{invoice}'` (payload paths in braces) holds for every enqueuer:
   * nodes register it with the type. A function holds only for clients given the definitions.
   */
  queueKey?: KeyRule<P>;
  executionKey?: KeyRule<P>;
}

/**
 * A job definition as a client sees it for typed enqueue: its defaults (JobSpec) and what its
 * perform takes and returns. Every defineJob(...) result is one; the client never calls perform.
 */
export interface TypedJobSpec<P = any, R = unknown> extends JobSpec<P> {
  perform(payload: P, ctx: never): R | PromiseLike<R>;
}

declare const jobResultType: unique symbol;

/**
 * A job id that remembers the type of the job's result, as `client.enqueue(partition, definition,
 * payload)` returns it, so `client.result(id)` resolves to that type. At run time a plain string.
 * The result comes back through JSON: a perform returning a Date gives a string.
 */
export type JobId<R = unknown> = string & { readonly [jobResultType]: R };
