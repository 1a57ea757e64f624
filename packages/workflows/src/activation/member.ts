import { describeError, type Logger } from '@partita/core';
import {
  subjects,
  WF_ABANDON_KIND,
  WF_ACTIVATED_KIND,
  WF_NOCACHE_KIND,
  WF_NOTICE_KINDS,
  WF_ROLL_CALL_KIND,
  activationNoticeProblem,
  activationRollCallProblem,
  type ActivationAnswer,
  type ActivationNotice,
  type ActivationRollCall,
} from '@partita/protocol';
import type { Bus } from '@partita/nats';
import { inflightActivations } from './activate.js';

export interface ActivationMemberOptions {
  bus: Bus;
  cluster: string;
  nodeId: string;
  logger: Logger;
  /**
   * Stop trusting the cached active version of `appId`: read it from Postgres on every use until it
   * is `untilVersion`, then cache it again. The ack goes out once this resolved (a throw: no ack, and
   * the activator retries or gives up without flipping).
   */
  onNocache(appId: string, untilVersion: string): unknown;
  /** `version` is active now (flipped in Postgres). Optional: an executor in nocache mode sees it on its next read anyway. */
  onActivated?(appId: string, version: string): unknown;
  /**
   * The activation to `untilVersion` ended without a flip (a round failed, the flip threw, or the
   * activator went silent for the notice's expiresInMs): read the active version again and cache it.
   */
  onAbandon?(appId: string, untilVersion: string): unknown;
  /**
   * Called when the member starts and after every reconnect of the bus, once activations under way
   * have been passed to onNocache: read every app's active version from Postgres now. Whatever this
   * node heard before (or missed while away) is stale by then; that is how a node that starts or
   * reconnects during an activation ends on the new version.
   */
  onReconnect?(): unknown;
  /**
   * How long a start or reconnect waits for activators' answers, in ms (with none running it returns
   * at once). Default 500. An answer later than this is missed; the member then hears `activated`.
   */
  inflightDelayMs?: number;
}

export interface ActivationMember {
  /** Apps this node is in nocache mode for, with the version it waits for. */
  nocache(): Map<string, string>;
  /** Unsubscribes; pending nocache timers are cleared. Idempotent. */
  stop(): Promise<void>;
}

interface Nocache {
  activation: string;
  version: string;
  timer: NodeJS.Timeout;
  /** The executor's switch (onNocache): a nocache is acknowledged only once it has succeeded. */
  entered: Promise<unknown>;
}

/**
 * A node's part in workflow version activation: answers the activation roll call, passes `nocache`,
 * `activated` and `abandon` to the executor's hooks and acknowledges them. At start and after each
 * reconnect it subscribes first, then asks running activators what is under way (entering nocache
 * for each), then calls onReconnect — in that order, so no activation can fall between what it
 * heard and what it read. Malformed messages are logged (once a minute per kind) and dropped.
 */
