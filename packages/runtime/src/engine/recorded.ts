/**
 * What follows a written batch, job by job. Postgres may have recorded an outcome, refused its row
 * (a result or error it cannot store), or found the lease gone; a continuation may have kept
 * throwing. Recorded outcomes become events, counts and callbacks; refused ones are written again
 * in a form Postgres takes, or let go to lease expiry. No I/O: what is to be written again goes
 * into the outcome batch's `pending`.
 */
import { UnstorableResultError, describeError, type JobError, type Logger } from '@partita/core';
import type { ClaimedJob } from '@partita/postgres';
import type { ResolvedJobDefinition } from '../define.js';
import type { Hooks } from './hooks.js';
import type { EngineEvent } from './messages.js';
import { ContinuationThrew, attemptFailed, jobError, unrecordableError, type Accepted, type FlushBatch } from './outcomes.js';
import { FinishedCounts } from './stats.js';

export interface RecordedDeps {
  nodeId: string;
  definitions: ReadonlyMap<string, ResolvedJobDefinition>;
  log: Logger;
  hooks: Pick<Hooks, 'succeeded' | 'failed'>;
  emit: (event: EngineEvent) => void;
  /** Where outcomes to be written again go (the outcome batch's pending part). */
  pending: () => FlushBatch;
}

/** Sorts a written batch's jobs by what Postgres made of them; returns the outcomes counted per queue and state. */
export function applyRecorded(d: RecordedDeps, batch: FlushBatch, accepted: Accepted, now: number): FinishedCounts {
  const { log, emit } = d;
  const counts = new FinishedCounts();
  const { refused, offending } = accepted;
  for (const c of batch.completions) {
    if (offending.has(c.job.id)) {
      failContinuation(d, c.job, offending.get(c.job.id), 'failed', now);
      continue;
    }
    const why = refused.completions.get(c.job.id);
    if (why !== undefined) {
      // The worker's check passed but Postgres would not take it: the attempt fails like one whose
      // result the worker refused, and its batch-mates were recorded.
      log.error({ jobId: c.job.id, attempt: c.job.attempt, err: why }, 'result refused by Postgres; failing the attempt');
      d.pending().failures.push(attemptFailed(c.job, new UnstorableResultError(why, 'result'), d.definitions.get(c.job.type), now));
      continue;
    }
    if (!accepted.completed.has(c.job.id)) {
      log.warn(
        { jobId: c.job.id, attempt: c.job.attempt },
        'completion refused: this node no longer holds the job (lease lost); it will run again elsewhere',
      );
      continue;
    }
    emit({ kind: 'completed', job: c.job, result: c.result });
    counts.count(c.job.queue, 'completed');
    d.hooks.succeeded(c.job, c.result);
  }
  for (const f of batch.failures) {
    if (offending.has(f.job.id)) {
      failContinuation(d, f.job, offending.get(f.job.id), f.finalState ?? 'failed', now);
      continue;
    }
    const why = refused.failures.get(f.job.id);
    if (why !== undefined) {
      if (f.replacedError) {
        // Nothing this node can write will record it: let go, its lease runs out and rescue takes over.
        log.error(
          { jobId: f.job.id, attempt: f.job.attempt, err: why },
          'Postgres refused to record this failure even with a plain error; dropping it, the job is rescued when its lease expires',
        );
      } else {
        log.error(
          { jobId: f.job.id, attempt: f.job.attempt, err: why, error: f.error },
          'Postgres refused to record this failure; recording it with an error that says so instead',
        );
        d.pending().failures.push({ ...f, error: unrecordableError(f, why, d.nodeId, now), replacedError: true });
      }
      continue;
    }
    if (!accepted.failed.has(f.job.id)) {
      log.warn({ jobId: f.job.id, attempt: f.job.attempt }, 'failure record refused: this node no longer holds the job (lease lost)');
      continue;
    }
    counts.count(f.job.queue, f.finalState === 'cancelled' ? 'cancelled' : f.retryAt ? 'retrying' : 'failed');
    emit(
      f.finalState === 'cancelled'
        ? { kind: 'cancelled', job: f.job }
        : f.retryAt
          ? { kind: 'retrying', job: f.job, error: f.error, retryAt: f.retryAt }
          : { kind: 'failed', job: f.job, error: f.error },
    );
    d.hooks.failed(f);
  }
  for (const j of batch.releases) {
    const why = refused.releases.get(j.id);
    if (why !== undefined) {
      log.error(
        { jobId: j.id, attempt: j.attempt, err: why },
        'Postgres refused to hand this job back; dropping it, the job is rescued when its lease expires',
      );
      continue;
    }
    if (!accepted.cancelled.has(j.id)) {
      counts.count(j.queue, 'released');
      continue;
    }
    // It never ran here: no onCancel, as for a queued job's cancel.
    counts.count(j.queue, 'cancelled');
    emit({ kind: 'cancelled', job: j });
  }
  for (const [id, why] of refused.progress) log.warn({ jobId: id, err: why }, 'progress value refused by Postgres; dropped');
  return counts;
}

/**
 * A job whose continuation kept throwing: its attempt ends with that error, recorded without the
 * continuation, so its batch-mates (committed without it) and later batches are not held up.
 */
function failContinuation(d: RecordedDeps, job: ClaimedJob, err: unknown, finalState: 'failed' | 'cancelled', now: number): void {
  const cause = err instanceof ContinuationThrew ? err.cause : err;
  const message = err instanceof ContinuationThrew ? err.message : `Postgres refused to record its outcome: ${describeError(err).message}`;
  d.log.error(
    { jobId: job.id, attempt: job.attempt, err: message },
    'the continuation of this job keeps failing; failing the job without it',
  );
  const error: JobError = { ...jobError(job, cause, now), message };
  d.pending().failures.push({ job, error, cause, finalState, skipContinuation: true });
}
