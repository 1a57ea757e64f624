import { describeError, type Logger } from '@partita/core';
import { jsonForm, publishJobEvents, type JobEvent } from '@partita/protocol';
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
  let gathered: EngineEvent[] = [];
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    const batch = gathered;
    gathered = [];
    publish(batch);
  };
  const publish = (engineEvents: EngineEvent[]) => {
    if (!bus.connected) return; // dropped anyway; skip building them
    const at = new Date();
    const events = engineEvents.map((e) => {
      const { job } = e;
      const event: JobEvent = {
        id: job.id,
        partition: job.partition,
        queue: job.queue,
        type: job.type,
        kind: e.kind,
        attempt: job.attempt,
        at,
        node: nodeId,
      };
      try {
        if (e.kind === 'completed') event.result = jsonForm(e.result);
        if (e.kind === 'progress') event.progress = jsonForm(e.progress);
      } catch (err) {
        event.truncated = true; // not JSON-representable here; the stored form is in Postgres
        problem(event, err);
      }
      if (e.error !== undefined) event.error = e.error;
      if (e.retryAt) event.retryAt = e.retryAt;
      return event;
    });
    publishJobEvents(bus, events, (p) => problem(p.event, p.error));
  };
  return (event) => {
    gathered.push(event);
    if (!scheduled) {
      scheduled = true;
      setImmediate(flush);
    }
  };
}
