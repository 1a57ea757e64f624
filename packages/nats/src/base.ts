import { randomBytes } from 'node:crypto';
import {
  BusUnavailableError,
  TimeoutError,
  ValidationError,
  WIRE_VERSION,
  childLogger,
  decode,
  describeError,
  isPromiseLike,
  encode,
  silentLogger,
  unpack,
  type Logger,
} from '@partita/core';
import { deserializeError, serializeError } from './errors.js';
import { NoRespondersError } from './errors.js';
import { isValidSubject, validatePattern, validateSubject, validateToken } from '@partita/protocol';
import type {
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
import { WarnLimiter } from './warn.js';

/** Kinds of the envelopes carrying replies to request/gather. */
export const REPLY_KIND = '$reply';
export const ERROR_KIND = '$error';

export const DEFAULT_CLUSTER = 'default';
export const DEFAULT_MAX_PAYLOAD = 1024 * 1024;
const MAX_KIND_LENGTH = 256;

/** A message as the transport hands it over. */
export interface RawMessage {
  subject: string;
  data: Uint8Array;
  reply?: string | undefined;
  /** The server's "no responders" status for a request (NATS 503). */
  noResponders?: boolean;
}

/** A subscription as the transport sees it. */
export interface RawSubscription {
  readonly id: number;
  readonly pattern: string;
  readonly queue: string | undefined;
  /** False once unsubscribed (or the bus closed): the transport must stop delivering. */
  active: boolean;
  deliver(msg: RawMessage): void;
}

export interface BusBaseOptions {
  /** Cluster name (a single subject token). Default `default`. */
  cluster?: string;
  logger?: Logger;
  /** Minimum interval between repeated warnings of the same kind. Default 60 s. */
  warnIntervalMs?: number;
  /** Prefix of reply subjects. Default `_INBOX`. */
  inboxPrefix?: string;
}

type InboundDrop = 'malformed' | 'version' | 'unknownKind' | 'late' | 'unsubscribed';

interface Pending {
  subject: string;
  reply(data: unknown): void;
  error(err: Error): void;
  noResponders(): void;
  malformed(err: unknown): void;
  /** The bus went away or closed. */
  fail(err: Error): void;
}

/** Is this undecodable envelope one of a newer version (rather than garbage)? */
function classifyUndecodable(bytes: Uint8Array): 'version' | 'malformed' {
  const first = bytes[0];
  // Only a msgpack map (fixmap, map16, map32) can be an envelope; skip a second parse of garbage.
  if (first === undefined || !((first >= 0x80 && first <= 0x8f) || first === 0xde || first === 0xdf)) return 'malformed';
  try {
    const value = unpack<unknown>(bytes);
    if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
      const v = (value as { v?: unknown }).v;
      if (typeof v === 'number' && Number.isInteger(v) && v > WIRE_VERSION) return 'version';
    }
  } catch {
    // garbage
  }
  return 'malformed';
}

const VALID_SUBJECT_CACHE = 4096;

/** The message without touching `stack` (formatting a stack is the expensive part of an error). */
function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

function validateKind(kind: unknown): string {
  if (typeof kind !== 'string' || kind.length === 0 || kind.length > MAX_KIND_LENGTH) {
    throw new ValidationError(`message kind must be a non-empty string of at most ${MAX_KIND_LENGTH} characters`, 'kind');
  }
  return kind;
}

function validateMs(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isFinite(value) || value <= 0) {
    throw new ValidationError(`must be a positive number of milliseconds, got ${String(value)}`, what);
  }
  return value;
}

/**
 * Everything that makes a Bus a Bus — envelopes, validation, counters, request/reply over a
 * muxed inbox, scatter-gather, status — on top of a minimal transport (publish bytes, subscribe
 * a pattern). NatsBus and InProcessBus differ only in the transport, so they behave the same.
 */
export abstract class BusBase implements Bus {
  readonly cluster: string;
  protected readonly log: Logger;
  protected readonly warner: WarnLimiter;
  /** Reply subjects are `<inbox>.<token>`; one subscription `<inbox>.*` receives them all. */
  protected readonly inbox: string;

