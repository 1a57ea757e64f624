import { MicrotaskBatch, type ActorContext, type ActorRef, type Behavior, type ChildSpec } from '@partita/actors';
import {
  TimeoutError,
  UnstorableResultError,
  describeError,
  isPromiseLike,
  startPerformSpan,
  toJsonStrict,
  type Logger,
  type PerformSpan,
} from '@partita/core';
import type { ClaimedJob } from '@partita/postgres';
import type { JobContext, ResolvedJobDefinition } from './define.js';
import type { EngineMsg, WorkerDone, WorkerOutcome } from './engine/messages.js';

export type WorkerMsg = { t: 'abort'; reason: unknown };

export type { WorkerOutcome };

export interface WorkerOptions {
  job: ClaimedJob;
  definition: ResolvedJobDefinition;
  engine: ActorRef<EngineMsg, unknown>;
  logger: Logger;
  /** 0: no limit. */
  timeoutMs: number;
}

/**
 * One actor per running job. It runs perform, turns a timeout or an abort into the attempt's
 * outcome, reports that to its engine and stops. perform's own errors are job failures, never a
 * crash of the actor; the mailbox only carries abort requests.
 */
export function workerBehavior(options: WorkerOptions): Behavior<WorkerMsg, void> {
  return new Attempt(options.job, options.definition, options.engine, options.logger, options.timeoutMs);
}

/** A worker's child spec, which carries its job: a failed start is reported for that job. */
export type WorkerChild = ChildSpec<WorkerMsg, void> & { start: () => Behavior<WorkerMsg, void>; readonly job: ClaimedJob };

/**
 * The WorkerSupervisor's child spec for one job (temporary: a job's run is never restarted) that is
 * also the worker's behavior: `start()` returns itself, so starting a worker makes no spec object,
 * start closure or options object of its own.
 */
export function workerChild(
  job: ClaimedJob,
  definition: ResolvedJobDefinition,
  engine: ActorRef<EngineMsg, unknown>,
  logger: Logger,
  timeoutMs: number,
  shutdownMs: number,
): WorkerChild {
  const attempt = new Attempt(job, definition, engine, logger, timeoutMs);
  attempt.shutdownMs = shutdownMs;
  return attempt;
}

// Classes rather than closures: a node starts one of these per job, tens of thousands a second,
// and an object whose methods live on its prototype is one small allocation instead of a dozen.

/**
 * Attempts whose perform is due: one microtask for every worker started in a burst. run() catches
 * perform's own errors; anything else fails that attempt only, not the others due.
 */
const due = new MicrotaskBatch<Attempt>(
  (attempt) => attempt.run(),
  (attempt, error) => attempt.fail(error),
);

/** One run of a job: the worker actor's behavior (and, started by an engine, its child spec). */
class Attempt implements Behavior<WorkerMsg, void> {
  readonly ctx: RunContext;
  shutdownMs: number | undefined = undefined;
  finished = false;
  aborted = false;
  abortReason: unknown = undefined;
  /** Created only when perform reads ctx.signal: most jobs never do, and one costs at this rate. */
  controller: AbortController | undefined = undefined;
  private timer: NodeJS.Timeout | undefined = undefined;
  private actx: ActorContext<WorkerMsg, void> | undefined = undefined;
  /** The attempt's OpenTelemetry span; undefined unless tracing is on. */
  private span: PerformSpan | undefined = undefined;

  constructor(
    readonly job: ClaimedJob,
    readonly definition: ResolvedJobDefinition,
    readonly engine: ActorRef<EngineMsg, unknown>,
    readonly logger: Logger,
    readonly timeoutMs: number,
  ) {
    this.ctx = new RunContext(this);
  }

  // ChildSpec: the child's id is the job's; restart is on the prototype (below).
  get id(): string {
    return this.job.id;
  }
  declare readonly restart: 'temporary';
  start(): this {
    return this;
  }

  init(actx: ActorContext<WorkerMsg, void>): void {
    this.actx = actx;
    const { timeoutMs, job } = this;
    if (timeoutMs > 0) {
      this.timer = setTimeout(() => this.abort(new TimeoutError(`job ${job.id} (${job.type})`, timeoutMs)), timeoutMs);
    }
    // perform runs on a later microtask, never inside init.
    due.add(this);
  }

