/**
 * The outputs pubsub waits for: one bus subscription per output subject, shared by every pubsub on
 * that bus (every app handle over one client), each message handed to the waiter of its workflow id.
 * A subscription per call cost a SUB, a flush round trip to the NATS server before the pub could
 * start, and an UNSUB; and n concurrent pubsubs of one topic each decoded all n outputs. A subject
 * nobody waits on is unsubscribed after LINGER_MS, so handles made per request leave nothing behind.
 */
import { decode, encode, type Logger } from '@partita/core';
import type { Bus } from '@partita/nats';
import type { EmitPayload } from './executor.js';
import { EVENT_KIND } from './subjects.js';

/** How long a subscription nobody waits on is kept for the next pubsub of its subject. */
const LINGER_MS = 30_000;

export interface Outcome {
  status: number;
  data: unknown;
}

interface Subject {
  /** Resolves once the subscription is live at the server (rejects when subscribing failed). */
  live: Promise<void>;
  off?: () => Promise<void>;
  waiters: Map<string, (o: Outcome) => void>;
  linger?: NodeJS.Timeout;
}

class Outputs {
  private readonly subjects = new Map<string, Subject>();

  constructor(private readonly bus: Bus) {}

  /**
   * Registers a waiter for workflow `id`'s output on `subject`. `live` resolves once the bus delivers
   * that subject (at once after the first pubsub of it); `stop` must be called when done waiting.
   */
  wait(subject: string, id: string, settle: (o: Outcome) => void, logger: Logger): { live: Promise<void>; stop: () => void } {
    let s = this.subjects.get(subject);
    if (!s) {
      const waiters = new Map<string, (o: Outcome) => void>();
      const entry: Subject = { waiters, live: Promise.resolve() };
      entry.live = this.bus
        .subscribe<EmitPayload>(
          subject,
          (p) => {
            if (p?.kind === 'output' && typeof p.id === 'string') waiters.get(p.id)?.({ status: p.status, data: p.data });
          },
          { kinds: [EVENT_KIND] },
        )
        .then(
          (off) => {
            entry.off = off;
          },
          (err: unknown) => {
            // Not subscribed: forget it, so the next pubsub tries again (this one falls back to Postgres).
            if (this.subjects.get(subject) === entry) this.subjects.delete(subject);
            logger.warn({ err, subject }, 'subscribing to workflow outputs failed; pubsub reads Postgres instead');
          },
        );
      this.subjects.set(subject, (s = entry));
    }
    const entry = s;
    if (entry.linger) {
      clearTimeout(entry.linger);
      entry.linger = undefined;
    }
    entry.waiters.set(id, settle);
    return {
      live: entry.live,
      stop: () => {
        if (entry.waiters.get(id) === settle) entry.waiters.delete(id);
        if (entry.waiters.size > 0 || this.subjects.get(subject) !== entry) return;
        entry.linger = setTimeout(() => {
          if (entry.waiters.size > 0 || this.subjects.get(subject) !== entry) return;
          this.subjects.delete(subject);
          void entry.live.then(() => entry.off?.()).catch(() => undefined);
        }, LINGER_MS);
        entry.linger.unref();
      },
    };
  }
}

const byBus = new WeakMap<Bus, Outputs>();

/** The shared output subscriptions of a bus. */
export function outputsOf(bus: Bus): Outputs {
  let o = byBus.get(bus);
  if (!o) byBus.set(bus, (o = new Outputs(bus)));
  return o;
}

/**
 * The pubsub waiters of this process, by schema and output subject: a node in the same process (the
 * client beside its node, as node.client) hands its outputs to them as it publishes them, once the
 * workflow's last transition committed, instead of them waiting for the bus to bring the message
 * back (a NATS round trip, and a turn of the event loop behind the engine's own work after the
 * commit). The bus's copy comes later and finds no waiter. Keyed by schema too: two stores in one
 * process may share a cluster name and a caller-given workflow id.
 */
const local = new Map<string, Map<string, (o: Outcome) => void>>();
const localKey = (schema: string, subject: string) => `${schema}\u0000${subject}`;

/** Registers a waiter for workflow `id`'s output on `subject` in this process; the returned function forgets it. */
export function waitLocally(schema: string, subject: string, id: string, settle: (o: Outcome) => void): () => void {
  const key = localKey(schema, subject);
  let waiters = local.get(key);
  if (!waiters) local.set(key, (waiters = new Map()));
  waiters.set(id, settle);
  const entry = waiters;
  return () => {
    if (entry.get(id) === settle) entry.delete(id);
    if (entry.size === 0 && local.get(key) === entry) local.delete(key);
  };
}

/**
 * Hands an output published on `subject` to its waiter in this process, if any, as the bus would
 * deliver it: a copy through the bus's codec, so the caller gets what a remote one would.
 */
export function deliverLocally(schema: string, subject: string, event: EmitPayload): void {
  // No waiter in this process (a node without pubsub callers beside it): no key built per output.
  if (event.kind !== 'output' || local.size === 0) return;
  const settle = local.get(localKey(schema, subject))?.get(event.id);
  if (!settle) return;
  const { status, data } = decode<EmitPayload>(encode(EVENT_KIND, event)).d;
  settle({ status, data });
}
