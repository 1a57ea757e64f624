import {
  AuthorizationError,
  UserAuthenticationExpiredError,
  connect,
  credsAuthenticator,
  nkeyAuthenticator,
  type Authenticator,
  type Msg,
  type NatsConnection,
  type NodeConnectionOptions,
  type Subscription,
} from '@nats-io/transport-node';
import { BusUnavailableError, ConfigError, describeError } from '@partita/core';
import { BusBase, DEFAULT_MAX_PAYLOAD, type BusBaseOptions, type RawMessage, type RawSubscription } from './base.js';

/**
 * Options of connectNatsBus. Everything of the NATS client's ConnectionOptions passes through
 * (servers, user/pass, token, authenticator, tls, name, pingInterval, reconnectTimeWait,
 * inboxPrefix, ...) except the reconnect policy, which is fixed: reconnect forever.
 */
export interface NatsBusOptions
  extends Omit<NodeConnectionOptions, 'reconnect' | 'maxReconnectAttempts' | 'waitOnFirstConnect' | 'port'>,
    BusBaseOptions {
  /** An nkey seed (`SU...`), as text or bytes; signs the server's nonce. */
  nkey?: string | Uint8Array;
  /** Contents of a `.creds` file (JWT + nkey seed). */
  creds?: string | Uint8Array;
  /**
   * How often to retry when the server is down at start. Default: `reconnectTimeWait` (1000 ms).
   */
  connectRetryMs?: number;
  /**
   * Reject when the first connection attempt fails, instead of resolving a disconnected bus that
   * keeps trying in the background. For one-shot tools (CLI commands); nodes leave it false.
   */
  failFast?: boolean;
}

const DEFAULTS = {
  reconnectTimeWait: 1000,
  reconnectJitter: 200,
  // Half-open connections (a partition, not a closed socket) are noticed after pingInterval × maxPingOut.
  pingInterval: 10_000,
  maxPingOut: 3,
  timeout: 5000,
} as const;

const textEncoder = new TextEncoder();

function bytesOf(value: string | Uint8Array): Uint8Array {
  return typeof value === 'string' ? textEncoder.encode(value.trim()) : value;
}

function describeServers(servers: string | string[] | undefined): string {
  if (servers === undefined) return '127.0.0.1:4222';
  return (Array.isArray(servers) ? servers : [servers]).map((s) => s.replace(/\/\/[^@/]*@/, '//***@')).join(', ');
}

function isAuthError(err: unknown): boolean {
  for (let e: unknown = err, i = 0; e instanceof Error && i < 5; e = e.cause, i++) {
    if (e instanceof AuthorizationError || e instanceof UserAuthenticationExpiredError) return true;
    if (/authorization violation|authentication/i.test(e.message)) return true;
  }
  return false;
}

function buildConnectOptions(opts: NatsBusOptions): NodeConnectionOptions {
  const {
    nkey,
    creds,
    connectRetryMs: _retry,
    failFast: _failFast,
    cluster: _cluster,
    logger: _logger,
    warnIntervalMs: _warn,
    authenticator,
    ...rest
  } = opts;
  const auths: Authenticator[] = [];
  if (authenticator) auths.push(...(Array.isArray(authenticator) ? authenticator : [authenticator]));
  if (nkey !== undefined) auths.push(nkeyAuthenticator(bytesOf(nkey)));
  if (creds !== undefined) auths.push(credsAuthenticator(bytesOf(creds)));
  return {
    ...DEFAULTS,
    ...rest,
    ...(auths.length ? { authenticator: auths } : {}),
    reconnect: true,
    maxReconnectAttempts: -1,
    // We run the first-connect retry loop ourselves: with waitOnFirstConnect the client's connect()
    // promise stays pending until a server answers and cannot be cancelled by close().
    waitOnFirstConnect: false,
  };
}

/**
 * The Bus over NATS (@nats-io/transport-node v3). Create it with connectNatsBus().
 *
 * - Reconnects forever; the client resubscribes by itself, we report `reconnected` once the
 *   subscriptions are back at the server.
 * - While disconnected, publish drops (counted, rate-limited warning) instead of buffering, and
 *   request/gather reject BusUnavailableError at once.
 * - When the server is down at start, the bus starts disconnected and connects in the background.
 */
