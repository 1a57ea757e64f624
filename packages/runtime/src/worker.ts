import type { ActorRef, Behavior } from '@partita/actors';
import { TimeoutError, describeError, type Logger } from '@partita/core';
import type { ClaimedJob } from '@partita/postgres';
import type { JobContext, ResolvedJobDefinition } from './define.js';
import type { EngineMsg } from './engine.js';

export type WorkerMsg = { t: 'abort'; reason: unknown };

export interface WorkerOutcome {
  ok: boolean;
  result?: unknown;
  error?: unknown;
  /** The abort reason, when the run ended because its signal fired. */
  aborted: unknown;
}

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
  const { job, definition, engine, timeoutMs } = options;
  // Most jobs never look at their signal and are never aborted: the AbortController (costly to
  // make at tens of thousands of jobs a second) is created only when perform reads ctx.signal.
  let controller: AbortController | undefined;
  let abortReason: unknown;
  let aborted = false;
  let rejectRun: ((reason: unknown) => void) | undefined;
  let logger: Logger | undefined;
  let finished = false;

  const abort = (reason: unknown) => {
    if (aborted) return;
    aborted = true;
    abortReason = reason;
    controller?.abort(reason);
    rejectRun?.(reason);
  };

  const ctx: JobContext = {
    id: job.id,
    partition: job.partition,
    queue: job.queue,
    attempt: job.attempt,
    get signal() {
      if (!controller) {
        controller = new AbortController();
        if (aborted) controller.abort(abortReason);
      }
      return controller.signal;
    },
    get logger() {
      logger ??= options.logger.child({ jobId: job.id, type: job.type, attempt: job.attempt });
      return logger;
    },
    progress(value: unknown) {
      if (!finished) engine.cast({ t: 'progress', id: job.id, value });
    },
  };

  async function run(): Promise<WorkerOutcome> {
    let timer: NodeJS.Timeout | undefined;
    const abortedRun = new Promise<never>((_, reject) => {
      if (aborted) reject(abortReason);
      else rejectRun = reject;
    });
    abortedRun.catch(() => undefined);
    if (timeoutMs > 0) {
      timer = setTimeout(() => abort(new TimeoutError(`job ${job.id} (${job.type})`, timeoutMs)), timeoutMs);
    }
    try {
      // A perform that ignores its signal still loses the race: the attempt ends at the abort.
      const result = await Promise.race([Promise.resolve().then(() => definition.perform(job.payload, ctx)), abortedRun]);
      return { ok: true, result, aborted: undefined };
    } catch (error) {
      return { ok: false, error, aborted: aborted ? abortReason : undefined };
    } finally {
      if (timer) clearTimeout(timer);
    }
  }

  return {
    init(actx) {
      void run().then((outcome) => {
        finished = true;
        if (!outcome.ok && outcome.aborted === undefined) {
          ctx.logger.debug({ err: describeError(outcome.error).message }, 'attempt failed');
        }
        engine.cast({ t: 'done', job, outcome });
        void actx.self.stop('normal');
      });
    },
    handle(msg) {
      if (msg.t === 'abort') abort(msg.reason);
    },
    terminate() {
      // Stopped from outside (engine crash, forced shutdown): make sure perform hears about it.
      if (!finished) abort(new Error('worker stopped'));
    },
  };
}
