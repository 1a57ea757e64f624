/**
 * The definition's callbacks (onSuccess, onError, onFailed, onCancel), run once an outcome is
 * recorded. They run after the attempt, so their context has no signal to abort and no progress to
 * record: only who the job is and a logger. A callback's throw or rejection is logged, never more.
 */
import { describeError, type Logger } from '@partita/core';
import type { ClaimedJob } from '@partita/postgres';
import type { HookContext, ResolvedJobDefinition } from '../define.js';
import type { PendingFailure } from './outcomes.js';

export type HookName = 'onSuccess' | 'onError' | 'onFailed' | 'onCancel';

/**
 * The callback a recorded failure calls: onCancel for a cancel of an attempt that started (one
 * cancelled in the prefetch never ran, as a queued one), onError while retries remain, onFailed
 * for the last attempt.
 */
export function failureHook(f: Pick<PendingFailure, 'finalState' | 'retryAt' | 'neverStarted'>): HookName | undefined {
  if (f.finalState === 'cancelled') return f.neverStarted ? undefined : 'onCancel';
  return f.retryAt ? 'onError' : 'onFailed';
}

export class Hooks {
  constructor(
    private readonly definitions: ReadonlyMap<string, ResolvedJobDefinition>,
    private readonly partition: string,
    private readonly log: Logger,
  ) {}

  /** Whether a job of `type` has outcome callbacks: recording its outcome tells user code something. */
  defined(type: string): boolean {
    const d = this.definitions.get(type);
    return d !== undefined && (d.onSuccess ?? d.onError ?? d.onFailed ?? d.onCancel) !== undefined;
  }

  /** The success of `job` was recorded. */
  succeeded(job: ClaimedJob, result: unknown): void {
    const def = this.definitions.get(job.type);
    if (def?.onSuccess) this.run(job, 'onSuccess', () => def.onSuccess!(result, job.payload, this.context(job)));
  }

  /** A failure (a retry, the last attempt or a cancel) of `job` was recorded. */
  failed(f: PendingFailure): void {
    const def = this.definitions.get(f.job.type);
    if (!def) return;
    const job = f.job;
    switch (failureHook(f)) {
      case 'onCancel':
        if (def.onCancel) this.run(job, 'onCancel', () => def.onCancel!(job.payload, this.context(job)));
        return;
      case 'onError':
        if (def.onError) this.run(job, 'onError', () => def.onError!(f.cause, job.payload, this.context(job)));
        return;
      case 'onFailed':
        if (def.onFailed) this.run(job, 'onFailed', () => def.onFailed!(f.cause, job.payload, this.context(job)));
        return;
    }
  }

  context(job: ClaimedJob): HookContext {
    return { id: job.id, partition: this.partition, queue: job.queue, attempt: job.attempt, logger: this.log.child({ jobId: job.id }) };
  }

  private run(job: ClaimedJob, name: HookName, fn: () => void | Promise<void>): void {
    try {
      Promise.resolve(fn()).catch((err) => this.log.error({ jobId: job.id, err: describeError(err) }, `${name} callback failed`));
    } catch (err) {
      this.log.error({ jobId: job.id, err: describeError(err) }, `${name} callback failed`);
    }
  }
}