export class NatsBus extends BusBase {
  private nc: NatsConnection | undefined;
  private readonly natsSubs = new Map<RawSubscription, Subscription>();
  private readonly connectOptions: NodeConnectionOptions;
  private readonly retryMs: number;
  private readonly failFast: boolean;
  private readonly serversText: string;
  private lastMaxPayload = DEFAULT_MAX_PAYLOAD;
  /** Bumped on every disconnect so a late flush cannot mark a dropped connection as up. */
  private generation = 0;
  private retryTimer: NodeJS.Timeout | undefined;
  private wakeRetry: (() => void) | undefined;
  private loopRunning = false;

  /** Prefer connectNatsBus(), which also starts connecting. */
  constructor(opts: NatsBusOptions = {}) {
    super(opts);
    this.connectOptions = buildConnectOptions(opts);
    this.retryMs = opts.connectRetryMs ?? this.connectOptions.reconnectTimeWait ?? DEFAULTS.reconnectTimeWait;
    this.failFast = opts.failFast ?? false;
    this.serversText = describeServers(opts.servers);
  }

  /** The servers this bus connects to (credentials masked). */
  get servers(): string {
    return this.serversText;
  }

  /**
   * First connection attempt. Resolves connected, or — when the server is not there — resolves
   * disconnected and keeps trying in the background (unless failFast). Rejects ConfigError when
   * the server refuses the credentials (retrying would not help).
   */
  async start(): Promise<this> {
    if (this.nc || this.loopRunning) return this;
    let nc: NatsConnection;
    try {
      nc = await connect({ ...this.connectOptions });
    } catch (err) {
      if (isAuthError(err)) {
        throw new ConfigError([
          {
            path: 'nats',
            message: `NATS at ${this.serversText} refused the credentials (${describeError(err).message}); fix user/pass, token, nkey or creds`,
          },
        ]);
      }
      if (this.failFast) {
        throw new BusUnavailableError(`connecting to NATS at ${this.serversText}`, { cause: err });
      }
      this.log.warn(
        { servers: this.serversText, err: describeError(err).message },
        'NATS is not reachable; starting disconnected and retrying in the background (jobs are still picked up by polling Postgres)',
      );
      void this.connectLoop();
      return this;
    }
    if (this.closed) {
      await nc.close().catch(() => undefined);
      return this;
    }
    this.adopt(nc);
    this.setConnected(true);
    this.log.info({ server: nc.getServer() }, 'connected to NATS');
    return this;
  }

  private async connectLoop(): Promise<void> {
    if (this.loopRunning) return;
    this.loopRunning = true;
    try {
      while (!this.closed) {
        await new Promise<void>((resolve) => {
          this.wakeRetry = resolve;
          this.retryTimer = setTimeout(resolve, this.retryMs);
        });
        this.wakeRetry = undefined;
        this.retryTimer = undefined;
        if (this.closed) return;
        let nc: NatsConnection;
        try {
          nc = await connect({ ...this.connectOptions });
        } catch (err) {
          this.warner.warn('connect', { servers: this.serversText, err: describeError(err).message }, 'NATS still not reachable; retrying');
          continue;
        }
        if (this.closed) {
          await nc.close().catch(() => undefined);
          return;
        }
        this.adopt(nc);
        const gen = this.generation;
        await this.flushQuietly(nc);
        if (gen === this.generation && !this.closed && this.nc === nc) {
          this.log.info({ server: nc.getServer() }, 'connected to NATS');
          this.setConnected(true, 'connected');
        }
        return;
      }
    } finally {
      this.loopRunning = false;
    }
  }

  /** Takes a fresh connection into use: subscriptions, status and close watchers. */
  private adopt(nc: NatsConnection): void {
    this.nc = nc;
    this.natsSubs.clear();
    if (nc.info) this.lastMaxPayload = nc.info.max_payload;
    for (const sub of this.subscriptions()) this.attach(sub);
    void this.watchStatus(nc);
    void nc.closed().then((err) => {
      if (this.nc !== nc) return;
      this.nc = undefined;
      this.natsSubs.clear();
      this.generation++;
      if (this.closed) return;
      // The client gave up (e.g. authentication expired twice): start over with a new connection.
      this.log.error(
        { err: err ? describeError(err).message : undefined },
        'NATS connection closed by the client; reconnecting from scratch',
      );
      this.setConnected(false, 'disconnected');
      void this.connectLoop();
    });
  }

