import type { ActorRef } from '@partita/actors';
import { TimeoutError } from '@partita/core';
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
