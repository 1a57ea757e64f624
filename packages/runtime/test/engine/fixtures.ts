/** Shared by the engine's unit tests: a fake clock, jobs, and a logger whose lines the test reads. */
import { createLogger, type Logger } from '@partita/core';
import type { ClaimedJob } from '@partita/postgres';

/** Time the test moves by hand: the pure engine modules read it through `now`. */
export class FakeClock {
  constructor(public now = 1_000_000) {}
  advance(ms: number): number {
    this.now += ms;
    return this.now;
  }
}

let seq = 0;
export function job(over: Partial<ClaimedJob> = {}): ClaimedJob {
  seq++;
  return {
    id: `job-${seq}`,
    partition: 'p',
    queue: 'q',
    type: 't',
    payload: { n: seq },
    priority: 0,
    attempt: 1,
    maxAttempts: 3,
    timeoutMs: null,
    queueKey: null,
    executionKey: null,
    cancelRequested: false,
    ...over,
  };
}

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

/** A real pino logger writing into `lines`. */
export function capturingLogger(): { log: Logger; lines: LogLine[] } {
  const lines: LogLine[] = [];
  const log = createLogger({ level: 'debug' }, { write: (s: string) => void lines.push(JSON.parse(s) as LogLine) });
  return { log, lines };
}
