import { BusUnavailableError, ValidationError } from '@partita/core';
import { NoRespondersError, type Bus } from '@partita/nats';
import { subjects, type GlobalRequest } from '@partita/protocol';

export const GLOBAL_REQUEST_TIMEOUT_MS = 5000;

/**
 * Sends a request to a partition's Global over the bus. While no node leads the partition (a
 * failover in progress), it retries until the deadline instead of failing at once.
 */
export async function requestGlobal<T = unknown>(
  bus: Bus | undefined,
  cluster: string,
  partition: string,
  request: GlobalRequest,
  timeoutMs = GLOBAL_REQUEST_TIMEOUT_MS,
): Promise<T> {
  if (!bus) {
    throw new BusUnavailableError(
      `Global of partition "${partition}" is out of reach: this client has no bus; connect() with nats: to reach the cluster`,
    );
  }
  const deadline = Date.now() + timeoutMs;
  let wait = 25;
  for (;;) {
    try {
      return await bus.request<T>(subjects.global(cluster, partition), request.op, request, {
        timeoutMs: Math.max(1, deadline - Date.now()),
      });
    } catch (err) {
      if (!isRetriable(err) || Date.now() + wait >= deadline) {
        if (err instanceof NoRespondersError) {
          throw new BusUnavailableError(
            `no node leads partition "${partition}" right now (its Global did not answer within ${timeoutMs} ms)`,
            { cause: err },
          );
        }
        throw err;
      }
      await new Promise((r) => setTimeout(r, wait));
      wait = Math.min(wait * 2, 250);
    }
  }
}

/** Failures that a later try may not meet: nobody leads yet, or the leader just stepped down. */
export function isRetriable(err: unknown): boolean {
  const code = (err as { code?: unknown })?.code;
  return err instanceof NoRespondersError || code === 'ACTOR_STOPPED' || code === 'STALE_EPOCH' || code === 'NOT_LEADER';
}

/** Roger.Partition.Global parity, per partition (client.global(partition)). */
export interface GlobalApi {
  cancelJob(id: string): Promise<boolean>;
  isCancelled(id: string): Promise<boolean>;
  queueKeyTaken(key: string): Promise<boolean>;
  releaseQueueKey(key: string): Promise<boolean>;
  executionKeyHeld(key: string): Promise<boolean>;
  releaseExecutionKey(key: string): Promise<boolean>;
  pausedQueues(): Promise<string[]>;
}

export function globalApi(send: <T>(request: GlobalRequest) => Promise<T>): GlobalApi {
  const key = (k: unknown, what: string) => {
    if (typeof k !== 'string' || k.length === 0) throw new ValidationError('must be a non-empty string', what);
    return k;
  };
  return {
    cancelJob: (id) => send({ op: 'cancelJob', id: key(id, 'id') }),
    isCancelled: (id) => send({ op: 'isCancelled', id: key(id, 'id') }),
    queueKeyTaken: (k) => send({ op: 'queueKeyTaken', key: key(k, 'queueKey') }),
    releaseQueueKey: (k) => send({ op: 'releaseQueueKey', key: key(k, 'queueKey') }),
    executionKeyHeld: (k) => send({ op: 'executionKeyHeld', key: key(k, 'executionKey') }),
    releaseExecutionKey: (k) => send({ op: 'releaseExecutionKey', key: key(k, 'executionKey') }),
    pausedQueues: () => send({ op: 'pausedQueues' }),
  };
}
