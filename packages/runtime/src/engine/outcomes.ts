/**
 * The outcome batch: finished attempts, hand-backs and progress wait in `pending` and are written
 * together (group commit). At most `maxWrites` batches are written at a time (`inflight`): while
 * they are written the next one grows, so batches size themselves to the load. One at a time, a
 * keyed drain (each completion settles its keys and takes their next jobs, ~2x a plain completion's
 * work per row) was bound by that one statement's time per row; two side by side let its two waves
 * of keys be written at once (only those, and continued steps behind a backlog: see besideFrom).
 * Its jobs still hold leases until the write lands. A failed write puts its outcomes back in front
 * of what arrived since, and the next flush waits for a backoff.
 *
 *   record ──► pending ──take()──► inflight ──settled()──► (gone)
 *                 ▲                    │
 *                 └────requeue()───────┘  (write failed: back in front, backoff doubles)
 *
 * Pure bookkeeping, fed the time; the engine's writer does the I/O.
 */
import { JobCancelledError, describeError, type JobError } from '@partita/core';
import { isRowRefusal, isTransientDbError, type ClaimedJob, type Recorded } from '@partita/postgres';
import { backoffDelay, type ResolvedJobDefinition } from '../define.js';
import { nextBackoff } from './backoff.js';

export interface PendingFailure {
  job: ClaimedJob;
  error: JobError | null;
  cause: unknown;
  retryAt?: Date;
  finalState?: 'failed' | 'cancelled';
  /** A cancel of a job whose attempt never started (it waited in the prefetch): no onCancel, as for a queued job. */
  neverStarted?: boolean;
  /** Its own error was refused by Postgres and replaced with one that says so; refused again, it is dropped. */
  replacedError?: boolean;
  /** Transactions of its continuations that rolled back because one threw (or Postgres refused a row). */
  continuationTries?: number;
  /** Its continuation kept throwing: this failure, which says so, is recorded without it. */
  skipContinuation?: boolean;
}

export interface PendingCompletion {
  job: ClaimedJob;
  result: unknown;
  /** The result's JSON text, checked by the worker. */
  json?: string;
  continuationTries?: number;
}

export interface FlushBatch {
  completions: PendingCompletion[];
  failures: PendingFailure[];
  releases: ClaimedJob[];
  /** Job id → the latest progress value's JSON text. */
  progress: Map<string, string>;
}

/** What Postgres made of a written batch. */
export interface Accepted {
  completed: Set<string>;
  failed: Set<string>;
  /** Handed back, but finished as cancelled instead (a cancel was asked while this node held them). */
  cancelled: Set<string>;
  /** Rows Postgres refused (id → why); the rest of their batch was recorded. */
  refused: {
    completions: Map<string, string>;
    failures: Map<string, string>;
    releases: Map<string, string>;
    progress: Map<string, string>;
  };
  /** Jobs whose continuation kept throwing (id → its error): nothing of theirs was recorded. */
  offending: Map<string, unknown>;
}

/** The part of a batch written with its types' continuations, in a transaction of its own. */
export interface ContinuedPart {
  completions: PendingCompletion[];
  failures: PendingFailure[];
}

/**
 * What the continued write recorded. `later`: the jobs of parts that failed for a transient reason
 * (the connection, a deadlock) while the batch was written in parts, to be written again after a
 * backoff; the parts before them committed, so the batch is not written again whole.
 */
export interface ContinuedWrite {
  completed: Recorded;
  failed: Recorded;
  offending: Map<string, unknown>;
  later?: { part: ContinuedPart; error: unknown };
}

/**
 * Transactions a job's continuation may roll back before its batch is split to find the job that
 * throws: a throw that clears (a conflict, a restart) gets these tries with backoff first.
 */
export const CONTINUATION_TRIES = 3;

/** A continuation threw: what rolled its transaction back (`cause`) was the continuation's, not the store's. */
export class ContinuationThrew extends Error {
  constructor(
    readonly continuation: string,
    override readonly cause: unknown,
  ) {
    super(`continuation ${continuation} threw: ${describeError(cause).message}`);
    this.name = 'ContinuationThrew';
  }
}

