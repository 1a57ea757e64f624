import { BusBase, DEFAULT_MAX_PAYLOAD, type BusBaseOptions, type RawMessage, type RawSubscription } from './base.js';
import { matchTokens } from '@partita/protocol';

interface BrokerSub {
  bus: InProcessBus;
  sub: RawSubscription;
  tokens: string[];
}

const EMPTY = new Uint8Array(0);

/**
 * The in-process stand-in for nats-server: buses attached to the same broker see each other's
 * messages with NATS semantics (wildcards, queue groups, no-responders, echo). Delivery is
 * always asynchronous: handlers never run inside publish. `setOnline(false)` simulates an outage.
 */
export class InProcessBroker {
  private readonly subs = new Map<RawSubscription, BrokerSub>();
  private readonly buses = new Set<InProcessBus>();
  private queue: { target: BrokerSub; msg: RawMessage }[] = [];
  private scheduled = false;
  private isOnline = true;

  get online(): boolean {
    return this.isOnline;
  }

  /**
   * Simulates the server going away (false) and coming back (true): every attached bus reports
   * disconnected/reconnected exactly like a NATS bus, messages in flight are lost, subscriptions
   * survive.
   */
  setOnline(online: boolean): void {
    if (online === this.isOnline) return;
    this.isOnline = online;
    if (!online) this.queue = [];
    for (const bus of [...this.buses]) bus.brokerStatus(online);
  }

  /** @internal */
  attach(bus: InProcessBus): void {
    this.buses.add(bus);
  }

  /** @internal */
  detach(bus: InProcessBus): void {
    this.buses.delete(bus);
    for (const [key, s] of this.subs) if (s.bus === bus) this.subs.delete(key);
  }

  /** @internal */
  add(bus: InProcessBus, sub: RawSubscription): void {
    this.subs.set(sub, { bus, sub, tokens: sub.pattern.split('.') });
  }

  /** @internal */
  remove(sub: RawSubscription): void {
    this.subs.delete(sub);
  }

  /** @internal */
  publish(subject: string, data: Uint8Array, reply?: string): void {
    if (!this.isOnline) throw new Error('in-process broker is offline');
    const targets = this.match(subject);
    if (targets.length === 0) {
      if (reply) {
        // NATS answers a request nobody listens to with a "no responders" status on the reply subject.
        for (const target of this.match(reply)) this.enqueue(target, { subject: reply, data: EMPTY, noResponders: true });
      }
      return;
    }
    for (const target of targets) this.enqueue(target, { subject, data, reply });
  }

  private match(subject: string): BrokerSub[] {
    const tokens = subject.split('.');
    const out: BrokerSub[] = [];
    let groups: Map<string, BrokerSub[]> | undefined;
    for (const s of this.subs.values()) {
      if (!matchTokens(s.tokens, tokens)) continue;
      if (s.sub.queue === undefined) {
        out.push(s);
      } else {
        groups ??= new Map();
        const g = groups.get(s.sub.queue);
        if (g) g.push(s);
        else groups.set(s.sub.queue, [s]);
      }
    }
    if (groups) {
      for (const members of groups.values()) out.push(members[Math.floor(Math.random() * members.length)]!);
    }
    return out;
  }

  private enqueue(target: BrokerSub, msg: RawMessage): void {
    this.queue.push({ target, msg });
    if (!this.scheduled) {
      this.scheduled = true;
      setImmediate(() => this.flush());
    }
  }

  private flush(): void {
    this.scheduled = false;
    const batch = this.queue;
    this.queue = [];
    for (const { target, msg } of batch) {
      // Like the NATS client, a subscription removed meanwhile never sees the message.
      if (!this.subs.has(target.sub) || !target.sub.active) continue;
      try {
        target.sub.deliver(msg);
      } catch {
        // deliver() never throws (handlers are guarded); belt and braces for the broker loop
      }
    }
  }
}

export interface InProcessBusOptions extends BusBaseOptions {
  /** Buses sharing a broker talk to each other; default: a private broker of its own. */
  broker?: InProcessBroker;
  /** Largest encoded message accepted, like NATS max_payload. Default 1 MiB. */
  maxPayload?: number;
}

/**
 * The bus of a single node running without NATS. Same semantics as NatsBus (both share BusBase),
 * messages still go through msgpack envelopes, handlers run asynchronously.
 */
export class InProcessBus extends BusBase {
  readonly broker: InProcessBroker;
  private readonly payloadLimit: number;

  constructor(opts: InProcessBusOptions = {}) {
    super(opts);
    this.broker = opts.broker ?? new InProcessBroker();
    this.payloadLimit = opts.maxPayload ?? DEFAULT_MAX_PAYLOAD;
    this.broker.attach(this);
    for (const sub of this.subscriptions()) this.broker.add(this, sub);
    this.setConnected(this.broker.online);
  }

  /** @internal called by the broker */
  brokerStatus(online: boolean): void {
    if (this.closed) return;
    this.setConnected(online, online ? 'reconnected' : 'disconnected');
  }

  protected transportPublish(subject: string, data: Uint8Array, reply?: string): void {
    this.broker.publish(subject, data, reply);
  }

  protected transportSubscribe(sub: RawSubscription): void {
    this.broker.add(this, sub);
  }

  protected transportUnsubscribe(sub: RawSubscription): void {
    this.broker.remove(sub);
  }

  protected transportFlush(): Promise<void> {
    return Promise.resolve();
  }

  protected async transportClose(): Promise<void> {
    this.broker.detach(this);
  }

  protected maxPayload(): number {
    return this.payloadLimit;
  }
}
