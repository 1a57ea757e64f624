import type { ActorContext, ActorRef, Behavior } from '@partita/actors';
import { describeError, type Logger } from '@partita/core';
import type { JobStore } from '@partita/postgres';
import type { EngineMsg } from './engine/messages.js';
import type { Metrics } from './metrics.js';

export interface LeaseKeeperOptions {
  nodeId: string;
  store: JobStore;
  logger: Logger;
  leaseMs: number;
  heartbeatMs: number;
  /** How often expired leases (of any node) are looked for. */
  rescueMs: number;
  maintenanceMs: number;
  retentionDays: number;
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

type Msg = { t: 'beat' } | { t: 'rescue' } | { t: 'maintain' };

/**
 * Node-wide: renews the leases of every job this node holds in one statement, rescues jobs whose
 * node died, and keeps the history partitions (create ahead, drop past retention).
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
    const { renewed, cancelRequested } = await store.heartbeat(nodeId, options.leaseMs, ids, await options.info());
    options.metrics?.leasesHeld(renewed.length);
    const renewedSet = new Set(renewed);
    const cancelSet = new Set(cancelRequested);
    for (const [, ref, list] of held) {
      ref.cast({ t: 'leases', checked: list, renewed: renewedSet, cancelRequested: list.filter((id) => cancelSet.has(id)) });
    }
  }

  async function rescue(): Promise<void> {
    const rescued = await store.rescueExpired();
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

  async function maintain(): Promise<void> {
    await store.ensureHistoryPartitions();
    const dropped = await store.pruneHistory(options.retentionDays);
    if (dropped.length) logger.info({ dropped }, 'dropped history partitions past retention');
    await store.pruneRateBuckets();
  }

  return {
    init(ctx) {
      self = ctx;
      ctx.sendEvery(options.heartbeatMs, { t: 'beat' });
      ctx.sendEvery(options.rescueMs, { t: 'rescue' });
      ctx.sendEvery(options.maintenanceMs, { t: 'maintain' });
      ctx.self.cast({ t: 'maintain' });
    },
    handle(msg) {
      // Rounds run off the mailbox so a slow Postgres never stacks timer messages behind them.
      if (msg.t === 'beat') retryBeat = undefined;
      const work = msg.t === 'beat' ? beat : msg.t === 'rescue' ? rescue : maintain;
      void once(msg.t, work);
    },
  };
}
