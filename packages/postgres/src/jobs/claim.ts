import type { HandoffJob } from '@partita/protocol';
import type { StoreContext } from '../context.js';
import * as op from '../ops.js';
import { columnIndexes, type ClaimRow } from '../ops.js';

// The engine's hot path, first half: claims (plain and rate-limited).

/**
 * A job a claim (or a hand-off) made this node's running attempt: the hand-off's wire shape, plus
 * what only a claim can carry. `attempt` is the fencing token a completion must present.
 */
export interface ClaimedJob extends HandoffJob {
  executionKey: string | null;
  cancelRequested: boolean;
  /** The continuation the job is marked for (NewJob.continuation); absent or null: none. */
  continuation?: string | null;
  /**
   * Where the claim left the job's row (its tid, as Postgres writes it): the completion fetches it
   * there instead of probing the primary key (complete_plain), and by id when it has moved since.
   * Absent or null: unknown (a hand-off, a rate-limited claim, a key's next job taken in hand).
   */
  tid?: string | null;
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
  /**
   * The continuations the node runs: a job marked for another stays queued for a node that runs it
   * (its outcome must go through it). Undefined: any (tools, tests).
   */
  continuations?: readonly string[];
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
  /** As ClaimRequest.continuations. */
  continuations?: readonly string[];
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

/** Claims up to `limit` due jobs of each queue of one partition, in one statement. */
export async function claim(ctx: StoreContext, request: ClaimRequest): Promise<ClaimedJob[]> {
  return (await claimCounted(ctx, request)).jobs;
}

/**
 * claim(), plus how many claimable jobs each queue had, up to its limit: when that reaches the
 * limit there are more to claim even if fewer came back (only one job per execution key is
 * taken per claim).
 */
export async function claimCounted(ctx: StoreContext, request: ClaimRequest): Promise<{ jobs: ClaimedJob[]; found: Map<string, number> }> {
  const wanted = request.queues.filter((q) => q.limit > 0);
  const found = new Map<string, number>();
  if (wanted.length === 0) return { jobs: [], found };
  const { names, rows } = await op.claimBatch(
    ctx.ops,
    ctx.onePlanPool,
    [
      request.partition,
      wanted.map((q) => q.queue),
      wanted.map((q) => q.limit),
      request.nodeId,
      request.leaseMs,
      request.types ?? null,
      request.continuations ?? null,
    ],
    retryOnKeyRace,
  );
  const at = columnIndexes(names, CLAIM_COLUMNS, 'claim_batch');
  const tidAt = names.indexOf('tid');
  const jobs: ClaimedJob[] = [];
  const { partition } = request;
  // A claim's jobs mostly share a queue and a type: each row's copy of the same text is dropped for
  // the one the job before kept, so the jobs held in the prefetch share theirs.
  let queue = '';
  let type = '';
  // Rows come in claim order (priority, run_at, id), the per-queue counts last.
  for (const r of rows) {
    if (r[at.id] === null) {
      found.set(r[at.queue] as string, (r[at.found] as number | null) ?? 0);
      continue;
    }
    if (r[at.queue] !== queue) queue = r[at.queue] as string;
    if (r[at.type] !== type) type = r[at.type] as string;
    jobs.push(claimedJobAt(r, at, partition, queue, type, tidAt));
  }
  return { jobs, found };
}

/** The columns of a claimed job in a row read in array mode (claim_batch, complete_batch's taken jobs). */
export type ClaimedColumns = Record<(typeof CLAIMED_COLUMNS)[number], number>;

/** A claimed job from an array-mode row; `queue` and `type` given when the caller shares their strings across rows. */
export function claimedJobAt(
  r: unknown[],
  at: ClaimedColumns,
  partition: string,
  queue = r[at.queue] as string,
  type = r[at.type] as string,
  tidAt = -1,
): ClaimedJob {
  return {
    id: r[at.id] as string,
    partition,
    queue,
    type,
    payload: r[at.payload],
    // claim_batch sends the defaults (priority 0, not cancel-requested) as NULL; complete_batch's taken jobs send them as they are.
    priority: (r[at.priority] as number | null) ?? 0,
    attempt: r[at.attempts] as number,
    maxAttempts: r[at.max_attempts] as number,
    timeoutMs: r[at.timeout_ms] as number | null,
    queueKey: r[at.queue_key] as string | null,
    executionKey: r[at.execution_key] as string | null,
    cancelRequested: r[at.cancel_requested] === true,
    traceparent: r[at.traceparent] as string | null,
    continuation: r[at.continuation] as string | null,
    tid: tidAt < 0 ? null : (r[tidAt] as string | null),
  };
}

/**
 * The claim for rate-limited queues (see sql/ops/claim_rate_limited.sql): each queue takes up to
 * `limit` due jobs, skipping keys whose bucket is full, and takes the claimed jobs' tokens in the
 * same transaction, on the database's clock. Per queue it also answers how many claimable jobs it
 * found and what the limit did (`RateLimitOutcome`).
 */
export async function claimRateLimited(
  ctx: StoreContext,
  request: RateLimitedClaimRequest,
): Promise<{ jobs: ClaimedJob[]; found: Map<string, number>; limited: Map<string, RateLimitOutcome> }> {
  const wanted = request.queues.filter((q) => q.limit > 0);
  const found = new Map<string, number>();
  const limited = new Map<string, RateLimitOutcome>();
  if (wanted.length === 0) return { jobs: [], found, limited };
  const rows = await op.claimRateLimited(
    ctx.ops,
    ctx.pool,
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
      request.continuations ?? null,
    ],
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
export async function pruneRateBuckets(ctx: StoreContext): Promise<number> {
  const [row] = await op.pruneRateBuckets(ctx.ops, ctx.pool, []);
  return row?.dropped ?? 0;
}

/** What a claim row carries: ClaimRow's columns and the per-queue `found`. */
/** The columns of a claimed job, as claim_batch and complete_batch (its taken jobs) return them. */
export const CLAIMED_COLUMNS = [
  'id',
  'queue',
  'type',
  'payload',
  'priority',
  'attempts',
  'max_attempts',
  'timeout_ms',
  'queue_key',
  'execution_key',
  'cancel_requested',
  'traceparent',
  'continuation',
] as const satisfies readonly (keyof ClaimRow)[];
const CLAIM_COLUMNS = [...CLAIMED_COLUMNS, 'found'] as const;

/** Claims that hit another claim's just-committed hold on an execution key are retried: the retry reads past it. */
const CLAIM_KEY_RACE_RETRIES = 3;

function retryOnKeyRace(err: unknown, attempt: number): boolean {
  const e = err as { code?: string; constraint?: string };
  return e.code === '23505' && e.constraint === 'jobs_running_key_idx' && attempt <= CLAIM_KEY_RACE_RETRIES;
}

/** A claimed job from its row; the claim builds the same shape from its array rows (claimCounted). */
export function claimedJob(partition: string, r: ClaimRow): ClaimedJob {
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
    continuation: r.continuation,
  };
}
