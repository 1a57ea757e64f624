/**
 * Postgres notifications for processes without the bus: a client with no NATS tells the nodes
 * that it enqueued jobs (so they claim within milliseconds instead of at their next poll) or
 * changed a partition's pause/throttle row (so they obey it at once). Nodes LISTEN on one channel
 * per schema; the bus stays the fast path between processes that have it.
 *
 * Payloads: `wake:<partition>:<queue>,<queue>…` (no queue list: every queue of the partition),
 * `control:<partition>`, and `rollcall` (every node stores its profile now, see nodes_seen.sql). Partition and queue names never contain `:` or `,` (NAME_PATTERN).
 */
import { createHash } from 'node:crypto';
import pg from 'pg';
import { describeError, silentLogger, type Logger } from '@partita/core';

/** Postgres refuses channel names longer than this (NAMEDATALEN - 1). */
const MAX_CHANNEL_BYTES = 63;
/** Notification payloads must stay under 8000 bytes; a longer queue list is sent as "every queue". */
const MAX_PAYLOAD_BYTES = 7900;
const RECONNECT_MIN_MS = 100;
const RECONNECT_MAX_MS = 5000;

/** The notification channel of a schema (the schema's name when it fits, else a digest of it). */
export function notifyChannel(schema: string): string {
  const plain = `partita_${schema}`;
  if (Buffer.byteLength(plain) <= MAX_CHANNEL_BYTES) return plain;
  return `partita_${createHash('sha1').update(schema).digest('hex').slice(0, 32)}`;
}

export function wakeNotice(partition: string, queues: Iterable<string>): string {
  const payload = `wake:${partition}:${[...queues].join(',')}`;
  return Buffer.byteLength(payload) <= MAX_PAYLOAD_BYTES ? payload : `wake:${partition}:`;
}

export function controlNotice(partition: string): string {
  return `control:${partition}`;
}

export const ROLL_CALL_NOTICE = 'rollcall';

export type Notice =
  | { kind: 'wake'; partition: string; queues: string[] | undefined }
  | { kind: 'control'; partition: string }
  | { kind: 'rollcall' };

/** Reads a payload of the schema channel; undefined for anything else (it is ignored). */
export function parseNotice(payload: string | undefined): Notice | undefined {
  if (!payload) return undefined;
  if (payload === ROLL_CALL_NOTICE) return { kind: 'rollcall' };
  const [kind, partition, queues] = payload.split(':');
  if (!partition) return undefined;
  if (kind === 'control') return { kind, partition };
  if (kind === 'wake') return { kind, partition, queues: queues ? queues.split(',').filter(Boolean) : undefined };
  return undefined;
}

export interface ChannelListenerOptions {
  /** How to connect (the job store's pool options do). */
  connection: pg.ClientConfig;
  /** The channel to LISTEN on. */
  channel: string;
  logger?: Logger;
  /** Each notification's payload (a throw is logged, not raised). */
  onPayload(payload: string | undefined): void;
  /**
   * The connection came back after a loss: notifications sent meanwhile are gone, so whatever they
   * would have triggered should be done now.
   */
  onReconnected?(): void;
  /** What is lost meanwhile, for the warning on a lost connection. */
  fallback?: string;
}

/**
 * One dedicated connection that LISTENs on a channel, reconnecting (100 ms doubling to 5 s)
 * whenever it is lost. It never throws at its owner: whoever uses it still works without it, at
 * its poll interval.
 */
export class ChannelListener {
  readonly channel: string;
  private readonly options: ChannelListenerOptions;
  private readonly logger: Logger;
  private client: pg.Client | undefined;
  private closed = false;
  private retryMs = RECONNECT_MIN_MS;
  private timer: NodeJS.Timeout | undefined;
  private everConnected = false;

  private constructor(options: ChannelListenerOptions) {
    this.options = options;
    this.channel = options.channel;
    this.logger = options.logger ?? silentLogger();
  }

  /** Starts listening; resolves after the first attempt (a failed one is retried in the background). */
  static async start(options: ChannelListenerOptions): Promise<ChannelListener> {
    const listener = new ChannelListener(options);
    await listener.connect();
    return listener;
  }

  async close(): Promise<void> {
    this.closed = true;
    clearTimeout(this.timer);
    const client = this.client;
    this.client = undefined;
    await client?.end().catch(() => undefined);
  }

  private async connect(): Promise<void> {
    if (this.closed) return;
    const client = new pg.Client({ ...this.options.connection, application_name: 'partita-listen' });
    let lost = false;
    const onLost = (err?: Error) => {
      if (lost) return;
      lost = true;
      if (this.client === client) this.client = undefined;
      client.end().catch(() => undefined);
      if (this.closed) return;
      const details = { channel: this.channel, err: err ? describeError(err).message : 'connection ended' };
      // Once per outage: the attempts that follow fail alike until Postgres is back.
      if (this.retryMs > RECONNECT_MIN_MS) this.logger.debug(details, 'reconnecting to Postgres for notifications failed; will retry');
      else
        this.logger.warn(
          details,
          `the Postgres notification connection was lost; reconnecting (until then, ${this.options.fallback ?? 'nodes poll'})`,
        );
      this.schedule();
    };
    client.on('error', onLost);
    client.on('end', () => onLost());
    client.on('notification', (msg) => {
      if (msg.channel !== this.channel) return;
      try {
        this.options.onPayload(msg.payload);
      } catch (err) {
        this.logger.warn({ err: describeError(err).message }, 'handling a Postgres notification failed');
      }
    });
    try {
      await client.connect();
      await client.query(`LISTEN "${this.channel}"`);
    } catch (err) {
      onLost(err as Error);
      return;
    }
    if (this.closed || lost) {
      await client.end().catch(() => undefined);
      return;
    }
    this.client = client;
    this.retryMs = RECONNECT_MIN_MS;
    if (this.everConnected) {
      this.logger.info({ channel: this.channel }, 'listening for Postgres notifications again');
      this.options.onReconnected?.();
    }
    this.everConnected = true;
  }

  private schedule(): void {
    if (this.closed || this.timer) return;
    const wait = this.retryMs;
    this.retryMs = Math.min(this.retryMs * 2, RECONNECT_MAX_MS);
    this.timer = setTimeout(() => {
      this.timer = undefined;
      void this.connect();
    }, wait);
    this.timer.unref();
  }
}

export interface NoticesOptions {
  /** How to connect (the job store's pool options do). */
  connection: pg.ClientConfig;
  schema: string;
  logger?: Logger;
  onNotice(notice: Notice): void;
  /**
   * The connection came back after a loss: notifications sent meanwhile are gone, so whatever they
   * would have triggered should be done now (claim, re-read control).
   */
  onReconnected?(): void;
}

/** The schema channel's listener: its payloads read as notices (anything else is ignored). */
export class Notices {
  private constructor(private readonly listener: ChannelListener) {}

  get channel(): string {
    return this.listener.channel;
  }

  /** Starts listening; resolves after the first attempt (a failed one is retried in the background). */
  static async start(options: NoticesOptions): Promise<Notices> {
    const { onNotice, onReconnected, schema, ...rest } = options;
    return new Notices(
      await ChannelListener.start({
        ...rest,
        channel: notifyChannel(schema),
        onPayload: (payload) => {
          const notice = parseNotice(payload);
          if (notice) onNotice(notice);
        },
        ...(onReconnected ? { onReconnected } : {}),
      }),
    );
  }

  close(): Promise<void> {
    return this.listener.close();
  }
}