  handle(msg: WorkerMsg): void {
    if (msg.t === 'abort') this.abort(msg.reason);
  }

  terminate(): void {
    // Stopped from outside (engine crash, forced shutdown): make sure perform hears about it.
    if (!this.finished) this.abort(new Error('worker stopped'));
  }

  run(): void {
    if (this.finished) return;
    let returned: unknown;
    const { definition, job } = this;
    this.span = startPerformSpan(job);
    try {
      returned = this.span
        ? this.span.run(definition.perform, definition, job.payload, this.ctx)
        : definition.perform(job.payload, this.ctx);
    } catch (error) {
      this.settle(false, undefined, undefined, error, undefined);
      return;
    }
    if (isPromiseLike(returned)) {
      returned.then(
        (result) => this.succeed(result),
        (error: unknown) => this.settle(false, undefined, undefined, error, undefined),
      );
    } else {
      this.succeed(returned);
    }
  }

  /**
   * A result the store cannot hold fails this attempt here, naming where in the value the problem
   * is: found only when the completion batch is written, it would fail the batch and every job in
   * it. The JSON text goes on to the store, so the result is serialised once.
   */
  private succeed(result: unknown): void {
    if (this.finished) return;
    if (result === undefined || result === null) {
      this.settle(true, result, undefined, undefined, undefined);
      return;
    }
    let json: string;
    try {
      json = toJsonStrict(result, 'result', undefined, UnstorableResultError).json;
    } catch (error) {
      this.settle(false, undefined, undefined, error, undefined);
      return;
    }
    this.settle(true, result, json, undefined, undefined);
  }

  fail(error: unknown): void {
    this.settle(false, undefined, undefined, error, undefined);
  }

  abort(reason: unknown): void {
    if (this.aborted) return;
    this.aborted = true;
    this.abortReason = reason;
    this.controller?.abort(reason);
    // A perform that ignores its signal still loses: the attempt ends at the abort.
    this.settle(false, undefined, undefined, reason, reason);
  }

  /**
   * The attempt's outcome is the first of: perform settling, the abort. Later ones are ignored.
   * Its message to the engine is the outcome itself, every field set (one shape for all of them).
   */
  private settle(ok: boolean, result: unknown, json: string | undefined, error: unknown, aborted: unknown): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer) clearTimeout(this.timer);
    if (!ok && aborted === undefined) {
      this.ctx.logger.debug({ err: describeError(error).message }, 'attempt failed');
    }
    const done: WorkerDone = { t: 'done', job: this.job, ok, result, json, error, aborted };
    this.span?.end(done);
    this.engine.cast(done);
    // ctx.stop rather than self.stop: nobody waits for this stop, so no promise is made for it.
    this.actx?.stop('normal');
  }
}

/**
 * What perform sees of its run. Its id, partition, queue and attempt are read through to the job,
 * not copied: one is made per job, and the four copies were a third of it.
 */
class RunContext implements JobContext {
  private childLogger: Logger | undefined = undefined;

  constructor(private readonly run: Attempt) {}

  get id(): string {
    return this.run.job.id;
  }
  get partition(): string {
    return this.run.job.partition;
  }
  get queue(): string {
    return this.run.job.queue;
  }
  get attempt(): number {
    return this.run.job.attempt;
  }

  get signal(): AbortSignal {
    const run = this.run;
    if (!run.controller) {
      run.controller = new AbortController();
      if (run.aborted) run.controller.abort(run.abortReason);
    }
    return run.controller.signal;
  }
  get logger(): Logger {
    const { job, logger } = this.run;
    return (this.childLogger ??= logger.child({ jobId: job.id, type: job.type, attempt: job.attempt }));
  }
  progress(value: unknown): void {
    const run = this.run;
    if (run.finished) return;
    let json: string;
    try {
      json = toJsonStrict(value, 'progress', undefined, UnstorableResultError).json;
    } catch (error) {
      // Progress is advisory: a bad value is dropped, the job goes on.
      this.logger.warn({ err: describeError(error).message }, 'progress value dropped: it cannot be stored as JSON');
      return;
    }
    run.engine.cast({ t: 'progress', id: run.job.id, value, json });
  }
}

Object.defineProperty(Attempt.prototype, 'restart', { value: 'temporary', enumerable: true });