export function emptyBatch(): FlushBatch {
  return { completions: [], failures: [], releases: [], progress: new Map() };
}

export function batchSize(b: FlushBatch): number {
  return b.completions.length + b.failures.length + b.releases.length + b.progress.size;
}

/**
 * Whether a batch in flight lets the next one be written beside it, and once how many outcomes wait
 * (undefined: it does not). Never while it holds progress (see OutcomeBatch). Plain batches are
 * written one at a time: two plain completions side by side slowed the plain drain (9.5-13.4k
 * against 16-24k jobs/s in three alternating pairs). Beside one whose completions hold execution keys
 * (their statement settles the keys and takes their next jobs, about twice a plain completion's work
 * per row), at once, when no continuation runs on this node (`keyed`). Beside one whose completions
 * are marked for a continuation (a workflow's steps), once CONTINUED_BACKLOG × flushBatch wait: one
 * such transaction at a time kept its backend and the node taking turns (the backend ~70 % of a
 * batch's cycle, the node's transitions the rest), so a backlog waited; a second beside it at the
 * usual batch size bought nothing and cost Postgres CPU. Transitions written side by side are safe
 * as those of two nodes are: each locks the workflows of its steps first, in one order.
 */
function besideFrom(b: FlushBatch, flushBatch: number, keyed: boolean): number | undefined {
  if (b.progress.size > 0) return undefined;
  let continued = false;
  for (const c of b.completions) {
    if (keyed && c.job.executionKey) return 0;
    if (c.job.continuation) continued = true;
  }
  return continued ? flushBatch * CONTINUED_BACKLOG : undefined;
}

/** See besideFrom: the backlog, in flushBatch, before a batch of continued steps gets a second write beside it. */
export const CONTINUED_BACKLOG = 3;

/** One write takes at most this many times flushBatch outcomes (see take()). */
export const MAX_BATCH_FACTOR = 4;

export class OutcomeBatch {
  pending: FlushBatch = emptyBatch();
  /** The batches being written, oldest first. */
  inflight: FlushBatch[] = [];
  /**
   * Those of `inflight` that let another be written beside them, and once how many outcomes wait
   * (besideFrom), decided once when taken: take() runs at every job's end while a full batch waits,
   * and scanning the batches in flight each time (thousands of completions) was 7 % of the node
   * process's CPU in a drain.
   */
  private readonly besides = new WeakMap<FlushBatch, number>();
  /** A 'flush' message is booked. */
  scheduled = false;
  /** Wait before writing again after a failed write (0: the last write succeeded). */
  backoffMs = 0;

  /**
   * `maxWrites`: batches written side by side. More than one only where no write's order matters:
   * every batch holds other jobs' outcomes (a job's outcome is in one batch), but a continuation's
   * transaction may touch what another batch's does, and a job's progress written beside its
   * completion could land after it (so a second write takes no batch while either holds progress).
   * A second goes out only beside keyed completions (when `keyedBeside`: no continuation runs on the
   * node) or, once a backlog waits, continued ones (besideFrom).
   */
  constructor(
    private readonly flushBatch: number,
    private readonly maxWrites = 1,
    private readonly keyedBeside = true,
  ) {}

  get size(): number {
    return batchSize(this.pending);
  }

  /** Nothing waits and nothing is being written. */
  get empty(): boolean {
    return this.inflight.length === 0 && this.size === 0;
  }

  /**
   * What the engine does about a new outcome: 'now' flushes at once (the batch is full, or `quiet`:
   * no other job runs that could join it, and no write is in flight), 'later' books a flush after
   * flushMs, 'booked' means one is already booked.
   */
  due(quiet = false): 'now' | 'later' | 'booked' {
    if (this.size >= this.flushBatch) return 'now';
    // Waiting gathers the outcomes of jobs that finish meanwhile; with none running, none will.
    if (quiet && this.inflight.length === 0) return 'now';
    if (this.scheduled) return 'booked';
    this.scheduled = true;
    return 'later';
  }

