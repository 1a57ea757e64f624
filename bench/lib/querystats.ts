import pg from 'pg';
import { performance } from 'node:perf_hooks';

/**
 * `--query-stats`: times every query made through the `pg` module the bench resolves (Partita's
 * store and the root-installed graphile-worker use it; a graphile-worker loaded from elsewhere has
 * its own copy and is not seen). Statements are keyed by prepared-statement name, else by their
 * first words. The harness's own pool is left out. Adds a little overhead per query: off by default.
 */
interface Stat {
  calls: number;
  totalMs: number;
  maxMs: number;
  rows: number;
  sent: number;
}

const ADMIN = Symbol('bench-admin');
const stats = new Map<string, Stat>();
let installed = false;

function keyOf(config: unknown): string {
  if (typeof config === 'string') return config.replace(/\s+/g, ' ').trim().slice(0, 60);
  if (config && typeof config === 'object') {
    const c = config as { name?: string; text?: string };
    if (c.name) return c.name;
    if (c.text)
      return c.text
        .replace(/--[^\n]*\n/g, ' ')
        .replace(/\s+/g, ' ')
        .trim()
        .slice(0, 60);
  }
  return '?';
}

export function markAdmin(pool: pg.Pool): void {
  pool.on('connect', (client) => {
    (client as unknown as Record<symbol, boolean>)[ADMIN] = true;
  });
}

export function installQueryStats(): void {
  if (installed) return;
  installed = true;
  const original = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    if ((this as unknown as Record<symbol, boolean>)[ADMIN]) return original.apply(this, args);
    const key = keyOf(args[0]);
    const sent = paramBytes(args[0], args[1]);
    const t = performance.now();
    // pg.Pool#query calls client.query with a callback; direct callers get a promise.
    const last = args.length - 1;
    const cb = typeof args[last] === 'function' ? (args[last] as (err: unknown, r?: pg.QueryResult) => void) : undefined;
    if (cb) {
      args[last] = (err: unknown, r?: pg.QueryResult) => {
        record(err ? `${key} (failed)` : key, performance.now() - t, r?.rowCount ?? 0, sent);
        cb(err, r);
      };
      return original.apply(this, args);
    }
    const result = original.apply(this, args);
    if (result && typeof (result as Promise<unknown>).then === 'function') {
      (result as Promise<pg.QueryResult>).then(
        (r) => record(key, performance.now() - t, r?.rowCount ?? 0, sent),
        () => record(`${key} (failed)`, performance.now() - t, 0),
      );
    }
    return result;
  };
}

/** Characters of the statement's parameters (strings, and array elements as text): what the client serializes and sends. */
function paramBytes(config: unknown, values?: unknown): number {
  const params = (config as { values?: unknown[] } | null)?.values ?? (Array.isArray(values) ? values : undefined);
  if (!params) return 0;
  let n = 0;
  const add = (v: unknown): void => {
    if (typeof v === 'string') n += v.length;
    // A binary parameter (encodeColumns' arrays): its bytes. JSON.stringify of a Buffer (its bytes as
    // a list of numbers) was 15 % of the bench process's CPU in a workflow run and read 4× too large.
    else if (Buffer.isBuffer(v)) n += v.length;
    else if (Array.isArray(v)) for (const e of v) add(e);
    else if (v !== null && v !== undefined)
      n += typeof v === 'object' && !(v instanceof Date) ? JSON.stringify(v).length : String(v).length;
  };
  for (const v of params) add(v);
  return n;
}

function record(key: string, ms: number, rows: number, sent = 0): void {
  const s = stats.get(key) ?? { calls: 0, totalMs: 0, maxMs: 0, rows: 0, sent: 0 };
  s.sent += sent;
  s.calls++;
  s.totalMs += ms;
  s.maxMs = Math.max(s.maxMs, ms);
  s.rows += rows;
  stats.set(key, s);
}

/** Statements seen since the last reset (all kinds, the harness's own excepted). */
export function queryStatsCalls(): number {
  let calls = 0;
  for (const s of stats.values()) calls += s.calls;
  return calls;
}

export function resetQueryStats(): void {
  stats.clear();
}

/** The statements seen since the last reset, slowest total first, as a table. */
export function queryStatsTable(limit = 12): string {
  const rows = [...stats].sort((a, b) => b[1].totalMs - a[1].totalMs).slice(0, limit);
  if (rows.length === 0) return '  (no queries seen)';
  const lines = rows.map(
    ([k, s]) =>
      `  ${String(s.calls).padStart(6)} calls ${s.totalMs.toFixed(0).padStart(7)} ms total ${(s.totalMs / s.calls).toFixed(2).padStart(8)} ms avg ${s.maxMs.toFixed(0).padStart(6)} ms max ${String(s.rows).padStart(8)} rows ${(s.sent / 1024).toFixed(0).padStart(7)} KB sent  ${k}`,
  );
  return lines.join('\n');
}