  private readonly subs = new Map<number, RawSubscription>();
  private readonly validSubjects = new Set<string>();
  private nextSubId = 1;
  private nextToken = 1;
  private readonly pending = new Map<string, Pending>();
  private readonly listeners = new Set<(status: BusStatus) => void>();
  private isConnected = false;
  private closePromise: Promise<void> | undefined;
  protected isClosing = false;

  private readonly counters = {
    published: 0,
    received: 0,
    delivered: 0,
    handlerErrors: 0,
    reconnects: 0,
    dropped: { malformed: 0, version: 0, unknownKind: 0, late: 0, unsubscribed: 0, disconnected: 0, closed: 0 } as DropCounters,
  };

  protected constructor(opts: BusBaseOptions) {
    this.cluster = validateToken(opts.cluster ?? DEFAULT_CLUSTER, 'cluster');
    this.log = childLogger(opts.logger ?? silentLogger(), { component: 'bus', cluster: this.cluster });
    this.warner = new WarnLimiter(this.log, opts.warnIntervalMs ?? 60_000);
    const prefix = opts.inboxPrefix ?? '_INBOX';
    validateSubject(prefix, 'inboxPrefix');
    this.inbox = `${prefix}.${randomBytes(12).toString('hex')}`;
    const inboxSub: RawSubscription = {
      id: 0,
      pattern: `${this.inbox}.*`,
      queue: undefined,
      active: true,
      deliver: (msg) => this.onReply(msg),
    };
    this.subs.set(inboxSub.id, inboxSub);
  }

  // ------------------------------------------------------------------ transport hooks

  /**
   * Job events publish to a handful of subjects tens of thousands of times a second: a subject
   * checked once is remembered (bounded, so arbitrary user subjects cannot grow it without limit).
   */
  private checkSubject(subject: string): void {
    if (this.validSubjects.has(subject)) return;
    validateSubject(subject);
    if (this.validSubjects.size >= VALID_SUBJECT_CACHE) this.validSubjects.clear();
    this.validSubjects.add(subject);
  }

  /** Sends bytes. May throw when the transport cannot (counted as dropped.disconnected). */
  protected abstract transportPublish(subject: string, data: Uint8Array, reply?: string): void;
  /** Makes a subscription live, now or when the transport connects (see `subscriptions()`). */
  protected abstract transportSubscribe(sub: RawSubscription): void;
  protected abstract transportUnsubscribe(sub: RawSubscription): void;
  /** Resolves once earlier subscribes/publishes reached the server; never rejects. */
  protected abstract transportFlush(): Promise<void>;
  protected abstract transportClose(): Promise<void>;
  protected abstract maxPayload(): number;

  /** Every live subscription, including the reply inbox: for (re)attaching after connect. */
  protected subscriptions(): RawSubscription[] {
    return [...this.subs.values()];
  }

  /** Transports report connectivity here; going down fails every pending request/gather. */
  protected setConnected(connected: boolean, status?: BusStatus): void {
    const was = this.isConnected;
    this.isConnected = connected;
    if (was && !connected) {
      this.failPending((subject) => new BusUnavailableError(`waiting for a reply on "${subject}" (the connection dropped)`));
    }
    if (status === 'reconnected') this.counters.reconnects++;
    if (status) this.emit(status);
  }

