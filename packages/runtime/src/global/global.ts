import type { ActorContext, Behavior } from '@partita/actors';
import { StaleEpochError, ValidationError, describeError, type Logger } from '@partita/core';
import type { JobStore } from '@partita/postgres';
import type { GlobalSnapshot, Persister, ThrottleRule } from './types.js';

import { MAX_THROTTLE_MS, type GlobalRequest } from '@partita/client';
export type { GlobalRequest } from '@partita/client';

export type GlobalOp = GlobalRequest['op'];
export const GLOBAL_OPS: readonly GlobalOp[] = [
  'admit', 'finished', 'cancelJob', 'isCancelled', 'queueKeyTaken', 'releaseQueueKey', 'executionKeyHeld',
  'releaseExecutionKey', 'pause', 'resume', 'pausedQueues', 'throttle', 'control', 'snapshot',
];

export interface Admission {
  run: string[];
  wait: string[];
  cancelled: string[];
}

export interface ControlState {
  paused: string[];
  throttles: ThrottleRule[];
}

export interface Reply {
  resolve(value: unknown): void;
  reject(error: unknown): void;
}

export type GlobalMsg = { t: 'request'; request: GlobalRequest; reply: Reply } | { t: 'reconcile' } | { t: 'reconciled'; data: ReconcileData };

export interface GlobalOptions {
  partition: string;
  epoch: number;
  snapshot: GlobalSnapshot;
  persister: Persister;
  store: JobStore;
  logger: Logger;
  reconcileMs: number;
  /** Wakes engines of the partition's queues (bus and local), after waiting jobs were promoted. */
  wake(queues: string[]): void;
  /** Tells every node to abort these running jobs (bus broadcast). */
  cancelRunning(ids: string[]): void;
  /** Tells every node the partition's pause/throttle state changed (bus broadcast). */
  controlChanged(control: ControlState): void;
}

interface KeyState {
  holder: string | null;
  waiters: string[];
}

/** Bumped on every change to a key, so reconciliation never applies a stale read over newer news. */
let clock = 0;

interface Pending {
  result: () => unknown;
  /** Postgres work that must follow the save (parking, promoting, cancelling), in order. */
  effect?: () => Promise<void>;
  reply: Reply;
}

interface ReconcileData {
  states: Map<string, { state: 'queued' | 'waiting' | 'running'; executionKey: string | null; queue: string }>;
  keyed: { id: string; state: 'running' | 'waiting'; executionKey: string }[];
  /** The clock when the reads began: keys changed since then are left alone this round. */
  startedAt: number;
}


/**
 * One partition's Global coordinator, on the node holding the partition's lease. Every mutation is
 * applied in arrival order (check-and-set in one message), then acknowledged only after a snapshot
 * containing it was saved; mutations arriving while a save is in flight are saved together. Postgres
 * side effects (parking and promoting waiting jobs, cancelling) run after the save, strictly in order.
 */
