/**
 * The plugin's SQL: its migrations and its operations (one file each in sql/ops), read and rendered
 * once per schema for every store of the plugin (schedules and processes share the folder).
 */
import { fileURLToPath } from 'node:url';
import { loadOpsFrom, type Statement } from '@partita/postgres';

const OPS_DIR = fileURLToPath(new URL('../sql/ops/', import.meta.url));
export const MIGRATIONS_DIR = new URL('../sql/migrations/', import.meta.url);

const loaded = new Map<string, Record<string, Statement>>();

/** The plugin's operations for `schema`, each a named statement; the same object for every store. */
export function processesOps<Name extends string>(schema: string): Record<Name, Statement> {
  let ops = loaded.get(schema);
  if (!ops) loaded.set(schema, (ops = loadOpsFrom(OPS_DIR, schema, 'proc')));
  return ops as Record<Name, Statement>;
}