  private emit(status: BusStatus): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(status);
      } catch (err) {
        this.log.warn({ err: describeError(err), status }, 'bus status listener threw; ignored');
      }
    }
  }

  private failPending(makeError: (subject: string) => Error): void {
    for (const p of [...this.pending.values()]) p.fail(makeError(p.subject));
  }

  // ------------------------------------------------------------------ Bus

  get connected(): boolean {
    return this.isConnected && !this.isClosing;
  }

  get closed(): boolean {
    return this.isClosing;
  }

  publish(subject: string, kind: string, data?: unknown): boolean {
    this.checkSubject(subject);
    validateKind(kind);
    const bytes = this.encodeOrThrow(kind, data);
    return this.send(subject, bytes, undefined, `publish "${kind}"`);
  }

  /**
   * Publishes bytes as they are, bypassing the envelope. For tests and diagnostics only (it is
   * how the malformed-message tests inject garbage); application code uses publish().
   */
  publishRaw(subject: string, bytes: Uint8Array, reply?: string): void {
    validateSubject(subject);
    this.send(subject, bytes, reply, 'publishRaw');
  }

  async subscribe<T = any>(pattern: string, handler: Handler<T>, opts: SubscribeOptions = {}): Promise<Unsubscribe> {
    validatePattern(pattern);
    if (typeof handler !== 'function') throw new ValidationError('handler must be a function', 'handler');
    const queue = opts.queue === undefined ? undefined : validateToken(opts.queue, 'queue group');
    const kinds = opts.kinds ? new Set(opts.kinds) : undefined;
    if (this.isClosing) throw new BusUnavailableError(`subscribe to "${pattern}" (the bus is closed)`);
    const sub: RawSubscription = {
      id: this.nextSubId++,
      pattern,
      queue,
      active: true,
      deliver: (msg) => this.onMessage(sub, msg, handler as Handler, kinds),
    };
    this.subs.set(sub.id, sub);
    this.transportSubscribe(sub);
    if (this.connected) await this.transportFlush();
    return async () => {
      if (!sub.active) return;
      sub.active = false;
      this.subs.delete(sub.id);
      if (!this.isClosing) this.transportUnsubscribe(sub);
    };
  }

  request<R = any>(subject: string, kind: string, data: unknown, opts: RequestOptions): Promise<R> {
    const what = `request "${kind}" to "${subject}"`;
    let bytes: Uint8Array;
    try {
      bytes = this.prepareAsk(subject, kind, data, what, () => validateMs(opts?.timeoutMs, 'timeoutMs'));
    } catch (err) {
      return Promise.reject(err);
    }
    const token = (this.nextToken++).toString(36);
    return new Promise<R>((resolve, reject) => {
      const finish = (settle: () => void): void => {
        if (!this.pending.delete(token)) return;
        clearTimeout(timer);
        settle();
      };
      const timer = setTimeout(() => finish(() => reject(new TimeoutError(what, opts.timeoutMs))), opts.timeoutMs);
      this.pending.set(token, {
        subject,
        reply: (d) => finish(() => resolve(d as R)),
        error: (e) => finish(() => reject(e)),
        noResponders: () => finish(() => reject(new NoRespondersError(subject))),
        malformed: (e) =>
          finish(() => reject(new ValidationError(`${what}: the reply is not a valid message (${describeError(e).message})`))),
        fail: (e) => finish(() => reject(e)),
      });
      if (!this.send(subject, bytes, `${this.inbox}.${token}`, what)) {
        finish(() => reject(new BusUnavailableError(what)));
      }
    });
  }

  gather<R = any>(subject: string, kind: string, data: unknown, opts: GatherOptions): Promise<R[]> {
    const what = `gather "${kind}" on "${subject}"`;
    let bytes: Uint8Array;
    try {
      bytes = this.prepareAsk(subject, kind, data, what, () => {
        validateMs(opts?.delayMs, 'delayMs');
        if (opts.max !== undefined && (!Number.isInteger(opts.max) || opts.max < 1)) {
          throw new ValidationError(`must be a positive integer, got ${String(opts.max)}`, 'max');
        }
      });
    } catch (err) {
      return Promise.reject(err);
    }
    const token = (this.nextToken++).toString(36);
    const results: R[] = [];
    return new Promise<R[]>((resolve, reject) => {
      const finish = (settle: () => void): void => {
        if (!this.pending.delete(token)) return;
        clearTimeout(timer);
        settle();
      };
      const timer = setTimeout(() => finish(() => resolve(results)), opts.delayMs);
      this.pending.set(token, {
        subject,
        reply: (d) => {
          results.push(d as R);
          if (opts.max !== undefined && results.length >= opts.max) finish(() => resolve(results));
        },
        error: (e) => this.log.debug({ err: describeError(e), subject }, 'gather: a responder replied with an error; skipped'),
        noResponders: () => finish(() => resolve(results)),
        malformed: () => undefined,
        fail: (e) => finish(() => reject(e)),
      });
      if (!this.send(subject, bytes, `${this.inbox}.${token}`, what)) {
        finish(() => reject(new BusUnavailableError(what)));
      }
    });
  }

  onStatus(listener: (status: BusStatus) => void): () => void {
    this.listeners.add(listener);
    return () => {
      this.listeners.delete(listener);
    };
  }

  stats(): BusStats {
    return { ...this.counters, dropped: { ...this.counters.dropped } };
  }

  close(): Promise<void> {
    this.closePromise ??= (async () => {
      this.isClosing = true;
      this.failPending((subject) => new BusUnavailableError(`waiting for a reply on "${subject}" (the bus was closed)`));
      for (const sub of this.subs.values()) sub.active = false;
      this.subs.clear();
      try {
        await this.transportClose();
      } catch (err) {
        this.log.debug({ err: describeError(err) }, 'error while closing the transport; ignored');
      }
      this.isConnected = false;
      this.emit('closed');
      this.listeners.clear();
    })();
    return this.closePromise;
  }

  // ------------------------------------------------------------------ internals

  /** What request and gather check before asking: arguments, then a usable bus; returns the encoded message. */
  private prepareAsk(subject: string, kind: string, data: unknown, what: string, checkOptions: () => void): Uint8Array {
    validateSubject(subject);
    validateKind(kind);
    checkOptions();
    if (this.isClosing) throw new BusUnavailableError(`${what} (the bus is closed)`);
    if (!this.isConnected) throw new BusUnavailableError(what);
    return this.encodeOrThrow(kind, data);
  }

  private encodeOrThrow(kind: string, data: unknown): Uint8Array {
    let bytes: Uint8Array;
    try {
      bytes = encode(kind, data);
    } catch (err) {
      throw new ValidationError(`data of a "${kind}" message cannot be encoded with msgpack (${describeError(err).message})`, 'data');
    }
    const max = this.maxPayload();
    if (bytes.length > max) {
      throw new ValidationError(
        `a "${kind}" message of ${bytes.length} bytes exceeds the server's max payload of ${max} bytes; ` +
          'send an id and keep the data in Postgres',
        'data',
      );
    }
    return bytes;
  }

  /** Hands bytes to the transport unless the bus is away; false when dropped. */
  private send(subject: string, bytes: Uint8Array, reply: string | undefined, what: string): boolean {
    if (this.isClosing) {
      this.counters.dropped.closed++;
      return false;
    }
    if (!this.isConnected) {
      this.counters.dropped.disconnected++;
      this.warner.warn(
        'unsent:disconnected',
        { subject },
        `${what} dropped: the bus is not connected (engines keep working by polling Postgres)`,
      );
      return false;
    }
    try {
      this.transportPublish(subject, bytes, reply);
    } catch (err) {
      this.counters.dropped.disconnected++;
      this.warner.warn('unsent:error', { subject, err: describeError(err).message }, `${what} dropped: the transport refused it`);
      return false;
    }
    this.counters.published++;
    return true;
  }

  private drop(reason: InboundDrop, msg: RawMessage, pattern: string, err?: unknown): void {
    this.counters.dropped[reason]++;
    if (reason === 'late' || reason === 'unsubscribed') {
      if (this.log.isLevelEnabled('debug')) this.log.debug({ subject: msg.subject, reason }, 'message dropped');
      return;
    }
    this.warner.warn(
      `drop:${reason}`,
      () => ({ subject: msg.subject, pattern, reason, bytes: msg.data.length, ...(err ? { err: errorMessage(err) } : {}) }),
      `dropped a ${reason} bus message (logged once per reason and interval; see bus.stats())`,
    );
  }

  private onMessage(sub: RawSubscription, msg: RawMessage, handler: Handler, kinds: Set<string> | undefined): void {
    this.counters.received++;
    if (!sub.active) {
      this.drop('unsubscribed', msg, sub.pattern);
      return;
    }
    let env: { v: number; k: string; d: unknown };
    try {
      env = decode(msg.data);
    } catch (err) {
      this.drop(classifyUndecodable(msg.data), msg, sub.pattern, err);
      return;
    }
    if (kinds && !kinds.has(env.k)) {
      this.drop('unknownKind', msg, sub.pattern, new ValidationError(`unknown message kind "${env.k}"`));
      return;
    }
    this.counters.delivered++;
    const reply = msg.reply;
    const info: MessageInfo = { subject: msg.subject, kind: env.k, version: env.v, expectsReply: reply !== undefined && reply !== '' };
    let result: unknown;
    try {
      result = handler(env.d, info);
    } catch (err) {
      this.handlerFailed(sub, info, reply, err);
      return;
    }
    if (isPromiseLike(result)) {
      result.then(
        (value) => {
          if (info.expectsReply) this.sendReply(reply!, value, info);
        },
        (err: unknown) => this.handlerFailed(sub, info, reply, err),
      );
    } else if (info.expectsReply) {
      this.sendReply(reply!, result, info);
    }
  }

  private handlerFailed(sub: RawSubscription, info: MessageInfo, reply: string | undefined, err: unknown): void {
    this.counters.handlerErrors++;
    if (info.expectsReply) {
      this.log.debug({ err: describeError(err), subject: info.subject, kind: info.kind }, 'responder threw; error sent back');
      this.sendEnvelope(reply!, ERROR_KIND, serializeError(err), info);
      return;
    }
    this.warner.warn(
      `handler:${sub.pattern}`,
      { err: describeError(err), subject: info.subject, kind: info.kind, pattern: sub.pattern },
      'bus message handler threw; the message is dropped and the subscription goes on',
    );
  }

  private sendReply(reply: string, value: unknown, info: MessageInfo): void {
    this.sendEnvelope(reply, REPLY_KIND, value, info);
  }

  private sendEnvelope(reply: string, kind: string, value: unknown, info: MessageInfo): void {
    if (this.isClosing) return;
    // A reply subject comes off the wire: a malformed one is dropped here, like any bad message.
    if (!isValidSubject(reply)) {
      this.warner.warn(
        'unsent:reply',
        { subject: info.subject, kind: info.kind },
        'a request carried an invalid reply subject; no reply sent',
      );
      return;
    }
    let bytes: Uint8Array;
    try {
      bytes = this.encodeOrThrow(kind, value);
    } catch (err) {
      // The reply itself cannot travel: tell the requester why instead of letting it time out.
      this.log.warn(
        { err: describeError(err), subject: info.subject, kind: info.kind },
        'reply cannot be encoded; sending an error instead',
      );
      bytes = encode(ERROR_KIND, serializeError(err));
    }
    this.send(reply, bytes, undefined, `reply to "${info.kind}" on "${info.subject}"`);
  }

  private onReply(msg: RawMessage): void {
    this.counters.received++;
    const token = msg.subject.slice(this.inbox.length + 1);
    const p = this.pending.get(token);
    if (!p) {
      this.drop('late', msg, `${this.inbox}.*`);
      return;
    }
    if (msg.noResponders) {
      this.counters.delivered++;
      p.noResponders();
      return;
    }
    let env: { v: number; k: string; d: unknown };
    try {
      env = decode(msg.data);
    } catch (err) {
      this.drop(classifyUndecodable(msg.data), msg, `${this.inbox}.*`, err);
      p.malformed(err);
      return;
    }
    if (env.k === REPLY_KIND) {
      this.counters.delivered++;
      p.reply(env.d);
    } else if (env.k === ERROR_KIND) {
      this.counters.delivered++;
      p.error(deserializeError(env.d, p.subject));
    } else {
      const err = new ValidationError(`unknown reply kind "${env.k}"`);
      this.drop('unknownKind', msg, `${this.inbox}.*`, err);
      p.malformed(err);
    }
  }
}
