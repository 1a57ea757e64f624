/**
 * The engine: one actor per partition per node. It claims due jobs in batches sized to free
 * capacity plus a prefetch, starts a Worker per job, and group-commits outcomes. Every Postgres call
 * runs off the mailbox (its result comes back as a message), so the engine never blocks on I/O.
 * This file routes messages and wires the parts. The parts are pure, fed the time, and tested on
 * their own (test/engine-*.test.ts):
 *   window.ts    what to claim and when (claim window, prefetch sizing, claim backoff)
 *   gate.ts      what stops claims: pauses, throttles, leases not being renewed
 *   outcomes.ts  the outcome batch (pending / in flight / requeued on a failed write)
 *   recorded.ts  what follows a written batch: events, counts, callbacks, rewrites of refused rows
 *   adverts.ts   idle adverts and hand-offs
 *   hooks.ts     onSuccess / onError / onFailed / onCancel
 *   keys.ts      execution keys derived for jobs stored without one
 *   stats.ts     EngineStats and outcome counts
 * The I/O is in claimer.ts (the claim) and writer.ts (the batch write); the types others use of the
 * engine are in messages.ts and types.ts.
 *
 * How a job moves through the engine:
 *
 *   claim ('claimed') ─┐                     ┌─► 'done' ──► outcomes.pending ──flush──► inflight (≤ 2)
 *   hand-off ──────────┴─► buffer ─dispatch─► running (a Worker)                            │
 *                            │                   │ abort: cancel / lease lost / shutdown     │
 *                            └─ cancel, pause, drain: straight to outcomes.pending  'flushed'┘
 *                                                          events, hooks, counts ◄──────────┘
 *
 * A job is `tracked` from claim or hand-off until its outcome is handed to the outcome batch;
 * from then until recorded its id is still among the leases the lease keeper renews ('held').
 */
import type { ActorContext, ActorRef, Behavior, SupervisorRef } from '@partita/actors';
import { JobCancelledError, describeError } from '@partita/core';
import type { ClaimedJob, NewJob, RateLimitOutcome } from '@partita/postgres';
import type { ControlState } from '../global/global.js';
import { workerChild, type WorkerChild, type WorkerMsg } from '../worker.js';
import { Adverts } from './adverts.js';
import { Claimer } from './claimer.js';
import { ClaimGate } from './gate.js';
import { Hooks } from './hooks.js';
import { deriveExecutionKey } from './keys.js';
import type { EngineEvent, EngineMsg, WorkerOutcome } from './messages.js';
import { OutcomeBatch, claimableQueues, recordAttempt, type AbortCause, type Accepted, type FlushBatch } from './outcomes.js';
import { applyRecorded } from './recorded.js';
import { engineStats } from './stats.js';
import type { EngineOptions } from './types.js';
import { ClaimWindow, foundIn, type QueueState } from './window.js';
import { OutcomeWriter, continuationsByType } from './writer.js';

export type { EngineOptions, EngineSettings } from './types.js';
export type { EngineControl, EngineEvent, EngineEventKind, EngineMsg, EngineStats, RateLimitStats } from './messages.js';

/** The worker supervisor is (re)starting: try to start the job again after this. */
const WORKERS_RETRY_MS = 10;
/** A worker gets this long to stop when its supervisor shuts down. */
const WORKER_SHUTDOWN_MS = 1000;
/** While draining, the engine polls this many times over the grace period, within these bounds (ms). */
const DRAIN_POLLS = 10;
const DRAIN_POLL_MIN_MS = 5;
const DRAIN_POLL_MAX_MS = 100;

interface Tracked {
  job: ClaimedJob;
  /** Set once a worker runs it; absent while it waits in the prefetch buffer. */
  started: boolean;
  abort?: AbortCause;
}

