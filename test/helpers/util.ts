import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { mkdtempSync, readFileSync } from 'node:fs';
import pg from 'pg';

export { freePort } from '../../packages/postgres-embedded/src/embedded.js';

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

/** Polls `probe` every `everyMs` until it returns a value other than undefined/false; rejects after `timeoutMs`. */
export async function until<T>(
  what: string,
  probe: () => T | undefined | false | Promise<T | undefined | false>,
  timeoutMs = 20_000,
  everyMs = 20,
): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined && value !== false) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await sleep(everyMs);
  }
}

/** One diagnostic line on stderr (the only output the helpers make). */
export function notice(line: string): void {
  process.stderr.write(`[partita test services] ${line}\n`);
}

export function pidAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/** The command line of a live process ('' when unknown), to check a pid from a state file is still ours. */
export function cmdline(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
  } catch {
    return '';
  }
}

/** Kill `pid` if it is alive and its command line contains `expect` (guards against reused pids). */
export function killIfIs(pid: number | undefined, expect: string, signal: NodeJS.Signals): boolean {
  if (!pid || !pidAlive(pid)) return false;
  const cmd = cmdline(pid);
  if (cmd && !cmd.includes(expect)) return false;
  try {
    process.kill(pid, signal);
    return true;
  } catch {
    return false;
  }
}

export async function waitGone(pid: number, timeoutMs: number): Promise<boolean> {
  const end = Date.now() + timeoutMs;
  while (pidAlive(pid)) {
    if (Date.now() > end) return false;
    await sleep(25);
  }
  return true;
}

/** Where the shared fallback servers and the dedicated per-test servers live (one tree per OS user). */
export function servicesDir(): string {
  return process.env.PARTITA_TEST_SERVICES_DIR ?? path.join(os.tmpdir(), `partita-test-services-${process.getuid?.() ?? 'u'}`);
}

export function isRoot(): boolean {
  return process.getuid?.() === 0;
}

/** A plain TCP connect, for a fast "is anything listening" before a real handshake. */
export function tcpOpen(host: string, port: number, timeoutMs = 500): Promise<boolean> {
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    const done = (ok: boolean) => {
      s.destroy();
      resolve(ok);
    };
    s.setTimeout(timeoutMs, () => done(false));
    s.once('connect', () => done(true));
    s.once('error', () => done(false));
  });
}

/** A real Postgres round trip: connect (authenticating) and SELECT 1. Resolves undefined or the reason it failed. */
export async function probePostgres(url: string, timeoutMs = 3000, minConnections = 0): Promise<string | undefined> {
  const client = new pg.Client({ connectionString: url, connectionTimeoutMillis: timeoutMs });
  client.on('error', () => undefined);
  try {
    await client.connect();
    const { rows } = await client.query<{ n: number }>(`SELECT current_setting('max_connections')::int AS n`);
    if (rows[0]!.n < minConnections)
      return `allows only ${rows[0]!.n} connections (max_connections), and the suite opens up to ${minConnections} at once`;
    return undefined;
  } catch (err) {
    return (err as Error).message || String(err);
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * A real NATS handshake without a client library: read the server's INFO, send CONNECT + PING,
 * expect PONG. Resolves undefined when the server answered, else the reason.
 */
export function probeNats(url: string, timeoutMs = 2000, expectName?: string): Promise<string | undefined> {
  let u: URL;
  try {
    u = new URL(
      url
        .split(',')[0]!
        .trim()
        .replace(/^(tls|wss?):/, 'nats:'),
    );
  } catch {
    return Promise.resolve(`not a URL: ${url}`);
  }
  const host = u.hostname || '127.0.0.1';
  const port = Number(u.port || 4222);
  return new Promise((resolve) => {
    const s = net.connect({ host, port });
    let buf = '';
    let sentConnect = false;
    const done = (reason: string | undefined) => {
      s.destroy();
      resolve(reason);
    };
    s.setTimeout(timeoutMs, () => done(`no NATS handshake from ${host}:${port} within ${timeoutMs} ms`));
    s.once('error', (err) => done(`${host}:${port}: ${err.message}`));
    s.on('data', (chunk) => {
      buf += chunk.toString('utf8');
      if (!sentConnect) {
        const nl = buf.indexOf('\r\n');
        if (nl < 0) return;
        const first = buf.slice(0, nl);
        buf = buf.slice(nl + 2);
        if (!first.startsWith('INFO ')) return done(`${host}:${port} is not a NATS server (said ${JSON.stringify(first.slice(0, 40))})`);
        let info: { tls_required?: boolean; server_name?: string } = {};
        try {
          info = JSON.parse(first.slice(5));
        } catch {
          return done(`${host}:${port} sent a malformed INFO`);
        }
        if (expectName !== undefined && info.server_name !== expectName) {
          return done(`${host}:${port} is another NATS server (${JSON.stringify(info.server_name)}, not ${JSON.stringify(expectName)})`);
        }
        if (info.tls_required) return done(undefined); // a real NATS server; TLS is the client's business
        const connect: Record<string, unknown> = { verbose: false, pedantic: false, lang: 'probe', version: '0', protocol: 1 };
        if (u.username) connect.user = decodeURIComponent(u.username);
        if (u.password) connect.pass = decodeURIComponent(u.password);
        s.write(`CONNECT ${JSON.stringify(connect)}\r\nPING\r\n`);
        sentConnect = true;
      }
      if (buf.includes('PONG\r\n')) return done(undefined);
      const err = /-ERR ([^\r]*)\r\n/.exec(buf);
      if (err) return done(`${host}:${port} refused the handshake: ${err[1]}`);
    });
  });
}

/**
 * A data dir of its own for a test's nodes. Nodes keep Global snapshots (the file persister) in
 * their data dir, so tests sharing one would load each other's pauses, throttles and keys.
 */
export function tempDataDir(prefix = 'node'): string {
  return mkdtempSync(path.join(os.tmpdir(), `partita-${prefix}-`));
}

/**
 * Takes ACCESS EXCLUSIVE on `table` (schema-qualified) in a transaction of its own, so every
 * statement on the table waits, and resolves with the function that lets go (twice is harmless;
 * pass it to t.teardown too).
 */
export async function holdTableLock(pool: pg.Pool, table: string): Promise<() => Promise<void>> {
  const holder = await pool.connect();
  await holder.query(`BEGIN; LOCK TABLE ${table} IN ACCESS EXCLUSIVE MODE`);
  let released = false;
  return async () => {
    if (released) return;
    released = true;
    await holder.query('ROLLBACK');
    holder.release();
  };
}