  /**
   * The pending batch (at most `MAX_BATCH_FACTOR` × flushBatch outcomes of it), now in flight;
   * undefined while `maxWrites` others are written (or one, and either holds progress) or nothing waits. The cap bounds one write's transaction:
   * outcomes pile up behind a slow or failed write (16,000 were seen behind a deadlock retry), and
   * one transaction of all of them holds every lock and lease renewal of the batch for its whole
   * length, and its continuations' follow-ups grow past any payload limit. The rest stays pending,
   * in order, and is taken by the next flush, at once (it is over flushBatch).
   */
  take(): FlushBatch | undefined {
    this.scheduled = false;
    if (this.inflight.length >= this.maxWrites || this.size === 0) return undefined;
    for (const b of this.inflight) {
      const from = this.besides.get(b);
      if (from === undefined || this.size < from) return undefined;
    }
    if (this.inflight.length > 0 && this.pending.progress.size > 0) return undefined;
    const max = this.flushBatch * MAX_BATCH_FACTOR;
    let batch = this.pending;
    if (batchSize(batch) <= max) this.pending = emptyBatch();
    else {
      const rest = batch;
      let room = max;
      const cut = <T>(list: T[]): T[] => {
        const n = Math.min(room, list.length);
        room -= n;
        return list.splice(0, n);
      };
      batch = { completions: cut(rest.completions), failures: cut(rest.failures), releases: cut(rest.releases), progress: rest.progress };
      rest.progress = new Map();
      this.pending = rest;
    }
    if (this.maxWrites > 1) {
      const from = besideFrom(batch, this.flushBatch, this.keyedBeside);
      if (from !== undefined) this.besides.set(batch, from);
    }
    this.inflight.push(batch);
    return batch;
  }

  /** The batch `sent` (as take() returned it) was written. */
  settled(sent: FlushBatch): void {
    this.written(sent);
    this.backoffMs = 0;
  }

  /**
   * A write failed: its outcomes (`batch`: all of `sent`, or the part that failed) go back in front
   * of whatever arrived since, nothing is lost. Returns the backoff before the next write, or
   * undefined when a flush is already booked.
   */
  requeue(batch: FlushBatch, sent: FlushBatch = batch): number | undefined {
    this.written(sent);
    const p = this.pending;
    this.pending = {
      completions: [...batch.completions, ...p.completions],
      failures: [...batch.failures, ...p.failures],
      releases: [...batch.releases, ...p.releases],
      progress: new Map([...batch.progress, ...p.progress]),
    };
    this.backoffMs = nextBackoff(this.backoffMs);
    if (this.scheduled) return undefined;
    this.scheduled = true;
    return this.backoffMs;
  }

  /** Ids of outcomes not yet recorded, pending or in flight, after `ids`: their leases must still be renewed. */
  held(ids: string[]): string[] {
    return [this.pending, ...this.inflight].reduce<string[]>(
      (all, b) =>
        all.concat(
          b.completions.map((c) => c.job.id),
          b.failures.map((f) => f.job.id),
          b.releases.map((j) => j.id),
        ),
      ids,
    );
  }

  private written(sent: FlushBatch): void {
    const i = this.inflight.indexOf(sent);
    if (i >= 0) this.inflight.splice(i, 1);
  }
}

/** Queues a recorded batch made jobs claimable in: jobs handed back, and keyed jobs that ended (their key is free). */
export function claimableQueues(batch: FlushBatch, completions = true): string[] {
  const queues = new Set<string>();
  if (completions) for (const c of batch.completions) if (c.job.executionKey) queues.add(c.job.queue);
  for (const f of batch.failures) if (f.job.executionKey) queues.add(f.job.queue);
  for (const j of batch.releases) queues.add(j.queue);
  return [...queues];
}

/**
 * The batch's final outcomes whose type has a continuation (`continued`, undefined when none), and
 * the rest (`plain`), written by the plain statements as when no type has one.
 */
