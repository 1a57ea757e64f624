import pg from 'pg';
import { randomBytes } from 'node:crypto';

export const FALLBACK_URL = 'postgres://postgres@127.0.0.1:5432/test';

/** PARTITA_BENCH_POSTGRES_URL, else the test helper's discovery (env, local, embedded), else the local default. */
export async function resolvePostgresUrl(log: (msg: string) => void): Promise<string> {
  const fromEnv = process.env.PARTITA_BENCH_POSTGRES_URL;
  if (fromEnv) return fromEnv;
  try {
    // The bench opens a few connections, not the test suite's hundreds: any local server will do.
    process.env.PARTITA_TEST_MIN_CONNECTIONS ??= '0';
    const helpers = await import('../../test/helpers/index.js');
    return await helpers.postgresUrl();
  } catch (err) {
    log(`test helper could not find Postgres (${(err as Error).message}); using ${FALLBACK_URL}`);
    return FALLBACK_URL;
  }
}

/** A schema name no other run uses: bench_<system>_<workload>_<random>. */
export function freshSchemaName(system: string, workload: string): string {
  const clean = (s: string) =>
    s
      .toLowerCase()
      .replace(/[^a-z0-9]/g, '')
      .slice(0, 12);
  return `bench_${clean(system)}_${clean(workload)}_${randomBytes(4).toString('hex')}`;
}

export function quoteIdent(name: string): string {
  if (!/^[a-z_][a-z0-9_]*$/.test(name)) throw new Error(`unexpected schema name ${name}`);
  return `"${name}"`;
}

/** The harness's own small pool: backlog inserts, drop, diagnostics. Never used in a timed section. */
export function adminPool(url: string): pg.Pool {
  const pool = new pg.Pool({ connectionString: url, max: 2, idleTimeoutMillis: 0, application_name: 'partita-bench-admin' });
  pool.on('error', () => undefined);
  return pool;
}

export async function dropSchema(pool: pg.Pool, schema: string): Promise<void> {
  await pool.query(`DROP SCHEMA IF EXISTS ${quoteIdent(schema)} CASCADE`);
}

export async function serverInfo(pool: pg.Pool): Promise<Record<string, string>> {
  const { rows } = await pool.query<{ name: string; setting: string }>(
    `SELECT name, setting FROM pg_settings WHERE name IN ('server_version', 'shared_buffers', 'synchronous_commit', 'max_connections', 'fsync', 'work_mem')`,
  );
  return Object.fromEntries(rows.map((r) => [r.name, r.setting]));
}
