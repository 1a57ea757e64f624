import type { ActorContext, ActorRef, ActorSystem, Behavior } from '@partita/actors';
import { describeError, type Logger } from '@partita/core';
import type { AdminStore, EngineStore, LeaseStore, RescuedJob } from '@partita/postgres';
import { LeaderSeat } from './leadership/leader-seat.js';
import type { EngineMsg } from './engine/messages.js';
import type { Metrics } from './metrics.js';

export interface LeaseKeeperOptions {
  nodeId: string;
  /** Job leases (heartbeat, rescue) and history upkeep. */
  store: Pick<EngineStore, 'heartbeat' | 'rescueExpired' | 'rescueDeadNodes'> &
    Pick<AdminStore, 'ensureHistoryPartitions' | 'pruneHistory' | 'pruneRateBuckets' | 'jobsPages'>;
  logger: Logger;
  leaseMs: number;
  heartbeatMs: number;
  /**
   * How often the nodes table is read for nodes that stopped heartbeating (their expired jobs are
   * rescued); also the shortest period of the maintenance leader's sweep for every expired lease.
   */
  rescueMs: number;
  /** How often the maintenance leader keeps the history partitions (create ahead, drop past retention). */
  maintenanceMs: number;
  retentionDays: number;
  /** Where the `maintenance` lease is held: one node of the cluster does the maintenance. */
  leases: LeaseStore;
  system: ActorSystem;
  /** The maintenance lease's time to live (default 30 s): a dead maintainer is replaced within about this long. */
  maintenanceLeaseMs?: number;
  /** The engines of this node, by partition. */
  engines: () => Map<string, ActorRef<EngineMsg, unknown> | undefined>;
  /** What the heartbeat stores in the node's row of the nodes table (its roll-call profile). */
  info: () => Record<string, unknown> | Promise<Record<string, unknown>>;
  /** Wakes the engines of every node for these queues: rescued jobs, or jobs behind a freed execution key, wait there. */
  wake: (partition: string, queues: string[]) => void;
  metrics?: Metrics;
}

/** After a failed renewal the next try comes this soon (or at the heartbeat period, if shorter). */
const BEAT_RETRY_MS = 1000;

/**
 * The sweep for every expired lease reads every page of jobs (no index covers running jobs), so
 * the next one waits a second for each this many pages: on average it reads no more than that a
 * second. 1,000,000 queued jobs (fillfactor 45, migration 0015) are 37,057 pages, a scan 0.19-0.21 s
 * of its backend's CPU (~180,000 pages a second, from the OS cache past 128 MB of shared buffers):
 * a sweep every 37 s, about 0.55 % of a core (bench/README.md, eighteenth session). Counted in
 * pages rather than timed, so a loaded machine does not push the sweeps apart. Never sooner than
 * rescueMs.
 */
const SWEEP_PAGES_PER_SECOND = 1000;
/** However long the sweep takes, a lease a live node let go of is rescued within about this long. */
const SWEEP_MAX_INTERVAL_MS = 10 * 60_000;

/** The lease whose holder keeps the history partitions and prunes rate buckets, cluster-wide. */
export const MAINTENANCE_LEASE = 'maintenance';
const MAINTENANCE_LEASE_MS = 30_000;

type Msg = { t: 'beat' } | { t: 'rescue' } | { t: 'seat' };

/**
 * Node-wide: renews the leases of every job this node holds in one statement, rescues jobs whose
 * node died (every rescueMs: the nodes table first, jobs only for a node that stopped
 * heartbeating), and runs for the `maintenance` lease: its holder, one node of the cluster, keeps
 * the history partitions (create ahead, drop past retention) rather than every node running the
 * DDL, and sweeps jobs for every expired lease — those of a node that never had a row in the nodes
 * table, and those a live node let go of — at a cadence its cost sets.
 */