export function splitContinued(
  batch: FlushBatch,
  hasContinuation: (job: ClaimedJob) => boolean,
): { plain: FlushBatch; continued?: ContinuedPart } {
  const completions = batch.completions.filter((c) => hasContinuation(c.job));
  const failures = batch.failures.filter((f) => !f.retryAt && !f.skipContinuation && hasContinuation(f.job));
  if (completions.length + failures.length === 0) return { plain: batch };
  const inContinued = new Set<unknown>([...completions, ...failures]);
  return {
    plain: {
      ...batch,
      completions: batch.completions.filter((c) => !inContinued.has(c)),
      failures: batch.failures.filter((f) => !inContinued.has(f)),
    },
    continued: { completions, failures },
  };
}

/** A failure that is no job's doing: transient itself, or a continuation that threw a transient error. */
export function transientFailure(error: unknown): boolean {
  return isTransientDbError(error instanceof ContinuationThrew ? error.cause : error);
}

/**
 * A rollback caused by the jobs themselves (a continuation threw, a row refused) counts toward
 * splitting their batch. A continuation that failed for a transient reason (its connection went, a
 * deadlock chose it) does not: it says nothing of the jobs, and splitting would end in failing them.
 */
export function countContinuationTry(part: ContinuedPart, error: unknown): void {
  if (transientFailure(error) || !(error instanceof ContinuationThrew || isRowRefusal(error))) return;
  for (const entry of [...part.completions, ...part.failures]) entry.continuationTries = (entry.continuationTries ?? 0) + 1;
}

type Written<T> = PromiseSettledResult<T>;

/** The 'flushed' message of a batch whose statements did not all fail. */
export interface Flushed {
  t: 'flushed';
  /** The batch as take() returned it (to settle it among those in flight). */
  sent: FlushBatch;
  /** What of it was written. */
  batch: FlushBatch;
  accepted: Accepted;
  /** The parts whose statement failed, to be written again after a backoff. */
  unwritten?: { batch: FlushBatch; error: unknown };
}

/**
 * Sorts the statements' results of a written batch. Each statement commits on its own, so only the
 * parts that failed are written again: a part written twice would be refused the second time as
 * if its leases were lost, and its jobs would miss their events and callbacks.
 */
export function settleWrites(
  batch: FlushBatch,
  plain: FlushBatch,
  continued: ContinuedPart | undefined,
  completedWrite: Written<Recorded>,
  failedWrite: Written<Recorded>,
  releasedWrite: Written<{ cancelled: Set<string>; refused: Map<string, string> }>,
  progressWrite: Written<Map<string, string>>,
  continuedWrite: Written<ContinuedWrite | undefined>,
): Flushed {
  const none = new Map<string, string>();
  const written = emptyBatch();
  const unwritten = emptyBatch();
  let error: unknown;
  let failedPart = false;
  const accepted: Accepted = {
    completed: new Set(),
    failed: new Set(),
    cancelled: new Set(),
    refused: { completions: none, failures: none, releases: none, progress: none },
    offending: new Map(),
  };
  if (completedWrite.status === 'fulfilled') {
    written.completions = plain.completions;
    accepted.completed = completedWrite.value;
    accepted.refused.completions = completedWrite.value.refused;
  } else [unwritten.completions, error, failedPart] = [plain.completions, completedWrite.reason, true];
  if (failedWrite.status === 'fulfilled') {
    written.failures = plain.failures;
    accepted.failed = failedWrite.value;
    accepted.refused.failures = failedWrite.value.refused;
  } else [unwritten.failures, error, failedPart] = [plain.failures, failedWrite.reason, true];
  if (continued && continuedWrite.status === 'fulfilled' && continuedWrite.value) {
    const { completed: c, failed: f, offending, later } = continuedWrite.value;
    const held = later && new Set<unknown>([...later.part.completions, ...later.part.failures]);
    written.completions = written.completions.concat(held ? continued.completions.filter((e) => !held.has(e)) : continued.completions);
    written.failures = written.failures.concat(held ? continued.failures.filter((e) => !held.has(e)) : continued.failures);
    if (later) {
      unwritten.completions = unwritten.completions.concat(later.part.completions);
      unwritten.failures = unwritten.failures.concat(later.part.failures);
      [error, failedPart] = [later.error, true];
    }
    accepted.completed = new Set([...accepted.completed, ...c]);
    accepted.failed = new Set([...accepted.failed, ...f]);
    accepted.refused.completions = new Map([...accepted.refused.completions, ...c.refused]);
    accepted.refused.failures = new Map([...accepted.refused.failures, ...f.refused]);
    accepted.offending = offending;
  } else if (continued && continuedWrite.status === 'rejected') {
    countContinuationTry(continued, continuedWrite.reason);
    unwritten.completions = unwritten.completions.concat(continued.completions);
    unwritten.failures = unwritten.failures.concat(continued.failures);
    [error, failedPart] = [continuedWrite.reason, true];
  }
  if (releasedWrite.status === 'fulfilled') {
    written.releases = batch.releases;
    accepted.cancelled = releasedWrite.value.cancelled;
    accepted.refused.releases = releasedWrite.value.refused;
  } else [unwritten.releases, error, failedPart] = [batch.releases, releasedWrite.reason, true];
  if (progressWrite.status === 'fulfilled') {
    written.progress = batch.progress;
    accepted.refused.progress = progressWrite.value;
  } else [unwritten.progress, error, failedPart] = [batch.progress, progressWrite.reason, true];
  return failedPart
    ? { t: 'flushed', sent: batch, batch: written, accepted, unwritten: { batch: unwritten, error } }
    : { t: 'flushed', sent: batch, batch: written, accepted };
}

