/**
 * Human-readable log lines for a terminal (`partita start --log-format pretty`, the demo), made
 * from pino's JSON through its `hooks.streamWrite`, so no extra dependency is needed:
 *
 *   12:01:02.345 INFO  engine billing  node started  partitions=["billing"]
 */
import { createLogger, type Logger, type LogLevel } from '@partita/core';

const LEVELS: Record<number, string> = { 10: 'TRACE', 20: 'DEBUG', 30: 'INFO ', 40: 'WARN ', 50: 'ERROR', 60: 'FATAL' };
const COLOURS: Record<number, number> = { 10: 2, 20: 2, 30: 36, 40: 33, 50: 31, 60: 31 };
const SKIP = new Set(['level', 'time', 'pid', 'hostname', 'name', 'msg', 'node', 'actor', 'partition', 'v']);

export function formatLogLine(line: string, colour: boolean): string {
  let rec: Record<string, unknown>;
  try {
    rec = JSON.parse(line);
  } catch {
    return line;
  }
  const level = typeof rec.level === 'number' ? rec.level : 30;
  const time = new Date(typeof rec.time === 'number' ? rec.time : Date.now()).toISOString().slice(11, 23);
  const tag = LEVELS[level] ?? String(level);
  const where = [rec.actor, rec.partition].filter((x) => typeof x === 'string').join(' ');
  const extras = Object.entries(rec)
    .filter(([k]) => !SKIP.has(k))
    .map(([k, v]) => `${k}=${typeof v === 'string' ? (/\s/.test(v) ? JSON.stringify(v) : v) : safeJson(v)}`)
    .join(' ');
  const lvl = colour ? `\x1b[${COLOURS[level] ?? 0}m${tag}\x1b[0m` : tag;
  const dim = (s: string) => (colour && s ? `\x1b[2m${s}\x1b[0m` : s);
  return `${dim(time)} ${lvl} ${where ? dim(where) + '  ' : ''}${String(rec.msg ?? '')}${extras ? '  ' + dim(extras) : ''}\n`;
}

function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s.length > 300 ? s.slice(0, 299) + '…' : s;
  } catch {
    return String(v);
  }
}

/** A pino logger (the node's Logger type) that writes pretty lines to stdout. */
export function prettyLogger(level: LogLevel | string, opts: { colour: boolean; prefix?: string }): Logger {
  return createLogger({
    level,
    hooks: {
      streamWrite: (s: string) =>
        s
          .split('\n')
          .filter(Boolean)
          .map((l) => (opts.prefix ?? '') + formatLogLine(l, opts.colour))
          .join(''),
    },
  });
}