export function leaseKeeperBehavior(options: LeaseKeeperOptions): Behavior<Msg, void> {
  const { store, nodeId, logger } = options;
  const busy = new Set<Msg['t']>();
  let self!: ActorContext<Msg, void>;

  let retryBeat: (() => void) | undefined;
  /** A beat asked for while one was in flight (a roll call wants a profile from after its request). */
  let beatAgain = false;

  async function once(kind: Msg['t'], work: () => Promise<void>): Promise<void> {
    if (busy.has(kind)) {
      if (kind === 'beat') beatAgain = true;
      return; // the previous round is still waiting on Postgres
    }
    busy.add(kind);
    try {
      await work();
    } catch (err) {
      logger.warn({ err: describeError(err).message, task: kind }, 'lease keeper round failed; will retry');
      if (kind === 'beat') {
        options.metrics?.heartbeatFailed();
        // Engines stop claiming until a renewal succeeds; try again soon rather than a whole period later.
        for (const [, ref] of options.engines()) ref?.cast({ t: 'heartbeatFailed' });
        retryBeat ??= self.sendAfter(Math.min(options.heartbeatMs, BEAT_RETRY_MS), { t: 'beat' });
      }
    } finally {
      busy.delete(kind);
      if (kind === 'beat' && beatAgain) {
        beatAgain = false;
        self.self.cast({ t: 'beat' });
      }
    }
  }

  async function beat(): Promise<void> {
    const engines = [...options.engines()].filter((e): e is [string, ActorRef<EngineMsg, unknown>] => e[1]?.alive === true);
    const held = await Promise.all(engines.map(async ([p, ref]) => [p, ref, (await ref.call({ t: 'held' })) as string[]] as const));
    const ids = held.flatMap(([, , list]) => list);
    // A lease taken less than half a period ago is left as it is: most jobs of a busy node were
    // claimed since the last round and finish before the next, and renewing each was a row write per
    // job. The next round renews it with over leaseMs - 1.5 heartbeatMs still to run, so this is
    // done only where that leaves at least a whole period (the default 15 s / 5 s leaves 7.5 s).
    const renewWithinMs = options.leaseMs >= 2.5 * options.heartbeatMs ? options.leaseMs - options.heartbeatMs / 2 : undefined;
    const { renewed, cancelRequested } = await store.heartbeat(nodeId, options.leaseMs, ids, await options.info(), renewWithinMs);
    options.metrics?.leasesHeld(renewed.length);
    const renewedSet = new Set(renewed);
    const cancelSet = new Set(cancelRequested);
    for (const [, ref, list] of held) {
      ref.cast({ t: 'leases', checked: list, renewed: renewedSet, cancelRequested: list.filter((id) => cancelSet.has(id)) });
    }
  }

  // A node counts as stopped once its heartbeat is older than this, by its own profile's lease and
  // period when it stored them (rescue_dead_nodes), else by this node's: until then no lease it
  // renewed or took can have run out.
  const staleMs = Math.max(0, options.leaseMs - options.heartbeatMs);

  async function rescue(): Promise<void> {
    report(await store.rescueDeadNodes(staleMs));
  }

  function report(rescued: RescuedJob[]): void {
    if (rescued.length === 0) return;
    options.metrics?.rescued(rescued.filter((r) => !r.failed).length, rescued.filter((r) => r.failed).length);
    logger.warn({ jobs: rescued.length, failed: rescued.filter((r) => r.failed).length }, 'rescued jobs whose lease expired');
    // A requeued job is claimable again; a rescued job that held an execution key (requeued or
    // failed) freed it, so the jobs behind that key are too.
    const byPartition = new Map<string, Set<string>>();
    for (const r of rescued) {
      if (!r.failed || r.executionKey) byPartition.set(r.partition, (byPartition.get(r.partition) ?? new Set()).add(r.queue));
    }
    for (const [partition, queues] of byPartition) options.wake(partition, [...queues]);
  }

  const maintenanceLeaseMs = options.maintenanceLeaseMs ?? MAINTENANCE_LEASE_MS;
  const seat = new LeaderSeat({
    lease: MAINTENANCE_LEASE,
    nodeId,
    leases: options.leases,
    system: options.system,
    logger,
    ttlMs: maintenanceLeaseMs,
    tickMs: Math.max(50, Math.floor(maintenanceLeaseMs / 6)),
    name: 'maintenance',
    start: () =>
      maintenanceBehavior({
        store,
        logger: logger.child({ actor: 'maintenance' }),
        maintenanceMs: options.maintenanceMs,
        retentionDays: options.retentionDays,
        sweepMinMs: options.rescueMs,
        sweep: async () => report(await store.rescueExpired()),
      }),
  });

  return {
    init(ctx) {
      self = ctx;
      ctx.sendEvery(options.heartbeatMs, { t: 'beat' });
      ctx.sendEvery(options.rescueMs, { t: 'rescue' });
      ctx.sendEvery(Math.max(50, Math.floor(maintenanceLeaseMs / 6)), { t: 'seat' });
      ctx.self.cast({ t: 'seat' });
    },
    handle(msg) {
      // Rounds run off the mailbox so a slow Postgres never stacks timer messages behind them.
      if (msg.t === 'beat') retryBeat = undefined;
      const work = msg.t === 'beat' ? beat : msg.t === 'rescue' ? rescue : () => seat.tick();
      void once(msg.t, work);
    },
    async terminate() {
      // Released, so another node's keeper takes the maintenance over on its next tick.
      await seat.stop();
    },
  };
}

