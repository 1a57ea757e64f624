import { TurnBuffer } from '@partita/actors';
import { describeError, type Logger } from '@partita/core';
import { jsonForm, publishJobEventBatch, JobEventBatches, type JobEvent, type JobEventBatchItem } from '@partita/protocol';
import type { Bus } from '@partita/nats';
import type { EngineEvent } from './engine/messages.js';

/**
 * The engine's `events` hook for a node: turns each job lifecycle event (started, progress,
 * completed, failed, retrying, cancelled) into a JobEvent on
 * `partita.<cluster>.event.<partition>.<queue>.<typeToken>.<kind>` (see @partita/client events).
 * Results and progress go out in their stored JSON form, so an event carries exactly what
 * Postgres returns later. Never throws; while the bus is away events are dropped (counted by the bus).
 */
export function jobEventPublisher(options: { bus: Bus; nodeId: string; logger: Logger }): (event: EngineEvent) => void {
  const { bus, nodeId, logger } = options;
  let lastProblemAt = 0;
  const problem = (event: JobEvent, error: unknown) => {
    const now = Date.now();
    if (now - lastProblemAt < 60_000) return;
    lastProblemAt = now;
    logger.warn(
      { jobId: event.id, kind: event.kind, err: describeError(error).message },
      'a job event could not be published (logged once a minute)',
    );
  };
  // Events are gathered until the event loop turns: the NATS client writes to its socket once per
  // microtask burst, so publishing from each engine message (a start here, a completion there)
  // cost one syscall per event; gathered, a turn's events of one subject go out as one message.
  // Two arrays taken in turn (TurnBuffer): the one published is not the one gathered into.
  const gathered = new TurnBuffer<EngineEvent>(GATHER_KEPT);
  const flush = () => gathered.take(publish);
  const publish = (engineEvents: readonly (EngineEvent | undefined)[], n: number) => {
    if (!bus.connected) return; // dropped anyway; skip building them
    const at = new Date();
    // Straight into batch form, one per subject (a handful a turn: started, completed, ...), each
    // event only its small item: at tens of thousands of jobs a second, a whole JobEvent per event
    // and a key string per event to group them by were most of what this path allocated.
    const batches = new JobEventBatches();
    for (let i = 0; i < n; i++) {
      const e = engineEvents[i]!;
      const { job, kind } = e;
      const batch = batches.batchFor(job.partition, job.queue, job.type, kind, at, nodeId);
      const item: JobEventBatchItem = { id: job.id, attempt: job.attempt };
      try {
        if (kind === 'completed') item.result = jsonForm(e.result);
        if (kind === 'progress') item.progress = jsonForm(e.progress);
      } catch (err) {
        item.truncated = true; // not JSON-representable here; the stored form is in Postgres
        problem(
          { id: job.id, partition: job.partition, queue: job.queue, type: job.type, kind, attempt: job.attempt, at, node: nodeId },
          err,
        );
      }
      if (e.error !== undefined) item.error = e.error;
      if (e.retryAt) item.retryAt = e.retryAt;
      batch.events.push(item);
    }
    for (const batch of batches.all) publishJobEventBatch(bus, batch, (p) => problem(p.event, p.error));
  };
  return (event) => {
    if (gathered.add(event)) setImmediate(flush);
  };
}

/** Slots the gathered events' array keeps for the next turn; beyond this it lets them go. */
const GATHER_KEPT = 8192;
