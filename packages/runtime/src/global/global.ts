import type { ActorContext, Behavior } from '@partita/actors';
import { StaleEpochError, ValidationError, describeError, type Logger } from '@partita/core';
import type { ControlChange, ControlRow, GlobalStore } from '@partita/postgres';
import type { GlobalSnapshot, Persister, ThrottleRule } from './types.js';

import { MAX_THROTTLE_MS, type GlobalRequest } from '@partita/protocol';
export type { GlobalRequest } from '@partita/protocol';

export type GlobalOp = GlobalRequest['op'];
export const GLOBAL_OPS: readonly GlobalOp[] = [
  'cancelJob',
  'isCancelled',
  'queueKeyTaken',
  'releaseQueueKey',
  'executionKeyHeld',
  'releaseExecutionKey',
  'pause',
  'resume',
  'pausedQueues',
  'throttle',
  'control',
  'snapshot',
];

export interface ControlState {
  paused: string[];
  throttles: ThrottleRule[];
}

export interface Reply {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export type GlobalMsg =
  | { t: 'request'; request: GlobalRequest; reply: Reply }
  | { t: 'reconcile' }
  | { t: 'reconciled'; live: Set<string>; asked: Set<string> }
  /** The partition's control row as Postgres holds it now: after this Global's own change (`reply`), or read on a notice. */
  | { t: 'control'; row: ControlRow; reply?: Reply; op?: 'pause' | 'resume' | 'throttle' };

export interface GlobalOptions {
  partition: string;
  epoch: number;
  snapshot: GlobalSnapshot;
  persister: Persister;
  store: GlobalStore;
  logger: Logger;
  reconcileMs: number;
  /** Wakes engines of the partition's queues (bus and local): a job of a freed execution key may start. */
  wake(queues: string[]): void;
  /** Tells every node to abort these running jobs (bus broadcast). */
  cancelRunning(ids: string[]): void;
  /** Tells every node the partition's pause/throttle state changed (bus broadcast; the Postgres notice is sent by the change itself). */
  controlChanged(control: ControlState, version: number): void;
}

interface Pending {
  result: () => unknown;
  /** Postgres work that must follow the save (cancelling, publishing control), in order. */
  effect?: () => Promise<void>;
  reply: Reply;
}

/** What `snapshot` answers: the persisted state, plus the execution keys Postgres holds right now. */
export interface GlobalView extends GlobalSnapshot {
  /** Per held key: its holder, the first few jobs behind it in claim order, and how many there are. */
  executionKeys: Record<string, { holder: string; waiters: string[]; waiting: number }>;
}

/**
 * One partition's Global coordinator, on the node holding the partition's lease. Every mutation is
 * applied in arrival order (check-and-set in one message), then acknowledged only after a snapshot
 * containing it was saved; mutations arriving while a save is in flight are saved together. Postgres
 * side effects (cancelling, publishing pause/throttle) run after the save, strictly in order.
 *
 * Pauses and throttles are changed in Postgres first, one change at a time on the partition's
 * control row (`partition_control`), which is where clients without the bus make theirs too:
 * neither writer can overwrite the other's change with a whole state. Global adopts the row after
 * its own change and whenever its seat re-reads it (on a Postgres notice, and every few seconds),
 * keeping the later `version`, and saves it in its snapshot; a new leader takes the row over.
 *
 * Execution keys and queue keys are not in the snapshot: Postgres holds both with partial unique
 * indexes, in the same transaction as the claim (running job per execution key) and the enqueue
 * (live job per queue key). Global's key operations read and clear those, so no leader change can
 * lose a key or let two jobs of one key run at once, and claims never wait on a snapshot save.
 */
export function globalBehavior(options: GlobalOptions): Behavior<GlobalMsg, void> {
  const { partition, persister, store, epoch } = options;
  const log = options.logger;
  const cancelled = new Set(options.snapshot.cancelled);
  let paused = new Set(options.snapshot.paused);
  let throttles: ThrottleRule[] = options.snapshot.throttles.map((r) => ({ ...r }));
  let controlVersion = 0;

  let awaiting: Pending[] = [];
  let saving = false;
  let stopped = false;
  let ctxRef: ActorContext<GlobalMsg, void>;
  let reconciling = false;

  const snapshot = (): GlobalSnapshot => ({
    version: 1,
    partition,
    epoch,
    savedAt: new Date().toISOString(),
    cancelled: [...cancelled],
    paused: [...paused].sort(),
    throttles: throttles.map((r) => ({ ...r })),
  });
  const control = (): ControlState => ({ paused: [...paused].sort(), throttles: throttles.map((r) => ({ ...r })) });

  /** Queues a mutation's reply behind the next save (group commit). */
  function commit(pending: Pending): void {
    awaiting.push(pending);
    if (!saving) {
      saving = true;
      // Let the rest of the mailbox's current burst join this save.
      setImmediate(() => void saveLoop());
    }
  }

  async function saveLoop(): Promise<void> {
    while (awaiting.length > 0 && !stopped) {
      const batch = awaiting;
      awaiting = [];
      try {
        await persister.save(partition, snapshot(), epoch);
      } catch (err) {
        for (const p of batch) p.reply.reject(err);
        if (err instanceof StaleEpochError) {
          log.error({ err: err.message }, 'another node took over this partition; stepping down');
          stopped = true;
          for (const p of awaiting) p.reply.reject(err);
          awaiting = [];
          ctxRef.stop('stale epoch');
          return;
        }
        log.warn({ err: describeError(err).message }, 'saving the Global snapshot failed; the mutations were refused');
        continue;
      }
      for (const p of batch) {
        try {
          if (p.effect) await p.effect();
          p.reply.resolve(p.result());
        } catch (err) {
          log.warn({ err: describeError(err).message }, 'a Global side effect failed; reconciliation will repair it');
          p.reply.reject(err);
          ctxRef.self.cast({ t: 'reconcile' });
        }
      }
    }
    saving = false;
  }

  /** Takes the control row's state when it is later than what this Global holds; true when it did. */
  function adoptControl(row: ControlRow): boolean {
    if (row.version <= controlVersion) return false;
    controlVersion = row.version;
    paused = new Set([...row.paused].sort());
    throttles = row.throttles.map((r) => ({
      ms: r.ms,
      ...(r.queue != null ? { queue: r.queue } : {}),
      ...(r.node != null ? { node: r.node } : {}),
    }));
    return true;
  }

  /** Makes a change in Postgres, off the mailbox; the row comes back as a `control` message. */
  function changeControl(change: ControlChange, reply: Reply): void {
    store.changeControl(partition, change).then(
      (row) => ctxRef.self.cast({ t: 'control', row, reply, op: change.op }),
      (err) => reply.reject(err),
    );
  }

  /** Answers from Postgres, off the mailbox: reads that change nothing Global holds. */
  function answer(reply: Reply, work: Promise<unknown>): void {
    work.then(reply.resolve, reply.reject);
  }

  function handleRequest(request: GlobalRequest, reply: Reply): void {
    switch (request.op) {
      case 'cancelJob': {
        cancelled.add(request.id);
        let found = false;
        commit({
          result: () => found,
          reply,
          effect: async () => {
            const outcomes = await store.cancel([request.id]);
            found = outcomes.length > 0;
            const running = outcomes.filter((o) => o.running).map((o) => o.id);
            if (running.length) options.cancelRunning(running);
            // Queued jobs are finished by the cancel itself: their entry is not needed.
            if (outcomes.some((o) => !o.running)) cancelled.delete(request.id);
          },
        });
        return;
      }
      case 'isCancelled':
        if (cancelled.has(request.id)) return reply.resolve(true);
        return answer(
          reply,
          store.getJob(request.id).then((job) => job?.state === 'cancelled'),
        );
      case 'queueKeyTaken':
        return answer(
          reply,
          store.queueKeyHolder(partition, request.key).then((id) => id !== undefined),
        );
      case 'releaseQueueKey':
        return answer(reply, store.clearQueueKey(partition, request.key));
      case 'executionKeyHeld':
        return answer(
          reply,
          store.executionKeyHolder(partition, request.key).then((id) => id !== undefined),
        );
      case 'releaseExecutionKey':
        return answer(
          reply,
          store.releaseExecutionKey(partition, request.key).then((held) => {
            if (held) options.wake([held.queue]);
            return held !== undefined;
          }),
        );
      case 'pause':
      case 'resume':
        return changeControl({ op: request.op, queue: request.queue }, reply);
      case 'pausedQueues':
        // The row, not this Global's copy: a change a client made there a moment ago counts already.
        return answer(
          reply,
          store.loadControl(partition).then((row) => [...row.paused].sort()),
        );
      case 'throttle': {
        const rule = request.rule;
        if (!Number.isInteger(rule.ms) || rule.ms < -1 || rule.ms > MAX_THROTTLE_MS) {
          return reply.reject(
            new ValidationError(`must be a whole number of ms from -1 (stop) to ${MAX_THROTTLE_MS}; 0 lifts it`, 'throttle.ms'),
          );
        }
        return changeControl(
          { op: 'throttle', ms: rule.ms, ...(rule.queue ? { queue: rule.queue } : {}), ...(rule.node ? { node: rule.node } : {}) },
          reply,
        );
      }
      case 'control':
        return reply.resolve(control());
      case 'snapshot': {
        const saved = snapshot();
        return answer(
          reply,
          store.executionKeys(partition).then((executionKeys): GlobalView => ({ ...saved, executionKeys })),
        );
      }
      default:
        return reply.reject(new ValidationError(`unknown Global operation ${(request as { op: unknown }).op}`));
    }
  }

  /** Asks Postgres which cancelled jobs are still live; the answer comes back as a message. */
  function startReconcile(): void {
    if (reconciling || cancelled.size === 0) return;
    reconciling = true;
    const asked = new Set(cancelled);
    store.liveJobs([...asked]).then(
      (live) => ctxRef.self.cast({ t: 'reconciled', live, asked }),
      (err) => {
        reconciling = false;
        log.warn({ err: describeError(err).message }, 'reconciling Global with Postgres failed; will retry');
      },
    );
  }

  /** Cancel entries of jobs that finished go, so the set stays bounded (an entry added since stays). */
  function applyReconcile(live: Set<string>, asked: Set<string>): void {
    reconciling = false;
    let dropped = 0;
    for (const id of asked) {
      if (!live.has(id) && cancelled.delete(id)) dropped++;
    }
    if (dropped === 0) return;
    log.info({ dropped, cancelled: cancelled.size }, 'dropped cancel entries of finished jobs');
    commit({ result: () => undefined, reply: { resolve: () => undefined, reject: () => undefined } });
  }

  /** A control row read from Postgres (after a change of ours, or on a notice): adopt, save, tell the nodes. */
  function applyControlRow(row: ControlRow, reply: Reply | undefined, op: 'pause' | 'resume' | 'throttle' | undefined): void {
    const changed = adoptControl(row);
    const result = () => (op === 'throttle' ? throttles.map((r) => ({ ...r })) : [...paused]);
    if (!changed && !reply) return;
    const state = control();
    const version = controlVersion;
    commit({
      result,
      reply: reply ?? { resolve: () => undefined, reject: () => undefined },
      ...(changed ? { effect: async () => options.controlChanged(state, version) } : {}),
    });
  }

  return {
    async init(ctx) {
      ctxRef = ctx;
      // The control row is where pauses and throttles are changed: it wins over the snapshot's
      // copy (a client without the bus may have changed it while no node led the partition).
      adoptControl(await store.adoptControl(partition, control(), epoch));
      // Fence any older leader: from here on its saves are refused.
      await persister.save(partition, snapshot(), epoch);
      ctx.sendEvery(options.reconcileMs, { t: 'reconcile' });
      startReconcile();
    },
    handle(msg) {
      if (stopped) {
        if (msg.t === 'request' || (msg.t === 'control' && msg.reply)) msg.reply!.reject(new StaleEpochError(partition, epoch, epoch + 1));
        return;
      }
      switch (msg.t) {
        case 'request':
          return handleRequest(msg.request, msg.reply);
        case 'reconcile':
          return startReconcile();
        case 'reconciled':
          return applyReconcile(msg.live, msg.asked);
        case 'control':
          return applyControlRow(msg.row, msg.reply, msg.op);
      }
    },
    terminate() {
      stopped = true;
    },
  };
}