export function engineBehavior(options: EngineOptions): Behavior<EngineMsg, unknown> {
  const { store, settings, partition, nodeId, definitions } = options;
  const log = options.logger;
  const window = new ClaimWindow(options.queues, settings, Date.now());
  const queues = window.queues;
  const adverts = new Adverts(queues.keys());
  const gate = new ClaimGate(settings.heartbeatMs, Date.now());
  /** Jobs claimed or handed off, from then until their outcome goes to the outcome batch. */
  const tracked = new Map<string, Tracked>();
  let self: ActorRef<EngineMsg, unknown>;
  let ctxRef: ActorContext<EngineMsg, unknown>;
  let workers: SupervisorRef | undefined;
  let processed = 0;
  let draining: { done: () => void; deadline: number; forced: boolean } | undefined;
  /** node.stopQueues calls waiting for their queues' running jobs, and the ids whose outcomes must be recorded first. */
  const queueStops: { queues: Set<string>; deadline: number; forced: boolean; ids: Set<string>; done: () => void }[] = [];
  /** The poll booked for when a throttled engine may claim again. */
  let throttleTimer: (() => void) | undefined;
  /**
   * A claim put off until the outcome writes of finished jobs with a continuation are done: the
   * continuation may hand the queue its follow-up (enqueueHere), so a queue that looks idle when such
   * a job ends is busy again once its outcome commits. Claimed at once, an idle node sent a claim
   * that found nothing after every workflow step, ahead of the step's own transition.
   */
  let claimAfterWrite = false;
  /** The poll booked for when a rate-limited queue's bucket has a token again. */
  let rateTimer: { at: number; cancel: () => void } | undefined;

  const emit = (event: EngineEvent) => {
    if (!options.events) return;
    try {
      options.events(event);
    } catch (err) {
      log.warn({ err: describeError(err).message }, 'job event hook threw');
    }
  };
  const continuations = continuationsByType(definitions, options.continuations);
  // Two writes side by side unless a continuation runs here: a continuation's transaction may touch
  // what another batch's touches (a workflow's rows), and those are written one at a time.
  const outcomes = new OutcomeBatch(settings.flushBatch, 2, continuations.empty);
  const pending = () => outcomes.pending;
  const recorded = { nodeId, definitions, log, hooks: new Hooks(definitions, partition, log), emit, pending };
  // The claim and the batch write run off the mailbox: their results come back as messages.
  const io = { store, log, ...(options.metrics ? { metrics: options.metrics } : {}), reply: (msg: EngineMsg) => self.cast(msg) };
  /**
   * The claim takes only jobs of the types defined here, and marked jobs only for the continuations
   * run here; others wait for a node that defines (runs) them.
   */
  const claimer = new Claimer({
    ...io,
    window,
    request: { nodeId, partition, leaseMs: settings.leaseMs, types: [...definitions.keys()], continuations: continuations.marks },
  });
  const writer = new OutcomeWriter({
    ...io,
    nodeId,
    partition,
    continuationsByType: continuations,
    enqueued: (queues) => options.claimable?.(queues),
    hooked: (type) => recorded.hooks.defined(type),
    here: {
      leaseMs: settings.leaseMs,
      reserve: (job) => reservesHere(job),
      took: (jobs, reserved) => self.cast({ t: 'here', jobs, reserved }),
      dropped: (reserved) => self.cast({ t: 'here', jobs: [], reserved }),
      reserveNext: (queue) => reservesNext(queue),
      takes: { types: [...definitions.keys()], continuations: continuations.marks },
    },
  });
  // Made once: the advert path runs at every claim.
  const takesHandoffsNamed = (name: string, now: number) => takesHandoffs(name, queues.get(name)!, now);

  function leasesRenewing(now: number): boolean {
    const leases = gate.leases(now);
    if (leases === 'went-stale')
      log.warn({ sinceMs: gate.sinceRenewal(now) }, 'leases have not been renewed lately; claiming nothing until they are');
    return leases === 'renewing';
  }

  // ── Claims ──────────────────────────────────────────────────────────────────────────────────

  function maybeClaim(force = false): void {
    if (draining || gate.claimsStopped) return;
    const now = Date.now();
    const { throttleMs } = gate;
    if (window.blocked(now, throttleMs > 0) || !leasesRenewing(now)) return;
    if (throttleMs > 0) {
      const wait = window.lastClaimAt + throttleMs - now;
      if (wait > 0) {
        throttleTimer ??= ctxRef.sendAfter(wait, { t: 'poll' });
        return;
      }
    }
    const asked = window.plan(now, gate.paused, force);
    if (!asked) return;
    window.started(asked, now);
    claimer.claim(asked);
  }

  function onRateLimited(limited: Map<string, RateLimitOutcome>): void {
    const now = Date.now();
    const at = window.rateLimited(limited, now);
    for (const [queue, outcome] of limited) {
      const limit = queues.get(queue)?.rateLimit;
      if (limit)
        options.metrics?.rateLimit(partition, queue, limit.key === undefined ? limit.tokensLeft : null, outcome.held, outcome.limitedKeys);
    }
    if (at === undefined || (rateTimer && rateTimer.at <= at)) return;
    rateTimer?.cancel();
    rateTimer = { at, cancel: ctxRef.sendAfter(at - now, { t: 'rateReady' }) };
  }

  function onClaimed(jobs: ClaimedJob[], asked: Map<string, number>, found: Map<string, number>): void {
    const got = new Map<string, number>();
    const gotKeyed = new Set<string>();
    const p = pending();
    for (const job of jobs) {
      got.set(job.queue, (got.get(job.queue) ?? 0) + 1);
      if (job.executionKey) gotKeyed.add(job.queue);
      const q = queues.get(job.queue);
      // A queue this engine no longer serves, or a stop began while claiming: hand it back.
      if (!q || draining || gate.held.has(job.queue)) {
        p.releases.push(job);
        noteStopped(job);
      }
      // Asked to cancel while it ran elsewhere, then rescued or handed back: it does not run again.
      else if (job.cancelRequested) p.failures.push({ job, error: null, cause: new JobCancelledError(job.id), finalState: 'cancelled' });
      else if (takesDerivedKey(job)) p.releases.push(job);
      else {
        tracked.set(job.id, { job, started: false });
        enterBuffer(q, job);
        continue;
      }
      tracked.delete(job.id);
    }
    if (p.releases.length || p.failures.length) scheduleFlush();
    window.claimed(asked, got, gotKeyed, found);
    dispatch();
    if (options.idle && !draining && gate.throttleMs === 0) {
      const now = Date.now();
      let idle: { queue: string; free: number }[] | undefined;
      for (const name of asked.keys()) {
        const q = queues.get(name);
        if (!q || q.rateLimit || foundIn(name, found, got) > 0) continue;
        const free = ClaimWindow.free(q);
        if (adverts.offer(name, free, now)) (idle ??= []).push({ queue: name, free });
      }
      if (idle) options.idle(idle);
    }
    retractAdverts();
    if (window.backlogLikely) maybeClaim();
  }

  function onClaimFailed(error: unknown, asked: Map<string, number>): void {
    const backoffMs = window.failed(asked, Date.now());
    log.warn({ err: describeError(error).message, retryInMs: backoffMs }, 'claim failed; backing off');
    ctxRef.sendAfter(backoffMs, { t: 'poll' });
  }

  // ── Hand-offs and adverts ───────────────────────────────────────────────────────────────────

  /**
   * A job handed straight to this engine: it runs here if the queue is served, not paused or
   * throttled, and has a free slot; otherwise it goes back to the queue for a claim to take.
   */
  function onHandoff(job: ClaimedJob): void {
    if (tracked.has(job.id) || !adverts.firstHandoff(job.id, job.queue)) return;
    const q = queues.get(job.queue);
    // A job with an execution key waits for its turn, which the claim decides. A job of a type
    // this node does not define, or marked for a continuation it does not run (its outcome would be
    // written without it), goes back for a node that does.
    const keyed = takesDerivedKey(job);
    const runnable =
      !keyed &&
      q !== undefined &&
      definitions.has(job.type) &&
      (job.continuation == null || continuations.marked(job.continuation) !== undefined) &&
      takesHandoffs(job.queue, q, Date.now());
    options.metrics?.handedOff(partition, job.queue, runnable);
    if (!runnable) {
      pending().releases.push(job);
      scheduleFlush();
      return;
    }
    tracked.set(job.id, { job, started: false });
    enterBuffer(q, job);
    dispatch();
    retractAdverts();
  }

  /**
   * Whether a job a continuation of this engine enqueues can be stored as this node's running attempt
   * and started here once its transaction commits (tx.enqueueHere): as for a hand-off, and the job must
   * not need a claim to order it (a key, a later start) nor go to another node (a type or a
   * continuation not run here). True takes a place in the queue's window until the commit or rollback.
   * Called from the writer's transaction, outside the mailbox: it reads state and takes a counter only.
   */
  function reservesHere(job: NewJob): boolean {
    const queue = job.queue ?? 'default';
    if (job.queueKey !== undefined || job.executionKey !== undefined) return false;
    if (job.runAt !== undefined || (job.delayMs !== undefined && job.delayMs > 0)) return false;
    const def = definitions.get(job.type);
    if (!def || def.executionKey !== undefined) return false;
    if (job.continuation != null && !continuations.marked(job.continuation)) return false;
    const now = Date.now();
    if (draining || !gate.controlKnown || gate.throttleMs !== 0 || gate.paused.has(queue) || !leasesRenewing(now)) return false;
    return window.reserveHere(queue, now);
  }

  /**
   * Whether the next job of a key this engine just completed, if of `queue`, may become this node's
   * running attempt as the key is settled (no claim): as for a hand-off, with a place in the window.
   * Called from the writer, outside the mailbox: it reads state and takes a counter only.
   */
  function reservesNext(queue: string): boolean {
    const now = Date.now();
    if (draining || !gate.controlKnown || gate.throttleMs !== 0 || gate.paused.has(queue) || !leasesRenewing(now)) return false;
    return window.reserveHere(queue, now);
  }

  /** Jobs a committed continuation stored as this node's running attempts: they wait for a slot like claimed ones. */
  function onHere(jobs: ClaimedJob[], reserved: string[]): void {
    for (const queue of reserved) window.unreserve(queue);
    if (jobs.length === 0) {
      // A rolled-back transaction gave its places back: a claim may take them.
      return maybeClaim();
    }
    const p = pending();
    for (const job of jobs) {
      const q = queues.get(job.queue);
      // A stop or a pause began while the transaction ran: hand it back to the queue for a claim.
      if (!q || draining || gate.paused.has(job.queue)) {
        p.releases.push(job);
        continue;
      }
      tracked.set(job.id, { job, started: false });
      enterBuffer(q, job);
    }
    if (p.releases.length) scheduleFlush();
    dispatch();
  }

  /** Takes back adverts of queues that can no longer take a hand-off, so clients stop handing this node jobs it would only hand back. */
  function retractAdverts(): void {
    if (!options.idle) return;
    const retracted = adverts.retract(Date.now(), takesHandoffsNamed);
    if (retracted) options.idle(retracted);
  }

  /** Whether a job handed to this engine for the queue can run here now: a free slot, nothing stopping it. */
  function takesHandoffs(name: string, q: QueueState, now: number): boolean {
    // A hand-off would start a job without a token: rate-limited queues start jobs through claims only.
    return (
      !draining &&
      gate.controlKnown &&
      gate.throttleMs === 0 &&
      !q.rateLimit &&
      !gate.paused.has(name) &&
      q.running + q.buffer.length + q.reserved < q.concurrency &&
      leasesRenewing(now)
    );
  }

  /**
   * A job stored without an execution key, enqueued by a client without the definitions (the CLI,
   * say), takes the key its definition derives: true when it did. It must then go back to the
   * queue carrying the key, so Postgres holds that key for it like any other.
   */
  function takesDerivedKey(job: ClaimedJob): boolean {
    if (job.executionKey) return false;
    const def = definitions.get(job.type);
    if (!def?.executionKey) return false;
    const derived = deriveExecutionKey(job, def);
    if (derived.error !== undefined) {
      log.warn(
        { jobId: job.id, err: describeError(derived.error).message },
        'the execution key of this job cannot be derived from its payload; running the job without a key',
      );
    }
    if (derived.key === undefined) return false;
    job.executionKey = derived.key;
    return true;
  }

  // ── Running jobs ────────────────────────────────────────────────────────────────────────────

  /**
   * Puts a job in its queue's buffer in claim order: behind every job of its priority or a more
   * urgent one (a lower number), ahead of less urgent ones. A claim's jobs arrive in that order; a
   * job handed off or enqueued into this node's hands arrives alone, and pushed at the end it would
   * start before a more urgent job of its queue that a claim brought in after it.
   */
  function enterBuffer(q: QueueState, job: ClaimedJob): void {
    const buffer = q.buffer;
    if (buffer.length === 0 || buffer[buffer.length - 1]!.priority <= job.priority) {
      buffer.push(job);
      return;
    }
    let lo = 0;
    let hi = buffer.length;
    while (lo < hi) {
      const mid = (lo + hi) >>> 1;
      if (buffer[mid]!.priority <= job.priority) lo = mid + 1;
      else hi = mid;
    }
    buffer.splice(lo, 0, job);
  }

  function dispatch(): void {
    for (const q of window.list) {
      while (q.running < q.concurrency && q.buffer.length > 0 && !draining) {
        if (!start(q, q.buffer.shift()!)) return;
      }
    }
  }

  /** Starts a worker for the job; false when workers cannot start right now (job put back). */
  function start(q: QueueState, job: ClaimedJob): boolean {
    const entry = tracked.get(job.id);
    if (!entry) return true;
    const def = definitions.get(job.type);
    if (!def) {
      // Claims and hand-offs bring only defined types; should one slip through, it goes back to
      // the queue for a node that defines it rather than failing for good.
      tracked.delete(job.id);
      pending().releases.push(job);
      log.warn({ jobId: job.id, type: job.type }, 'no job definition for this type on this node; handing the job back');
      scheduleFlush();
      return true;
    }
    if (!workers?.alive) workers = ctxRef.system.whereisSupervisor(options.workersName);
    if (!workers) {
      // The worker supervisor is (re)starting: put the job back in front and try again shortly.
      q.buffer.unshift(job);
      ctxRef.sendAfter(WORKERS_RETRY_MS, { t: 'poll' });
      return false;
    }
    entry.started = true;
    q.running++;
    emit({ kind: 'started', job });
    const timeoutMs = job.timeoutMs ?? def.timeoutMs ?? 0;
    // Not awaited (no promise per job): a start that fails comes back as the job's outcome.
    workers.launchChild(workerChild(job, def, self, log, timeoutMs, WORKER_SHUTDOWN_MS), workerStartFailed);
    return true;
  }

  function workerStartFailed(err: unknown, spec: WorkerChild): void {
    self.cast({ t: 'done', job: spec.job, ok: false, result: undefined, json: undefined, error: err, aborted: undefined });
  }

  function onDone(job: ClaimedJob, outcome: WorkerOutcome): void {
    const entry = tracked.get(job.id);
    if (!entry) return; // already written off (lease lost)
    tracked.delete(job.id);
    const q = queues.get(job.queue);
    if (q && entry.started) {
      q.running--;
      q.finished++;
    }
    processed++;
    noteStopped(job);
    if (!recordAttempt(pending(), job, entry.abort, outcome, definitions.get(job.type), Date.now())) {
      log.warn({ jobId: job.id }, 'dropped the outcome of a job whose lease was lost; another node owns it now');
    }
    scheduleFlush();
    dispatch();
    if (draining) checkDrained();
    else if (!window.backlogLikely && continues(job)) claimAfterWrite = true;
    else maybeClaim();
    checkQueueStops();
  }

  /** Its final outcome goes through a continuation run here (which may hand this engine a follow-up). */
  function continues(job: ClaimedJob): boolean {
    return (job.continuation != null && continuations.marked(job.continuation) !== undefined) || continuations.of(job.type) !== undefined;
  }

  function abortJob(id: string, why: AbortCause): void {
    const entry = tracked.get(id);
    if (!entry || entry.abort) return;
    entry.abort = why;
    if (!entry.started) {
      const q = queues.get(entry.job.queue);
      if (q) q.buffer = q.buffer.filter((j) => j.id !== id);
      tracked.delete(id);
      if (why === 'cancel')
        pending().failures.push({
          job: entry.job,
          error: null,
          cause: new JobCancelledError(id),
          finalState: 'cancelled',
          neverStarted: true,
        });
      else if (why === 'shutdown') pending().releases.push(entry.job);
      scheduleFlush();
      return;
    }
    const reason = why === 'cancel' ? new JobCancelledError(id) : new Error(why === 'lease' ? 'lease lost' : 'node shutting down');
    const ref = workers?.child(id) as ActorRef<WorkerMsg, unknown> | undefined;
    ref?.cast({ t: 'abort', reason });
  }

  /** Prefetched jobs go back to the queue (a pause, a drain): only what already runs finishes. */
  function handBackBuffer(q: QueueState): void {
    for (const job of q.buffer) {
      tracked.delete(job.id);
      pending().releases.push(job);
      noteStopped(job);
    }
    q.buffer = [];
  }

  // ── Recording outcomes ──────────────────────────────────────────────────────────────────────

  function scheduleFlush(): void {
    const due = outcomes.due(quiet());
    if (due === 'now') flush();
    else if (due === 'later') ctxRef.sendAfter(settings.flushMs, { t: 'flush' });
  }

  /** No job runs or waits for a slot here: no outcome is about to join the batch. */
  function quiet(): boolean {
    for (const q of window.list) if (q.running > 0 || q.buffer.length > 0) return false;
    return true;
  }

  function flush(): void {
    const batch = outcomes.take();
    if (batch) writer.write(batch);
  }

  function onFlushFailed(batch: FlushBatch, error: unknown, sent = batch): void {
    const retryInMs = outcomes.requeue(batch, sent);
    log.warn(
      { err: describeError(error).message, retryInMs: outcomes.backoffMs, waiting: outcomes.size },
      'recording job outcomes failed; will retry',
    );
    if (retryInMs !== undefined) ctxRef.sendAfter(retryInMs, { t: 'flush' });
  }

  function onFlushed(sent: FlushBatch, batch: FlushBatch, accepted: Accepted, unwritten?: { batch: FlushBatch; error: unknown }): void {
    if (unwritten) onFlushFailed(unwritten.batch, unwritten.error, sent);
    else outcomes.settled(sent);
    applyRecorded(recorded, batch, accepted, Date.now()).report(partition, options.metrics);
    // A part that failed waits for its backoff, already scheduled, and so does what queued behind it.
    if (outcomes.size > 0 && !unwritten) scheduleFlush();
    // Completions without a continuation report the queues their keys' next jobs were queued in ('keysSettled').
    const freed = claimableQueues(batch, !continuations.empty);
    if (freed.length) options.claimable?.(freed);
    checkQueueStops();
    // Still put off while outcomes of such jobs wait for their write or are being written (a
    // follow-up ran and ended while this one was written): the claim comes after the last of them.
    const putOff = claimAfterWrite && ![outcomes.pending, ...outcomes.inflight].some((b) => b.completions.some((c) => continues(c.job)));
    if (putOff) claimAfterWrite = false;
    if (draining) {
      if (!unwritten) checkDrained();
    } else if (freed.length) {
      // Handed-back jobs, and jobs the claim skipped for keys that are free in Postgres now.
      window.backlogLikely = true;
      maybeClaim();
    } else if (putOff) maybeClaim();
  }

  // ── Stopping and controls ───────────────────────────────────────────────────────────────────

  function checkDrained(): void {
    if (!draining) return;
    const running = [...queues.values()].reduce((n, q) => n + q.running, 0);
    if (running > 0) {
      if (!draining.forced && Date.now() >= draining.deadline) {
        draining.forced = true;
        log.warn({ running }, 'grace period over; aborting running jobs and handing them back');
        for (const [id, entry] of tracked) if (entry.started) abortJob(id, 'shutdown');
      }
      return;
    }
    if (window.inFlight > 0 || !outcomes.empty) {
      if (outcomes.size > 0) flush();
      return;
    }
    const done = draining.done;
    draining.done = () => undefined;
    done();
  }

  function onDrain(graceMs: number, done: () => void): void {
    if (draining) return;
    draining = { done, deadline: Date.now() + graceMs, forced: false };
    for (const [, q] of queues) handBackBuffer(q);
    ctxRef.sendEvery(Math.max(DRAIN_POLL_MIN_MS, Math.min(DRAIN_POLL_MAX_MS, graceMs / DRAIN_POLLS)), { t: 'poll' });
    retractAdverts();
    checkDrained();
  }

  /** A job of a queue being stopped ended or went back: its outcome must be recorded before the stop is done. */
  function noteStopped(job: ClaimedJob): void {
    for (const stop of queueStops) if (stop.queues.has(job.queue)) stop.ids.add(job.id);
  }

  function onStopQueues(names: string[], graceMs: number, done: () => void): void {
    gate.hold(names, true);
    const stop = { queues: new Set(names), deadline: Date.now() + graceMs, forced: false, ids: new Set<string>(), done };
    queueStops.push(stop);
    // Jobs of these queues that ended just before: their outcomes are recorded before the stop is done too.
    for (const batch of [outcomes.pending, ...outcomes.inflight])
      for (const job of [...batch.completions.map((c) => c.job), ...batch.failures.map((f) => f.job), ...batch.releases])
        if (stop.queues.has(job.queue)) stop.ids.add(job.id);
    for (const name of names) {
      const q = queues.get(name);
      if (q && q.buffer.length > 0) handBackBuffer(q);
    }
    scheduleFlush();
    retractAdverts();
    checkQueueStops();
  }

  function onStartQueues(names: string[]): void {
    gate.hold(names, false);
    window.backlogLikely = true;
    maybeClaim(true);
  }

  /** Ends the queue stops whose queues run nothing here any more and whose outcomes are recorded. */
  function checkQueueStops(): void {
    if (queueStops.length === 0) return;
    // Built only for a stop whose queues run nothing any more: this runs at every job's end while a
    // stop waits, and the outcomes pending and in flight can be thousands.
    let unrecorded: Set<string> | undefined;
    for (const stop of [...queueStops]) {
      let running = 0;
      for (const name of stop.queues) running += queues.get(name)?.running ?? 0;
      if (running > 0) {
        if (!stop.forced && Date.now() >= stop.deadline) {
          stop.forced = true;
          log.warn(
            { queues: [...stop.queues], running },
            'grace period of a queue stop over; aborting its running jobs and handing them back',
          );
          for (const [id, entry] of tracked) if (entry.started && stop.queues.has(entry.job.queue)) abortJob(id, 'shutdown');
        }
        continue;
      }
      unrecorded ??= new Set(outcomes.held([]));
      if (someIn(stop.ids, unrecorded)) {
        if (outcomes.size > 0) flush();
        continue;
      }
      queueStops.splice(queueStops.indexOf(stop), 1);
      stop.done();
    }
  }

  function someIn(ids: Set<string>, unrecorded: Set<string>): boolean {
    for (const id of ids) if (unrecorded.has(id)) return true;
    return false;
  }

  function onControl(state: ControlState): void {
    const { wasStopped } = gate.control(state, nodeId, [...queues.keys()]);
    for (const name of gate.paused) {
      const q = queues.get(name);
      if (!q || q.buffer.length === 0) continue;
      handBackBuffer(q);
      scheduleFlush();
    }
    // A lowered throttle takes effect now, not when the old, longer wait would have ended.
    throttleTimer?.();
    throttleTimer = undefined;
    retractAdverts();
    if (wasStopped || gate.throttleMs >= 0) maybeClaim(true);
  }

  function onLeases(checked: string[], renewed: Set<string>, cancelRequested: string[]): void {
    if (gate.renewed(Date.now())) {
      log.info('leases are renewed again; claiming resumes');
      self.cast({ t: 'poll' });
    }
    for (const id of checked) {
      if (tracked.has(id) && !renewed.has(id)) {
        log.warn({ jobId: id }, 'lease lost (not renewed); aborting the local run');
        abortJob(id, 'lease');
      }
    }
    for (const id of cancelRequested) abortJob(id, 'cancel');
  }

  function handleMessage(msg: EngineMsg): unknown {
    switch (msg.t) {
      case 'handoff':
        return onHandoff(msg.job);
      case 'here':
        return onHere(msg.jobs, msg.reserved);
      case 'keysSettled':
        if (msg.queues.length) options.claimable?.(msg.queues);
        if (draining) return checkDrained();
        if (msg.queues.length) {
          window.backlogLikely = true;
          maybeClaim();
        }
        return;
      case 'wake':
        window.woken();
        return maybeClaim();
      case 'poll':
        throttleTimer = undefined;
        dispatch();
        maybeClaim(true);
        if (draining) checkDrained();
        checkQueueStops();
        return;
      case 'claimed':
        onClaimed(msg.jobs, msg.asked, msg.found);
        if (draining) checkDrained();
        return;
      case 'claimFailed':
        onClaimFailed(msg.error, msg.asked);
        if (draining) checkDrained();
        return;
      case 'rateLimited':
        return onRateLimited(msg.limited);
      case 'rateReady':
        rateTimer = undefined;
        return maybeClaim(true);
      case 'done':
        return onDone(msg.job, msg);
      case 'progress': {
        const entry = tracked.get(msg.id);
        if (!entry) return;
        emit({ kind: 'progress', job: entry.job, progress: msg.value });
        pending().progress.set(msg.id, msg.json);
        return scheduleFlush();
      }
      case 'flush':
        return flush();
      case 'flushed':
        return onFlushed(msg.sent, msg.batch, msg.accepted, msg.unwritten);
      case 'flushFailed':
        return onFlushFailed(msg.batch, msg.error);
      case 'held':
        // Leases to renew: jobs running or prefetched, and finished ones not yet recorded.
        return outcomes.held([...tracked.keys()]);
      case 'heartbeatFailed':
        if (gate.renewalFailed()) log.warn('renewing leases failed; claiming nothing until a renewal succeeds');
        return retractAdverts();
      case 'leases':
        return onLeases(msg.checked, msg.renewed, msg.cancelRequested);
      case 'cancel':
        for (const id of msg.ids) abortJob(id, 'cancel');
        return;
      case 'drain':
        return onDrain(msg.graceMs, msg.done);
      case 'stopQueues':
        return onStopQueues(msg.queues, msg.graceMs, msg.done);
      case 'startQueues':
        return onStartQueues(msg.queues);
      case 'control':
        return onControl(msg.state);
      case 'stats':
        return engineStats(queues, {
          partition,
          processed,
          draining: draining !== undefined,
          paused: gate.controlPaused,
          stopped: gate.stopped,
          held: gate.held,
          throttleMs: gate.throttleMs,
        });
    }
  }

  return {
    init(ctx) {
      ctxRef = ctx;
      self = ctx.self;
      ctx.sendEvery(settings.pollMs, { t: 'poll' });
      // Queues the node had stopped stay stopped across a restart of this engine.
      if (options.held) gate.hold(options.held(), true);
      // Until this answers, the engine claims nothing (its seat also delivers it every few seconds).
      store.loadControl(partition).then(
        (state) => self.cast({ t: 'control', state }),
        (err) => log.warn({ err: describeError(err).message }, 'reading pause/throttle state failed; claims wait for it'),
      );
    },
    handle: handleMessage,
    terminate() {
      // Jobs still tracked here are abandoned to lease expiry: the heartbeat stops renewing them
      // because this engine no longer lists them, and another run picks them up.
      if (tracked.size > 0)
        log.warn({ jobs: tracked.size }, 'engine stopped with jobs in hand; they will be rescued when their leases expire');
    },
  };
}
