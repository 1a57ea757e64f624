import type { ActorContext, ActorRef, ActorSystem, Behavior } from '@partita/actors';
import { describeError, type Logger } from '@partita/core';
import type { ControlRow, JobStore } from '@partita/postgres';
import type { Bus } from '@partita/nats';
import { subjects } from '@partita/protocol';
import type { EngineMsg } from '../engine/messages.js';
import { callGlobal, globalName } from './client.js';
import { controlProblem } from '../quorum.js';
import type { Metrics } from '../metrics.js';
import { GLOBAL_OPS, globalBehavior, type ControlState, type GlobalMsg, type GlobalRequest } from './global.js';
import { emptySnapshot, type Persister } from './types.js';

/** The partition lease operations the seat needs (PartitionLeases in @partita/postgres). */
export interface LeaseApi {
  acquire(partition: string, nodeId: string, ttlMs: number): Promise<{ epoch: number } | undefined>;
  renew(partition: string, nodeId: string, epoch: number, ttlMs: number): Promise<boolean>;
  release(partition: string, nodeId: string, epoch: number): Promise<unknown>;
  /** Moves our own lease's epoch up to at least `atLeast` (a snapshot from a later epoch survived a lease reset). */
  raiseEpoch(partition: string, nodeId: string, epoch: number, atLeast: number): Promise<number | undefined>;
}

export interface SeatOptions {
  partition: string;
  nodeId: string;
  cluster: string;
  leases: LeaseApi;
  persister: Persister;
  store: JobStore;
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
 * Every node has a seat per partition: it chases the partition's Global lease and, while it holds
 * it, runs the Global actor and answers the partition's Global requests from the bus. On every
 * node it keeps the local engine's pause/throttle state current.
 */
export function seatBehavior(options: SeatOptions): Behavior<SeatMsg, void> {
  const { partition, nodeId, leases, bus, system, logger } = options;
  let leading: { epoch: number; ref: ActorRef<GlobalMsg, void>; off?: () => Promise<void>; renewedAt: number } | undefined;
  let lastControl = '';
  let lastVersion = 0;
  let lastEngine: ActorRef<EngineMsg, unknown> | undefined;
  let ctxRef: ActorContext<SeatMsg, void>;

  async function becomeLeader(epoch: number): Promise<void> {
    // A snapshot that cannot be read stops this partition with the persister's error (it names
    // the file and how to recover), rather than starting empty and forgetting keys and pauses.
    const loaded = await options.persister.load(partition);
    if (loaded && loaded.epoch >= epoch) {
      const raised = await leases.raiseEpoch(partition, nodeId, epoch, loaded.epoch + 1);
      if (raised === undefined) throw new Error(`lost the lease of partition "${partition}" while raising its epoch past the saved snapshot's`);
      logger.warn({ from: epoch, to: raised }, 'the saved Global snapshot is from a later epoch than the lease table; raised the lease epoch');
      epoch = raised;
    }
    if (options.localStateDir !== undefined && epoch > 1 && (loaded?.epoch ?? 0) < epoch - 1) warnStateElsewhere(epoch, loaded?.epoch);
    const snapshot = loaded ?? emptySnapshot(partition, epoch);
    const ref = system.spawn(
      globalBehavior({
        partition,
        epoch,
        snapshot,
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
      }),
      { name: globalName(partition) },
    );
    leading = { epoch, ref, renewedAt: Date.now() };
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
    if (leading?.ref === ref) leading.off = off;
    else await off();
    options.metrics?.globalLeader(partition, true);
    logger.info({ epoch, restored: loaded !== undefined }, 'took the partition lease; serving Global');
  }

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

  async function stepDown(release: boolean): Promise<void> {
    const was = leading;
    if (!was) return;
    leading = undefined;
    options.metrics?.globalLeader(partition, false);
    await was.off?.().catch(() => undefined);
    await was.ref.stop('stepping down');
    if (release) await leases.release(partition, nodeId, was.epoch).catch(() => undefined);
    logger.info({ epoch: was.epoch, released: release }, 'no longer serving Global');
  }

  async function tick(): Promise<void> {
    if (leading && !leading.ref.alive) {
      logger.warn('the Global actor stopped; giving up the lease');
      await stepDown(true);
      return;
    }
    if (leading) {
      if (Date.now() - leading.renewedAt < options.ttlMs / 3) return;
      const ok = await leases.renew(partition, nodeId, leading.epoch, options.ttlMs);
      if (ok) leading.renewedAt = Date.now();
      else {
        logger.warn({ epoch: leading.epoch }, 'lost the partition lease');
        await stepDown(false);
      }
      return;
    }
    const got = await leases.acquire(partition, nodeId, options.ttlMs);
    if (got) await becomeLeader(got.epoch);
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
            ctx.self.cast({ t: 'control', control: { paused: control.paused, throttles: control.throttles }, ...(version !== undefined ? { version } : {}) });
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
            await tick();
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
          if (leading?.ref.alive) leading.ref.cast({ t: 'control', row: msg.row });
          msg.after?.();
          return;
      }
    },
    async terminate() {
      await offControl?.().catch(() => undefined);
      await stepDown(true);
    },
  };
}
