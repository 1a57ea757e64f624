import type { ActorContext, ActorRef, ActorSystem, Behavior } from '@partita/actors';
import { describeError, type Logger } from '@partita/core';
import { globalLeaseName, type ControlRow, type GlobalStore, type LeaseStore } from '@partita/postgres';
import type { Bus } from '@partita/nats';
import { subjects } from '@partita/protocol';
import type { EngineMsg } from '../engine/messages.js';
import { callGlobal, globalName } from './client.js';
import { controlProblem } from '../quorum.js';
import type { Metrics } from '../metrics.js';
import { LeaderSeat } from '../leadership/leader-seat.js';
import { GLOBAL_OPS, globalBehavior, type ControlState, type GlobalMsg, type GlobalRequest } from './global.js';
import { emptySnapshot, type Persister } from './types.js';

export interface SeatOptions {
  partition: string;
  nodeId: string;
  cluster: string;
  /** The partition's lease is 'global:<partition>' in it. */
  leases: LeaseStore;
  persister: Persister;
  store: GlobalStore;
  bus: Bus;
  system: ActorSystem;
  logger: Logger;
  queues: string[];
  engine: () => ActorRef<EngineMsg, unknown> | undefined;
  /** Lease time to live; a dead leader is replaced within about this long. */
  ttlMs: number;
  /** Lease renewal and take-over attempts happen this often. */
  tickMs: number;
  reconcileMs: number;
  /** How often every node re-reads pause/throttle state (broadcasts make it immediate). */
  controlRefreshMs: number;
  requestTimeoutMs: number;
  metrics?: Metrics;
  /**
   * Where the file persister keeps Global state on this node's disk; undefined for persisters
   * every node reads alike (postgres, most modules). Set, a take-over that finds no state from the
   * previous leader's epoch there is warned about: that leader saved it on another node's disk.
   */
  localStateDir?: string;
}

/** `version`: the control row's, when known; an older state than the one applied is dropped. */
export type SeatMsg =
  | { t: 'tick' }
  | { t: 'refresh' }
  | { t: 'control'; control: ControlState; version?: number }
  /** The control row as read from Postgres: applied (and adopted by Global when leading), then `after` runs. */
  | { t: 'row'; row: ControlRow; after?: () => void };

/**
 * Every node has a seat per partition: it chases the partition's Global lease (a LeaderSeat) and, while it holds
 * it, runs the Global actor and answers the partition's Global requests from the bus. On every
 * node it keeps the local engine's pause/throttle state current.
 */