export function globalBehavior(options: GlobalOptions): Behavior<GlobalMsg, void> {
  const { partition, persister, store, epoch } = options;
  const log = options.logger;
  const cancelled = new Set(options.snapshot.cancelled);
  const keys = new Map<string, KeyState>(Object.entries(options.snapshot.executionKeys).map(([k, v]) => [k, { holder: v.holder, waiters: [...v.waiters] }]));
  let paused = new Set(options.snapshot.paused);
  let throttles: ThrottleRule[] = options.snapshot.throttles.map((r) => ({ ...r }));

  const touched = new Map<string, number>();
  const touch = (key: string) => touched.set(key, ++clock);
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
    executionKeys: Object.fromEntries([...keys].map(([k, v]) => [k, { holder: v.holder, waiters: [...v.waiters] }])),
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

  function keyOf(key: string): KeyState {
    touch(key);
    let k = keys.get(key);
    if (!k) keys.set(key, (k = { holder: null, waiters: [] }));
    return k;
  }

  /** Frees a key held by `holder`: the next waiter becomes the holder. Returns that waiter. */
  function pass(key: string): string | undefined {
    touch(key);
    const k = keys.get(key);
    if (!k) return undefined;
    k.holder = k.waiters.shift() ?? null;
    if (k.holder === null) keys.delete(key);
    return k.holder ?? undefined;
  }

  /** Writes pause/throttle state where every node reads it, then tells them to read it now. */
  async function publishControl(): Promise<void> {
    const state = control();
    if (!(await store.saveControl(partition, state, epoch))) throw new StaleEpochError(partition, epoch, epoch + 1);
    options.controlChanged(state);
  }

  async function promote(ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const promoted = await store.promote(ids);
    if (promoted.length) options.wake([...new Set(promoted.map((p) => p.queue))]);
    // A holder that was not waiting (cancelled, finished, or not parked yet) is settled by reconciliation.
    if (promoted.length < ids.length) ctxRef.self.cast({ t: 'reconcile' });
  }

  /** Jobs that ended: their cancel entries go, their keys pass to the next waiters (returned, to promote). */
  function release(jobs: { id: string; key: string | null }[]): string[] {
    const next: string[] = [];
    for (const job of jobs) {
      cancelled.delete(job.id);
      if (!job.key) continue;
      const k = keys.get(job.key);
      if (!k) continue;
      touch(job.key);
      if (k.holder === job.id) {
        const n = pass(job.key);
        if (n) next.push(n);
      } else {
        k.waiters = k.waiters.filter((w) => w !== job.id);
      }
    }
    return next;
  }

  function admit(request: Extract<GlobalRequest, { op: 'admit' }>): { result: Admission; effect?: () => Promise<void> } {
    const result: Admission = { run: [], wait: [], cancelled: [] };
    const parkList: { id: string; attempt: number; node: string; key: string }[] = [];
    for (const job of request.jobs) {
      if (cancelled.has(job.id)) {
        result.cancelled.push(job.id);
        continue;
      }
      const k = keyOf(job.key);
      if (k.holder === null || k.holder === job.id) {
        k.holder = job.id;
        k.waiters = k.waiters.filter((w) => w !== job.id);
        result.run.push(job.id);
      } else {
        if (!k.waiters.includes(job.id)) k.waiters.push(job.id);
        result.wait.push(job.id);
        parkList.push({ id: job.id, attempt: job.attempt, node: request.node, key: job.key });
      }
    }
    return parkList.length ? { result, effect: async () => void (await store.park(parkList)) } : { result };
  }

  function handleRequest(request: GlobalRequest, reply: Reply): void {
    switch (request.op) {
      case 'admit': {
        // Keys released with the admission go first: a job of this batch may be next for one.
        const next = request.finished ? release(request.finished) : [];
        const { result, effect } = admit(request);
        commit({
          result: () => result,
          reply,
          effect: async () => {
            await promote(next);
            await effect?.();
          },
        });
        return;
      }
      case 'finished': {
        const next = release(request.jobs);
        commit({ result: () => ({ promoted: next.length }), reply, effect: () => promote(next) });
        return;
      }
      case 'cancelJob': {
        cancelled.add(request.id);
        for (const [key, k] of keys) {
          if (k.waiters.includes(request.id)) {
            touch(key);
            k.waiters = k.waiters.filter((w) => w !== request.id);
          }
          if (k.holder === null && k.waiters.length === 0) keys.delete(key);
        }
        let found = false;
        commit({
          result: () => found,
          reply,
          effect: async () => {
            const outcomes = await store.cancel([request.id]);
            found = outcomes.length > 0;
            const running = outcomes.filter((o) => o.running).map((o) => o.id);
            if (running.length) options.cancelRunning(running);
            // Queued and waiting jobs are finished by the cancel itself: their entry is not needed.
            if (outcomes.some((o) => !o.running)) cancelled.delete(request.id);
          },
        });
        return;
      }
      case 'isCancelled':
        if (cancelled.has(request.id)) return reply.resolve(true);
        store.getJob(request.id).then((job) => reply.resolve(job?.state === 'cancelled'), reply.reject);
        return;
      case 'queueKeyTaken':
        store.queueKeyHolder(partition, request.key).then((id) => reply.resolve(id !== undefined), reply.reject);
        return;
      case 'releaseQueueKey':
        store.clearQueueKey(partition, request.key).then(reply.resolve, reply.reject);
        return;
      case 'executionKeyHeld':
        return reply.resolve((keys.get(request.key)?.holder ?? null) !== null);
      case 'releaseExecutionKey': {
        const held = (keys.get(request.key)?.holder ?? null) !== null;
        const n = held ? pass(request.key) : undefined;
        commit({ result: () => held, reply, effect: () => promote(n ? [n] : []) });
        return;
      }
      case 'pause':
      case 'resume': {
        if (request.op === 'pause') paused.add(request.queue);
        else paused.delete(request.queue);
        paused = new Set([...paused].sort());
        commit({ result: () => [...paused], reply, effect: () => publishControl() });
        return;
      }
      case 'pausedQueues':
        return reply.resolve([...paused].sort());
      case 'throttle': {
        const rule = request.rule;
        if (!Number.isInteger(rule.ms) || rule.ms < -1 || rule.ms > MAX_THROTTLE_MS) {
          return reply.reject(new ValidationError(`must be a whole number of ms from -1 (stop) to ${MAX_THROTTLE_MS}; 0 lifts it`, 'throttle.ms'));
        }
        throttles = throttles.filter((r) => r.queue !== rule.queue || r.node !== rule.node);
        if (rule.ms !== 0) throttles.push({ ms: rule.ms, ...(rule.queue ? { queue: rule.queue } : {}), ...(rule.node ? { node: rule.node } : {}) });
        commit({ result: () => throttles.map((r) => ({ ...r })), reply, effect: () => publishControl() });
        return;
      }
      case 'control':
        return reply.resolve(control());
      case 'snapshot':
        return reply.resolve(snapshot());
      default:
        return reply.reject(new ValidationError(`unknown Global operation ${(request as { op: unknown }).op}`));
    }
  }

  /** Reads Postgres for everything Global refers to; the answer comes back as a message. */
  function startReconcile(): void {
    if (reconciling) return;
    reconciling = true;
    const startedAt = clock;
    const ids = new Set<string>(cancelled);
    for (const k of keys.values()) {
      if (k.holder) ids.add(k.holder);
      for (const w of k.waiters) ids.add(w);
    }
    Promise.all([store.jobStates([...ids]), store.keyedLiveJobs(partition)]).then(
      ([states, keyed]) => ctxRef.self.cast({ t: 'reconciled', data: { states, keyed, startedAt } }),
      (err) => {
        reconciling = false;
        log.warn({ err: describeError(err).message }, 'reconciling Global with Postgres failed; will retry');
      },
    );
  }

  /**
   * Makes Global agree with Postgres: entries of finished jobs go, a key whose holder is gone passes
   * on, running keyed jobs hold their keys, waiting keyed jobs are waiters. Never leaves a key stuck.
   */
  function applyReconcile({ states, keyed, startedAt }: ReconcileData): void {
    reconciling = false;
    let changed = false;
    for (const id of cancelled) if (!states.has(id)) (cancelled.delete(id), (changed = true));
    const promoteIds: string[] = [];
    const live = (id: string) => keyed.some((j) => j.id === id) || states.has(id);
    const stale = (key: string) => (touched.get(key) ?? 0) > startedAt;
    for (const [key, k] of keys) {
      if (stale(key)) continue;
      const before = k.waiters.length;
      k.waiters = k.waiters.filter((w) => live(w));
      if (k.waiters.length !== before) changed = true;
      if (k.holder !== null && !live(k.holder)) {
        k.holder = null;
        changed = true;
      }
      if (k.holder === null && k.waiters.length === 0) {
        keys.delete(key);
        changed = true;
      }
    }
    for (const job of keyed) {
      if (stale(job.executionKey)) continue;
      const k = keys.get(job.executionKey) ?? { holder: null, waiters: [] };
      keys.set(job.executionKey, k);
      if (job.state === 'running') {
        if (k.holder !== job.id) {
          const holderState = k.holder ? (states.get(k.holder)?.state ?? keyed.find((j) => j.id === k.holder)?.state) : undefined;
          if (k.holder && holderState === 'running') {
            log.error({ key: job.executionKey, holder: k.holder, running: job.id }, 'two running jobs share an execution key; keeping the recorded holder');
          } else {
            k.holder = job.id;
            changed = true;
          }
        }
        k.waiters = k.waiters.filter((w) => w !== job.id);
      } else if (k.holder !== job.id && !k.waiters.includes(job.id)) {
        k.waiters.push(job.id);
        changed = true;
      } else if (k.holder === job.id) {
        promoteIds.push(job.id); // it holds the key yet waits: it was parked after its turn came
      }
    }
    for (const [key, k] of keys) {
      if (stale(key)) continue;
      if (k.holder === null && k.waiters.length === 0) {
        keys.delete(key);
        continue;
      }
      if (k.holder === null && k.waiters.length > 0) {
        const n = pass(key);
        if (n) promoteIds.push(n);
        changed = true;
      }
    }
    if (changed || promoteIds.length) {
      log.info({ promoted: promoteIds.length, keys: keys.size, cancelled: cancelled.size }, 'reconciled Global with Postgres');
      commit({ result: () => undefined, reply: { resolve: () => undefined, reject: () => undefined }, effect: () => promote(promoteIds) });
    }
  }

  return {
    async init(ctx) {
      ctxRef = ctx;
      // Fence any older leader first: from here on its saves are refused.
      await persister.save(partition, snapshot(), epoch);
      await store.saveControl(partition, control(), epoch);
      ctx.sendEvery(options.reconcileMs, { t: 'reconcile' });
      startReconcile();
    },
    handle(msg) {
      if (stopped) {
        if (msg.t === 'request') msg.reply.reject(new StaleEpochError(partition, epoch, epoch + 1));
        return;
      }
      switch (msg.t) {
        case 'request':
          return handleRequest(msg.request, msg.reply);
        case 'reconcile':
          return startReconcile();
        case 'reconciled':
          return applyReconcile(msg.data);
      }
    },
    terminate() {
      stopped = true;
    },
  };
}
