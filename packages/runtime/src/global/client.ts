import type { ActorRef, ActorSystem } from '@partita/actors';
import { TimeoutError } from '@partita/core';
import { isRetriable, requestGlobal } from '@partita/client';
import type { Bus } from '@partita/nats';
import type { Metrics } from '../metrics.js';
import type { GlobalMsg, GlobalRequest } from './global.js';

export const globalName = (partition: string) => `global:${partition}`;

/** Calls an actor that answers through a reply callback (so it can answer after a group commit). */
export function callGlobal(ref: ActorRef<GlobalMsg, void>, request: GlobalRequest, timeoutMs: number): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new TimeoutError(`Global ${request.op}`, timeoutMs)), timeoutMs);
    ref.cast({
      t: 'request',
      request,
      reply: {
        resolve: (v) => (clearTimeout(timer), resolve(v)),
        reject: (e) => (clearTimeout(timer), reject(e)),
      },
    });
  });
}

/**
 * How a node reaches its partition's Global: directly when it is the leader (no bus hop), otherwise
 * over the bus, retrying through a failover.
 */
export class GlobalClient {
  constructor(private readonly options: { partition: string; cluster: string; bus: Bus; system?: ActorSystem; timeoutMs: number; metrics?: Metrics }) {}

  async request<T = unknown>(request: GlobalRequest, timeoutMs = this.options.timeoutMs): Promise<T> {
    const started = performance.now();
    try {
      const result = await this.send<T>(request, timeoutMs);
      this.options.metrics?.globalCall(this.options.partition, request.op, true, performance.now() - started);
      return result;
    } catch (err) {
      this.options.metrics?.globalCall(this.options.partition, request.op, false, performance.now() - started);
      throw err;
    }
  }

  private async send<T>(request: GlobalRequest, timeoutMs: number): Promise<T> {
    const local = this.options.system?.whereis<GlobalMsg, void>(globalName(this.options.partition));
    if (local?.alive) {
      try {
        return (await callGlobal(local, request, timeoutMs)) as T;
      } catch (err) {
        if (!isRetriable(err)) throw err; // stepped down meanwhile: ask whoever leads now
      }
    }
    return requestGlobal<T>(this.options.bus, this.options.cluster, this.options.partition, request, timeoutMs);
  }
}
