import type { ActorRef } from '@partita/actors';
import type { Logger } from '@partita/core';
import { subjects, type Bus } from '@partita/nats';
import type { EngineMsg } from './engine.js';

export interface QuorumOptions {
  bus: Bus;
  cluster: string;
  nodeId: string;
  partitions: Record<string, { queues: Record<string, { concurrency: number }> }>;
  engines: () => Map<string, ActorRef<EngineMsg, unknown> | undefined>;
  logger: Logger;
}

/**
 * A node's membership in the quorum: the bus subscriptions that turn cluster messages into
 * messages to its engines. Returns a function that unsubscribes everything.
 */
export async function startQuorumMember(options: QuorumOptions): Promise<() => Promise<void>> {
  const { bus, cluster, engines } = options;
  const offs: (() => Promise<void>)[] = [];
  for (const partition of Object.keys(options.partitions)) {
    // Wake-ups: an enqueue anywhere in the cluster makes this node's idle engine claim at once.
    offs.push(
      await bus.subscribe(subjects.wakePattern(cluster, partition), (_data, msg) => {
        const queue = subjects.parseWake(msg.subject)?.queue;
        engines().get(partition)?.cast({ t: 'wake', ...(queue ? { queues: [queue] } : {}) });
      }, { kinds: ['wake'] }),
    );
  }
  return async () => {
    await Promise.all(offs.map((off) => off()));
  };
}
