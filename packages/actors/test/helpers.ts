import type { TestFn } from 'ava';
import type { Logger } from '@partita/actors';

export const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));
export const tick = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

/** Polls `cond` on every event-loop turn until it holds; fails loudly instead of hanging. */
export async function waitFor(cond: () => boolean, what: string, timeoutMs = 2000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await tick();
  }
}

export interface LogEntry {
  level: 'debug' | 'info' | 'warn' | 'error';
  msg: string | undefined;
  obj: Record<string, unknown>;
  bindings: Record<string, unknown>;
}

/** A Logger that records every entry, for asserting what the library logs and at which level. */
export function memoryLogger(): Logger & { entries: LogEntry[] } {
  const entries: LogEntry[] = [];
  const make = (bindings: Record<string, unknown>): Logger => {
    const fn =
      (level: LogEntry['level']) =>
      (objOrMsg: object | string, msg?: string): void => {
        if (typeof objOrMsg === 'string') entries.push({ level, msg: objOrMsg, obj: {}, bindings });
        else entries.push({ level, msg, obj: objOrMsg as Record<string, unknown>, bindings });
      };
    return {
      debug: fn('debug'),
      info: fn('info'),
      warn: fn('warn'),
      error: fn('error'),
      child: (more) => make({ ...bindings, ...more }),
    };
  };
  return Object.assign(make({}), { entries });
}

/**
 * Records every unhandled rejection and uncaught exception of this test file's process and fails
 * the file if there was any. Returns the live list, for tests that check at a precise moment.
 */
export function guardProcess(test: TestFn): unknown[] {
  const problems: unknown[] = [];
  process.on('unhandledRejection', (reason) => problems.push(reason));
  process.on('uncaughtException', (err) => problems.push(err));
  test.after.always('no unhandled rejection or uncaught exception anywhere in this file', (t) => {
    t.deepEqual(problems, []);
  });
  return problems;
}

/** A promise with its resolve function outside, for gating handlers from the test. */
export function gate<T = void>(): { promise: Promise<T>; open: (value: T) => void } {
  let open!: (value: T) => void;
  const promise = new Promise<T>((resolve) => {
    open = resolve;
  });
  return { promise, open };
}
