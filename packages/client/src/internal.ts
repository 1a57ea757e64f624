/**
 * `@partita/client/internal`: what only a Partita node needs of a client (nats.js's `internal_mod`
 * pattern). Programs use `@partita/client`; this entry point is not part of the public API and may
 * change in any release.
 *
 * The node builds the client over its own store and bus, and installs hooks so that work its client
 * enqueues, hands off, cancels or pauses reaches its own engines at once. Going through these
 * functions instead of the client's properties lets those properties leave the public surface
 * without the node changing.
 */
import type { Bus } from '@partita/nats';
import type { ClaimedJob, NewJob } from '@partita/postgres';
import type { IdleAdvert } from '@partita/protocol';
import type { Client, ClientHooks, NodeClientStore } from './client.js';

export { Client, type ClientHooks } from './client.js';

/** The store the client reads and writes (the node's own, for a node's client). */
export function clientStore(client: Client): NodeClientStore {
  return client.store;
}

/** The client's bus; undefined for a client without one. */
export function clientBus(client: Client): Bus | undefined {
  return client.bus;
}

/** Replaces the client's hooks (a node installs them once, on its own client). */
export function installClientHooks(client: Client, hooks: ClientHooks): void {
  client.hooks = hooks;
}

/**
 * Wakes the engines of these queues after jobs were enqueued outside the client's own calls (in a
 * transaction of a layer above jobs): the node's own engines through its hooks, other nodes over the
 * bus, or by a Postgres notification without one — as the client's enqueue does.
 */
export function clientWake(client: Client, partition: string, queues: Set<string>): void | Promise<void> {
  return client.wake(partition, queues);
}

/**
 * An idle engine that advertised a free slot for this job's queue lately (the slot is then counted
 * as used), or undefined: the job goes to the queue. Not for jobs with a key or a later start. A
 * layer above jobs that gets one stores the job as that node's running attempt in its own
 * transaction (tx.enqueueLeased with `target.node` and `target.leaseMs`) and, once committed, hands
 * it over with clientHandOff: the node starts it with no wake-up and no claim.
 */
export function clientHandoffTarget(client: Client, partition: string, job: NewJob): IdleAdvert | undefined {
  return client.handoffTargetFor(partition, job);
}

/** Sends a committed hand-off (see clientHandoffTarget); one that cannot be sent goes back to the queue. */
export function clientHandOff(client: Client, target: IdleAdvert, job: ClaimedJob): Promise<void> {
  return client.sendHandoff(target, job);
}