  private async watchStatus(nc: NatsConnection): Promise<void> {
    try {
      for await (const s of nc.status()) {
        if (this.nc !== nc) return;
        switch (s.type) {
          case 'disconnect':
            this.generation++;
            if (this.connected) {
              this.log.warn({ server: s.server }, 'disconnected from NATS; reconnecting (publishes are dropped meanwhile)');
              this.setConnected(false, 'disconnected');
            }
            break;
          case 'reconnect': {
            const gen = ++this.generation;
            if (nc.info) this.lastMaxPayload = nc.info.max_payload;
            // The client resent our SUBs on reconnect; once a PING/PONG went round they are live.
            void this.flushQuietly(nc).then(() => {
              if (gen !== this.generation || this.closed || this.nc !== nc || this.connected) return;
              this.log.info({ server: s.server }, 'reconnected to NATS');
              this.setConnected(true, 'reconnected');
            });
            break;
          }
          case 'error':
            this.warner.warn('nats:error', { err: describeError(s.error).message }, 'NATS reported an error');
            break;
          case 'ldm':
            this.log.info({ server: s.server }, 'NATS server entering lame duck mode; the client will move to another server');
            break;
          case 'staleConnection':
            this.log.warn('NATS connection is stale (no PONG); reconnecting');
            break;
          case 'slowConsumer':
            this.warner.warn('nats:slow', { subject: s.sub.getSubject(), pending: s.pending }, 'NATS slow consumer');
            break;
          default:
            break;
        }
      }
    } catch (err) {
      this.log.debug({ err: describeError(err) }, 'NATS status iterator ended');
    }
  }

  private flushQuietly(nc: NatsConnection, timeoutMs = 5000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    return Promise.race([
      nc.flush().catch(() => undefined),
      new Promise<void>((resolve) => {
        timer = setTimeout(resolve, timeoutMs);
      }),
    ]).finally(() => clearTimeout(timer));
  }

  private attach(sub: RawSubscription): void {
    const nc = this.nc;
    if (!nc || this.natsSubs.has(sub) || !sub.active) return;
    try {
      const ns = nc.subscribe(sub.pattern, {
        ...(sub.queue !== undefined ? { queue: sub.queue } : {}),
        callback: (err: Error | null, msg: Msg) => {
          if (err) {
            this.warner.warn(`sub:${sub.pattern}`, { pattern: sub.pattern, err: describeError(err).message }, 'NATS subscription error');
            return;
          }
          const raw: RawMessage = { subject: msg.subject, data: msg.data, reply: msg.reply };
          if (msg.data.length === 0 && msg.headers?.code === 503) raw.noResponders = true;
          sub.deliver(raw);
        },
      });
      this.natsSubs.set(sub, ns);
    } catch (err) {
      this.log.error({ pattern: sub.pattern, err: describeError(err).message }, 'NATS subscribe failed');
    }
  }

  protected transportPublish(subject: string, data: Uint8Array, reply?: string): void {
    const nc = this.nc;
    if (!nc) throw new BusUnavailableError(`publish to "${subject}"`);
    nc.publish(subject, data, reply ? { reply } : undefined);
  }

  protected transportSubscribe(sub: RawSubscription): void {
    this.attach(sub);
  }

  protected transportUnsubscribe(sub: RawSubscription): void {
    const ns = this.natsSubs.get(sub);
    this.natsSubs.delete(sub);
    try {
      ns?.unsubscribe();
    } catch {
      // connection already closed: nothing left to unsubscribe
    }
  }

  protected async transportFlush(): Promise<void> {
    if (this.nc) await this.flushQuietly(this.nc);
  }

  protected async transportClose(): Promise<void> {
    if (this.retryTimer) clearTimeout(this.retryTimer);
    this.wakeRetry?.();
    const nc = this.nc;
    this.nc = undefined;
    this.natsSubs.clear();
    if (nc) await nc.close();
  }

  protected maxPayload(): number {
    return this.nc?.info?.max_payload ?? this.lastMaxPayload;
  }
}

/**
 * Connects a NatsBus. Resolves when the first attempt is done: connected, or — if NATS is down —
 * disconnected with background retries (`bus.connected` tells which; onStatus reports `connected`
 * later). Rejects ConfigError on refused credentials, BusUnavailableError only with failFast.
 */
export async function connectNatsBus(opts: NatsBusOptions = {}): Promise<NatsBus> {
  return new NatsBus(opts).start();
}
