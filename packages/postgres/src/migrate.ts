import type pg from 'pg';
import type { Logger } from '@partita/core';
import { loadMigrations, assertSchemaName } from './sql.js';

/**
 * Applies the numbered migrations that this schema has not seen yet. Several processes may start
 * at once: an advisory lock keyed on the schema makes them take turns, and the later ones find
 * nothing left to do.
 */
export async function migrate(pool: pg.Pool, schema: string, logger?: Logger): Promise<number[]> {
  assertSchemaName(schema);
  const migrations = loadMigrations(schema);
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`partita:migrate:${schema}`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS "${schema}".migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      const { rows } = await client.query<{ version: number }>(`SELECT version FROM "${schema}".migrations`);
      const done = new Set(rows.map((r) => r.version));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await client.query('BEGIN');
        try {
          await client.query(m.sql);
          await client.query(`INSERT INTO "${schema}".migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
          await client.query('COMMIT');
        } catch (err) {
          await client.query('ROLLBACK');
          throw new Error(`migration ${m.version}_${m.name} failed in schema "${schema}": ${(err as Error).message}`, { cause: err });
        }
        applied.push(m.version);
        logger?.info({ schema, version: m.version, name: m.name }, 'applied migration');
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`partita:migrate:${schema}`]);
    }
  } finally {
    client.release();
  }
  return applied;
}
