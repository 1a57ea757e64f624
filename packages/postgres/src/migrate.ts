import type pg from 'pg';
import { PluginError, type Logger } from '@partita/core';
import { loadMigrations, loadMigrationsFrom, assertSchemaName, type Migration } from './sql.js';

/** A node plugin's migrations: its name (recorded with each version) and its folder of NNNN_name.sql. */
export interface PluginMigrations {
  plugin: string;
  dir: string;
}

export interface MigrateOptions {
  /** Applied after the core's, in this order, under the same lock. */
  plugins?: readonly PluginMigrations[];
}

/**
 * Applies the numbered migrations that this schema has not seen yet: the core's, then each plugin's.
 * Several processes may start at once: an advisory lock keyed on the schema makes them take turns,
 * and the later ones find nothing left to do. Returns the core versions applied now.
 */
export async function migrate(pool: pg.Pool, schema: string, logger?: Logger, options: MigrateOptions = {}): Promise<number[]> {
  assertSchemaName(schema);
  const migrations = loadMigrations(schema);
  // Read (and checked) before the lock is taken: a misnamed plugin file fails before anything runs.
  const plugins = (options.plugins ?? []).map(({ plugin, dir }) => {
    try {
      return { plugin, migrations: loadMigrationsFrom(dir, schema) };
    } catch (err) {
      throw new PluginError(plugin, `cannot read its migrations in ${dir}: ${(err as Error).message}`, { cause: err });
    }
  });
  const client = await pool.connect();
  const applied: number[] = [];
  try {
    await client.query('SELECT pg_advisory_lock(hashtext($1))', [`partita:migrate:${schema}`]);
    try {
      await client.query(`CREATE SCHEMA IF NOT EXISTS "${schema}"`);
      await client.query(
        `CREATE TABLE IF NOT EXISTS "${schema}".migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
      );
      // Before migration 0010 the table has no plugin column: every row is the core's.
      const { rows } = await client.query<{ version: number; plugin?: string }>(`SELECT * FROM "${schema}".migrations`);
      const done = new Set(rows.filter((r) => (r.plugin ?? '') === '').map((r) => r.version));
      for (const m of migrations) {
        if (done.has(m.version)) continue;
        await apply(
          client,
          schema,
          m,
          '',
          (err) => new Error(`migration ${m.version}_${m.name} failed in schema "${schema}": ${err.message}`, { cause: err }),
        );
        applied.push(m.version);
        logger?.info({ schema, version: m.version, name: m.name }, 'applied migration');
      }
      for (const { plugin, migrations: theirs } of plugins) {
        const seen = new Set(rows.filter((r) => r.plugin === plugin).map((r) => r.version));
        for (const m of theirs) {
          if (seen.has(m.version)) continue;
          await apply(
            client,
            schema,
            m,
            plugin,
            (err) =>
              new PluginError(
                plugin,
                `migration ${m.file} failed in schema "${schema}" (nothing of it was applied; fix the file and start again): ${err.message}`,
                { cause: err },
              ),
          );
          logger?.info({ schema, plugin, version: m.version, name: m.name }, 'applied plugin migration');
        }
      }
    } finally {
      await client.query('SELECT pg_advisory_unlock(hashtext($1))', [`partita:migrate:${schema}`]);
    }
  } finally {
    client.release();
  }
  return applied;
}

/** One migration and its record, in one transaction. */
async function apply(client: pg.PoolClient, schema: string, m: Migration, plugin: string, failure: (err: Error) => Error): Promise<void> {
  await client.query('BEGIN');
  try {
    await client.query(m.sql);
    if (plugin === '') await client.query(`INSERT INTO "${schema}".migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    else await client.query(`INSERT INTO "${schema}".migrations (plugin, version, name) VALUES ($1, $2, $3)`, [plugin, m.version, m.name]);
    await client.query('COMMIT');
  } catch (err) {
    await client.query('ROLLBACK');
    throw failure(err as Error);
  }
}