export function seatBehavior(options: SeatOptions): Behavior<SeatMsg, void> {
  const { partition, bus, system, logger } = options;
  /** The Global actor while this node leads and serves it. */
  let global: ActorRef<GlobalMsg, void> | undefined;
  let lastControl = '';
  let lastVersion = 0;
  let lastEngine: ActorRef<EngineMsg, unknown> | undefined;
  let ctxRef: ActorContext<SeatMsg, void>;
  let restored = false;

  const seat = new LeaderSeat({
    lease: globalLeaseName(partition),
    nodeId: options.nodeId,
    leases: options.leases,
    system,
    logger,
    ttlMs: options.ttlMs,
    tickMs: options.tickMs,
    name: globalName(partition),
    start: async (acquired, lease) => {
      let epoch = acquired;
      // A snapshot that cannot be read stops this partition with the persister's error (it names
      // the file and how to recover), rather than starting empty and forgetting keys and pauses.
      const loaded = await options.persister.load(partition);
      if (loaded && loaded.epoch >= epoch) {
        epoch = await lease.raiseEpoch(loaded.epoch + 1);
        logger.warn(
          { from: acquired, to: epoch },
          'the saved Global snapshot is from a later epoch than the lease table; raised the lease epoch',
        );
      }
      if (options.localStateDir !== undefined && epoch > 1 && (loaded?.epoch ?? 0) < epoch - 1) warnStateElsewhere(epoch, loaded?.epoch);
      restored = loaded !== undefined;
      return globalBehavior({
        partition,
        epoch,
        snapshot: loaded ?? emptySnapshot(partition, epoch),
        persister: options.persister,
        store: options.store,
        logger: logger.child({ actor: 'global', epoch }),
        reconcileMs: options.reconcileMs,
        wake: (queues) => {
          for (const queue of queues) bus.publish(subjects.wake(options.cluster, partition, queue), 'wake', null);
          options.engine()?.cast({ t: 'wake', queues });
        },
        cancelRunning: (ids) => {
          bus.publish(subjects.cancel(options.cluster, partition), 'cancel', { ids });
          options.engine()?.cast({ t: 'cancel', ids });
        },
        controlChanged: (control, version) => {
          bus.publish(subjects.pause(options.cluster, partition), 'control', { partition, epoch, seq: version, ...control });
          ctxRef.self.cast({ t: 'control', control, version });
        },
      });
    },
    whileLeading: async (child, epoch) => {
      const ref = child as ActorRef<GlobalMsg, void>;
      global = ref;
      const off = await bus.subscribe(
        subjects.global(options.cluster, partition),
        async (data: GlobalRequest, msg) => {
          // Counted where the call is served: the callers (clients, other nodes) have no metrics registry.
          const started = performance.now();
          try {
            const result = await callGlobal(ref, { ...data, op: msg.kind } as GlobalRequest, options.requestTimeoutMs);
            options.metrics?.globalCall(partition, msg.kind, true, performance.now() - started);
            return result;
          } catch (err) {
            options.metrics?.globalCall(partition, msg.kind, false, performance.now() - started);
            throw err;
          }
        },
        { kinds: GLOBAL_OPS },
      );
      options.metrics?.globalLeader(partition, true);
      logger.info({ epoch, restored }, 'took the partition lease; serving Global');
      return async () => {
        if (global === ref) global = undefined;
        await off();
      };
    },
  });
  seat.onChange((change) => {
    if (change.leader) return;
    options.metrics?.globalLeader(partition, false);
    logger.info({ epoch: change.epoch, released: change.reason !== 'lost' }, 'no longer serving Global');
  });

  /**
   * The file persister found no state saved in the previous leader's epoch: that leader kept it in
   * another node's data dir. Pauses and throttles live in Postgres (partition_control) and carry
   * over; cancel requests of running jobs and anything else only in the snapshot do not.
   */
  function warnStateElsewhere(epoch: number, found: number | undefined): void {
    logger.warn(
      { partition, epoch, previousEpoch: epoch - 1, foundEpoch: found ?? null, dataDir: options.localStateDir },
      `partition "${partition}" taken over at epoch ${epoch}, but the file persister in ${options.localStateDir} holds ` +
        `${found === undefined ? 'no Global state for it' : `its state from epoch ${found} only`}: the leader of epoch ${epoch - 1} ` +
        `saved its state on another node's disk, so Global starts without it (pauses and throttles are kept in Postgres and ` +
        `carry over; its cancel requests do not). With nodes on several machines use persister: postgres (the default when ` +
        `postgres: is configured), or give every node the same shared dataDir.`,
    );
  }

  function applyControl(control: ControlState, version: number | undefined): void {
    if (version !== undefined) {
      if (version < lastVersion) return; // a read or broadcast that an applied later change overtook
      lastVersion = version;
    }
    const key = JSON.stringify(control);
    const engine = options.engine();
    // Repeat unchanged state only to an engine that has not had any yet (it may have restarted).
    if (key === lastControl && engine === lastEngine) return;
    lastControl = key;
    lastEngine = engine;
    engine?.cast({ t: 'control', state: control });
  }

  let offControl: (() => Promise<void>) | undefined;

  return {
    async init(ctx) {
      ctxRef = ctx;
      // Pause and throttle changes are broadcast by whichever node leads; every seat applies them.
      offControl = await bus.subscribe(
        subjects.pause(options.cluster, partition),
        (control: ControlState & { partition?: string; seq?: number }) => {
          // A malformed broadcast is dropped here: it must never reach (and crash) the engine.
          if (controlProblem(control) === undefined && control.partition === partition) {
            const version = typeof control.seq === 'number' ? control.seq : undefined;
            ctx.self.cast({
              t: 'control',
              control: { paused: control.paused, throttles: control.throttles },
              ...(version !== undefined ? { version } : {}),
            });
          }
        },
        { kinds: ['control'] },
      );
      ctx.sendEvery(options.tickMs, { t: 'tick' });
      ctx.sendEvery(options.controlRefreshMs, { t: 'refresh' });
      ctx.self.cast({ t: 'tick' });
      ctx.self.cast({ t: 'refresh' });
    },
    async handle(msg) {
      switch (msg.t) {
        case 'tick':
          try {
            await seat.tick();
          } catch (err) {
            if ((err as { code?: string })?.code === 'PERSISTER') throw err;
            logger.warn({ err: describeError(err).message }, 'partition lease round failed; will retry');
          }
          return;
        case 'refresh':
          // From Postgres, where every change is made: no leader or bus needed to obey a pause. Sent
          // on a Postgres notice of a change and every few seconds; the leader's Global adopts it too.
          options.store
            .loadControl(partition)
            .then((row) => ctxRef.self.cast({ t: 'row', row }))
            .catch((err) => logger.debug({ err: describeError(err).message }, 'reading pause/throttle state failed'));
          return;
        case 'control':
          applyControl(msg.control, msg.version);
          return;
        case 'row':
          applyControl({ paused: msg.row.paused, throttles: msg.row.throttles }, msg.row.version);
          if (global?.alive) global.cast({ t: 'control', row: msg.row });
          msg.after?.();
          return;
      }
    },
    async terminate() {
      await offControl?.().catch(() => undefined);
      await seat.stop();
    },
  };
}
