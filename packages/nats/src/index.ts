import type { Logger } from '@partita/core';
import { InProcessBus, type InProcessBroker } from './in-process.js';
import { connectNatsBus, type NatsBusOptions } from './nats-bus.js';
import type { Bus } from './types.js';

export type {
  Bus,
  BusStats,
  BusStatus,
  DropCounters,
  GatherOptions,
  Handler,
  MessageInfo,
  RequestOptions,
  SubscribeOptions,
  Unsubscribe,
} from './types.js';
export {
  BusBase,
  REPLY_KIND,
  ERROR_KIND,
  DEFAULT_CLUSTER,
  DEFAULT_MAX_PAYLOAD,
  type BusBaseOptions,
  type RawMessage,
  type RawSubscription,
} from './base.js';
export { InProcessBus, InProcessBroker, type InProcessBusOptions } from './in-process.js';
export { NatsBus, connectNatsBus, type NatsBusOptions } from './nats-bus.js';
export { NoRespondersError, RemoteError, registerErrorClass, serializeError, deserializeError, type WireError } from './errors.js';
export { subjects } from '@partita/protocol';
export { matchSubject, validateToken, validateSubject, validatePattern, isValidSubject, isValidPattern } from '@partita/protocol';

/**
 * The bus a node or client should use for a `nats` setting: a NATS URL (or list), NATS options,
 * or `false`/undefined for the in-process bus (single node, no NATS).
 */
export async function createBus(
  nats: string | string[] | NatsBusOptions | false | undefined,
  opts: { cluster?: string; logger?: Logger; broker?: InProcessBroker } = {},
): Promise<Bus> {
  const common = {
    ...(opts.cluster !== undefined ? { cluster: opts.cluster } : {}),
    ...(opts.logger !== undefined ? { logger: opts.logger } : {}),
  };
  if (nats === false || nats === undefined) {
    return new InProcessBus({ ...common, ...(opts.broker ? { broker: opts.broker } : {}) });
  }
  if (typeof nats === 'string' || Array.isArray(nats)) return connectNatsBus({ ...common, servers: nats });
  return connectNatsBus({ ...nats, ...common });
}