/** Why the engine aborted a job, if it did: decides what its outcome records. */
export type AbortCause = 'cancel' | 'lease' | 'shutdown';

/**
 * Adds what an ended attempt records to `pending`: its completion, its failure (retried while
 * attempts remain), a cancel, or a hand-back when a shutdown aborted it. False when there is
 * nothing to record: its lease was lost, and the node that owns it now records its outcome.
 */
export function recordAttempt(
  pending: FlushBatch,
  job: ClaimedJob,
  abort: AbortCause | undefined,
  outcome: { ok: boolean; result?: unknown; json?: string; error?: unknown },
  def: ResolvedJobDefinition | undefined,
  now: number,
): boolean {
  if (abort === 'lease') return false;
  if (abort === 'shutdown') pending.releases.push(job);
  else if (outcome.ok)
    pending.completions.push(
      outcome.json === undefined ? { job, result: outcome.result } : { job, result: outcome.result, json: outcome.json },
    );
  else if (abort === 'cancel') pending.failures.push({ job, error: null, cause: new JobCancelledError(job.id), finalState: 'cancelled' });
  else pending.failures.push(attemptFailed(job, outcome.error, def, now));
  return true;
}

/** The failure record of an attempt that ended in `cause` at `now`: retried while attempts remain. */
export function attemptFailed(job: ClaimedJob, cause: unknown, def: ResolvedJobDefinition | undefined, now: number): PendingFailure {
  const error = jobError(job, cause, now);
  return job.attempt < job.maxAttempts && def !== undefined
    ? { job, error, cause, retryAt: new Date(now + backoffDelay(job.attempt, def.backoff)) }
    : { job, error, cause, finalState: 'failed' };
}

export function jobError(job: ClaimedJob, err: unknown, now = Date.now()): JobError {
  const d = describeError(err);
  return {
    attempt: job.attempt,
    at: new Date(now).toISOString(),
    name: d.name,
    message: d.message,
    ...(d.stack ? { stack: d.stack } : {}),
    ...(d.code ? { code: d.code } : {}),
  };
}

/**
 * Stands in for an attempt's error that Postgres refused to store (its text, say): it keeps none of
 * the original's text, which may be what was refused.
 */
export function unrecordableError(f: PendingFailure, why: string, nodeId: string, now: number): JobError {
  return {
    attempt: f.job.attempt,
    at: new Date(now).toISOString(),
    // A name is kept only when it is plainly one: anything else may be what Postgres refused.
    name: f.error && /^[A-Za-z_$][\w$]{0,99}$/.test(f.error.name) ? f.error.name : 'Error',
    message: `this attempt's outcome could not be stored as it was (${why}); its error is in the log of node ${nodeId}`,
  };
}