export interface MaintenanceOptions {
  store: Pick<AdminStore, 'ensureHistoryPartitions' | 'pruneHistory' | 'pruneRateBuckets' | 'jobsPages'>;
  logger: Logger;
  maintenanceMs: number;
  retentionDays: number;
  /** The sweep's shortest period (the first sweep, too, waits for its period by the size of jobs). */
  sweepMinMs: number;
  /** Rescues every expired lease (and reports what it rescued). */
  sweep: () => Promise<void>;
}

type MaintenanceMsg = { t: 'maintain' } | { t: 'sweep' } | { t: 'pace' };

/**
 * The maintenance leader's child: at start and every maintenanceMs, creates the history partitions
 * ahead, drops those past retention and prunes rate buckets; and sweeps for expired leases, the
 * next sweep a second per SWEEP_PAGES_PER_SECOND pages of jobs after the last (at least sweepMinMs,
 * at most SWEEP_MAX_INTERVAL_MS). Not fenced by the epoch: every step is idempotent (a sweep
 * locks the rows it rescues, skipping those another rescue holds), the lease only keeps the
 * cluster from running the same work on every node.
 */
export function maintenanceBehavior(options: MaintenanceOptions): Behavior<MaintenanceMsg, void> {
  const { store, logger } = options;
  /** Sets the next sweep by the size of jobs now (the first one too: a new leader does not sweep at once). */
  async function pace(ctx: ActorContext<MaintenanceMsg, void>): Promise<void> {
    let pages = 0;
    try {
      pages = await store.jobsPages();
    } catch (err) {
      logger.warn({ err: describeError(err).message }, 'reading the size of jobs failed; the next sweep comes at the shortest period');
    }
    ctx.sendAfter(Math.min(SWEEP_MAX_INTERVAL_MS, Math.max(options.sweepMinMs, (pages / SWEEP_PAGES_PER_SECOND) * 1000)), { t: 'sweep' });
  }
  async function sweep(ctx: ActorContext<MaintenanceMsg, void>): Promise<void> {
    try {
      await options.sweep();
    } catch (err) {
      logger.warn({ err: describeError(err).message }, 'sweep for expired leases failed; will retry');
    }
    await pace(ctx);
  }
  return {
    init(ctx) {
      ctx.sendEvery(options.maintenanceMs, { t: 'maintain' });
      ctx.self.cast({ t: 'maintain' });
      ctx.self.cast({ t: 'pace' });
    },
    async handle(msg, ctx) {
      if (msg.t === 'sweep') return sweep(ctx);
      if (msg.t === 'pace') return pace(ctx);
      try {
        await store.ensureHistoryPartitions();
        const dropped = await store.pruneHistory(options.retentionDays);
        if (dropped.length) logger.info({ dropped }, 'dropped history partitions past retention');
        await store.pruneRateBuckets();
      } catch (err) {
        // Kept alive (and the lease kept): the next round retries; the default partition takes rows meanwhile.
        logger.warn({ err: describeError(err).message }, 'history maintenance failed; will retry');
      }
    },
  };
}
