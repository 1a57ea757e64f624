/** Test support shared by the bus test files (not a test file itself). */
import { randomBytes } from 'node:crypto';
import type { Logger } from '@partita/core';
import type { BusBase } from '../src/index.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

export function randomCluster(): string {
  return `t${randomBytes(5).toString('hex')}`;
}

/** Polls until `check` returns truthy; throws with `what` after timeoutMs. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 5000, everyMs = 10): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v;
    if (Date.now() > end) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

export interface LogLine {
  level: string;
  fields: Record<string, unknown>;
  msg: string;
}

/** A Logger that records what it is given (only the methods the bus uses are meaningful). */
export function captureLogger(): { logger: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const at =
    (level: string) =>
    (a?: unknown, b?: unknown): void => {
      if (typeof a === 'string') lines.push({ level, fields: {}, msg: a });
      else lines.push({ level, fields: (a ?? {}) as Record<string, unknown>, msg: String(b ?? '') });
    };
  const make = (): Logger =>
    ({
      level: 'debug',
      child: () => make(),
      trace: at('trace'),
      debug: at('debug'),
      info: at('info'),
      warn: at('warn'),
      error: at('error'),
      fatal: at('fatal'),
      isLevelEnabled: () => true,
    }) as unknown as Logger;
  return { logger: make(), lines };
}

/** Sum of inbound drops: received must equal delivered + this. */
export function inboundDrops(bus: BusBase): number {
  const d = bus.stats().dropped;
  return d.malformed + d.version + d.unknownKind + d.late + d.unsubscribed;
}

/** A network of buses for one test: n buses that see each other, and a way to inject raw bytes. */
export interface Network {
  cluster: string;
  /** Creates a bus on this network (closed by close()). */
  bus(opts?: { logger?: Logger }): Promise<BusBase>;
  /** Publishes bytes as they are, not through a Bus (for NATS: a raw client connection). */
  rawPublish(subject: string, bytes: Uint8Array): Promise<void>;
  close(): Promise<void>;
}

export type NetworkFactory = () => Promise<Network>;

/** A network whose server can be taken away and brought back. */
export interface OutageNetwork extends Network {
  down(): Promise<void>;
  up(): Promise<void>;
}