export async function startActivationMember(options: ActivationMemberOptions): Promise<ActivationMember> {
  const { bus, cluster, nodeId } = options;
  const logger = options.logger.child({ component: 'wf-activation', node: nodeId });
  const inflightDelayMs = options.inflightDelayMs ?? 500;
  const modes = new Map<string, Nocache>();
  /** The last activation per app whose `activated` was handled. */
  const activated = new Map<string, string>();
  const warned = new Map<string, number>();
  let stopped = false;
  const malformed = (kind: string, why: string) => {
    const now = Date.now();
    if (now - (warned.get(kind) ?? 0) < 60_000) return;
    warned.set(kind, now);
    logger.warn({ kind, why }, 'dropped a malformed workflow activation message (logged once a minute per kind)');
  };
  const ack = (activation: string): ActivationAnswer => ({ node: nodeId, activation });

  // A repeat of the activation's nocache (the activator repeats it to members it has no ack from, and
  // a reconnect's sync may have entered it first) waits for the same switch, not a second one. A switch
  // that failed leaves no mode behind: were it kept, the next nocache of that activation would be
  // acknowledged as if the executor had switched, and the activator would flip past a node still
  // caching the old version (seen as a run-activation failure, 1 run in 4 with four at once).
  const enterNocache = (activation: string, app: string, version: string, expiresInMs: number): Promise<unknown> => {
    const prior = modes.get(app);
    if (prior?.activation === activation) return prior.entered;
    if (prior) clearTimeout(prior.timer);
    const timer = setTimeout(() => {
      if (modes.get(app)?.activation !== activation) return;
      modes.delete(app);
      logger.warn({ app, version, activation }, 'activation went silent past its nocache time; reading the active version again');
      void settle(() => options.onAbandon?.(app, version), 'onAbandon');
    }, expiresInMs);
    timer.unref();
    const entered = (async () => options.onNocache(app, version))();
    const mode: Nocache = { activation, version, timer, entered };
    modes.set(app, mode);
    entered.catch(() => {
      if (modes.get(app) !== mode) return;
      clearTimeout(timer);
      modes.delete(app);
    });
    return entered;
  };
  const leave = (app: string, activation: string): boolean => {
    const mode = modes.get(app);
    if (!mode || mode.activation !== activation) return false;
    clearTimeout(mode.timer);
    modes.delete(app);
    return true;
  };
  const settle = async (fn: () => unknown, hook: string) => {
    try {
      await fn();
    } catch (err) {
      logger.warn({ err: describeError(err).message, hook }, 'activation hook failed');
    }
  };

  const offs: (() => Promise<void>)[] = [];
  offs.push(
    await bus.subscribe(
      subjects.wfRollCall(cluster),
      (data: ActivationRollCall, msg) => {
        const problem = activationRollCallProblem(data);
        if (problem) return malformed(msg.kind, problem);
        return msg.expectsReply ? ack(data.activation) : undefined;
      },
      { kinds: [WF_ROLL_CALL_KIND] },
    ),
  );
  offs.push(
    await bus.subscribe(
      subjects.wfActivate(cluster),
      async (data: ActivationNotice, msg) => {
        const problem = activationNoticeProblem(msg.kind, data);
        if (problem) return malformed(msg.kind, problem);
        // The activator repeats a notice to members it has no ack from: a repeat is acked once the
        // switch succeeded, not acted on twice (enterNocache).
        if (msg.kind === WF_NOCACHE_KIND) {
          await enterNocache(data.activation, data.app, data.version, data.expiresInMs!);
          return ack(data.activation);
        }
        if (msg.kind === WF_ACTIVATED_KIND) {
          leave(data.app, data.activation);
          if (activated.get(data.app) !== data.activation) {
            activated.set(data.app, data.activation);
            await options.onActivated?.(data.app, data.version);
          }
          return ack(data.activation);
        }
        if (msg.kind === WF_ABANDON_KIND && leave(data.app, data.activation)) {
          await settle(() => options.onAbandon?.(data.app, data.version), 'onAbandon');
        }
        return undefined;
      },
      { kinds: WF_NOTICE_KINDS },
    ),
  );

  let syncing: Promise<void> | undefined;
  let again = false;
  const sync = (): Promise<void> => {
    if (syncing) {
      again = true;
      return syncing;
    }
    syncing = (async () => {
      do {
        again = false;
        const under = await inflightActivations(bus, cluster, inflightDelayMs, logger);
        for (const a of under) {
          if (a.phase === 'rollcall' || stopped) continue;
          if (modes.get(a.app)?.activation === a.activation) continue;
          await settle(() => enterNocache(a.activation, a.app, a.version, a.expiresInMs), 'onNocache');
        }
        if (!stopped) await settle(() => options.onReconnect?.(), 'onReconnect');
      } while (again && !stopped);
    })().finally(() => (syncing = undefined));
    return syncing;
  };
  const offStatus = bus.onStatus((status) => {
    if (status === 'reconnected' || status === 'connected') void sync();
  });
  offs.push(async () => offStatus());
  await sync();

  let done: Promise<void> | undefined;
  return {
    nocache: () => new Map([...modes].map(([app, m]) => [app, m.version])),
    stop() {
      done ??= (async () => {
        stopped = true;
        for (const m of modes.values()) clearTimeout(m.timer);
        modes.clear();
        await Promise.all(offs.map((off) => off().catch((e) => logger.debug({ err: describeError(e).message }, 'unsubscribe failed'))));
      })();
      return done;
    },
  };
}
