/** What a handler learns about the message besides its data. */
export interface MessageInfo {
  /** The concrete subject the message was published to (never a pattern). */
  subject: string;
  /** The envelope kind given to publish/request/gather. */
  kind: string;
  /** Wire version of the envelope. */
  version: number;
  /** True when the sender waits for a reply (request/gather): the handler's return value is sent back. */
  expectsReply: boolean;
}

/**
 * A subscription handler. For plain publishes the return value is ignored. For request/gather the
 * (awaited) return value is the reply; a throw travels back to the requester as a named error.
 * Handlers are invoked in arrival order but async handlers are not awaited before the next
 * message is delivered (use an actor mailbox when order of completion matters).
 */
export type Handler<T = any> = (data: T, msg: MessageInfo) => unknown;

export type Unsubscribe = () => Promise<void>;

export interface SubscribeOptions {
  /** Queue group: each message goes to one member of the group (per group), not to all. */
  queue?: string;
  /**
   * Kinds this subscriber understands. Messages of any other kind are dropped and counted as
   * `unknownKind` instead of reaching the handler. Omit to accept every kind.
   */
  kinds?: readonly string[];
}

export interface RequestOptions {
  /** How long to wait for the reply; rejects TimeoutError after that. */
  timeoutMs: number;
}

export interface GatherOptions {
  /** How long to collect replies. */
  delayMs: number;
  /** Stop early once this many replies have arrived. */
  max?: number;
}

/**
 * `connected`: a bus that started without a connection has connected for the first time.
 * `disconnected`: the connection dropped (publish drops, request/gather fail fast).
 * `reconnected`: back; subscriptions are live again. `closed`: close() finished.
 */
export type BusStatus = 'connected' | 'disconnected' | 'reconnected' | 'closed';

/** Why a message was dropped. Inbound: malformed, version, unknownKind, late, unsubscribed. Outbound: disconnected, closed. */
export interface DropCounters {
  /** Inbound bytes that are not a valid envelope (undecodable, wrong field types, ...). */
  malformed: number;
  /** Inbound envelope of a newer wire version than this node speaks. */
  version: number;
  /** Inbound envelope whose kind the subscription did not declare in `kinds`. */
  unknownKind: number;
  /** Reply that arrived after its request timed out / its gather ended. */
  late: number;
  /** Message that was already on its way when the subscription was removed. */
  unsubscribed: number;
  /** Outbound message not sent because the bus was not connected. */
  disconnected: number;
  /** Outbound message not sent because the bus was closed. */
  closed: number;
}

/**
 * Counters since the bus was created. Inbound messages always add up:
 * `received = delivered + dropped.malformed + dropped.version + dropped.unknownKind + dropped.late + dropped.unsubscribed`.
 */
export interface BusStats {
  /** Messages handed to the transport: publishes, requests, gathers and replies. */
  published: number;
  /** Messages that arrived: on subscriptions and as replies. */
  received: number;
  /** Received messages that reached a handler or resolved a request/gather. */
  delivered: number;
  /** Handler invocations that threw or rejected (for requests: errors sent back). */
  handlerErrors: number;
  /** Number of times the connection came back after dropping. */
  reconnects: number;
  dropped: DropCounters;
}

/**
 * The message bus. Everything else talks to NATS (or the in-process stand-in) only through this.
 * Payloads are msgpackr envelopes `{ v, k, d }` (see @partita/core encode/decode).
 */
export interface Bus {
  /** Cluster name; subjects are built with `subjects.*(bus.cluster, ...)`. */
  readonly cluster: string;
  /** True while messages can flow. */
  readonly connected: boolean;
  /**
   * Fire-and-forget. Never throws because the bus is away (the message is dropped, counted and a
   * rate-limited warning logged); throws ValidationError for an invalid subject/kind, data msgpack
   * cannot encode, or a message larger than the server's max payload. Returns whether the message
   * was handed to the transport (false: dropped).
   */
  publish(subject: string, kind: string, data?: unknown): boolean;
  /**
   * Subscribes to a subject or NATS pattern (`*` one token, `>` the rest). Resolves once the
   * subscription is live at the server (or immediately when disconnected: it becomes live on
   * connect). The returned function unsubscribes; after it is called the handler is not invoked again.
   */
  subscribe<T = any>(pattern: string, handler: Handler<T>, opts?: SubscribeOptions): Promise<Unsubscribe>;
  /**
   * Request/reply: resolves with the first reply's data. Rejects TimeoutError, NoRespondersError
   * (nobody subscribed), BusUnavailableError (not connected, or the connection dropped while
   * waiting), or the responder's error (same class and message when it is a Partita error,
   * RemoteError otherwise).
   */
  request<R = any>(subject: string, kind: string, data: unknown, opts: RequestOptions): Promise<R>;
  /**
   * Scatter-gather: publishes once and collects every reply for `delayMs` (or until `max`).
   * Replies that are errors are skipped. Resolves [] at once when nobody is subscribed.
   * Rejects BusUnavailableError when not connected or when the connection drops meanwhile.
   */
  gather<R = any>(subject: string, kind: string, data: unknown, opts: GatherOptions): Promise<R[]>;
  /** Status changes; returns a function that removes the listener. */
  onStatus(listener: (status: BusStatus) => void): () => void;
  stats(): BusStats;
  /** Stops everything; pending requests reject with BusUnavailableError. Idempotent. */
  close(): Promise<void>;
}
