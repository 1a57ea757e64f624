import { readFileSync, readdirSync } from 'node:fs';
import type pg from 'pg';
import { SQL_DIR, assertSchemaName, render } from './template.js';
import { loadOps, runOp, type OpName, type Statements } from './ops.js';

export { assertSchemaName, renderOp } from './template.js';
export { loadOps, type OpName, type Statement, type Statements } from './ops.js';

export interface Migration {
  version: number;
  name: string;
  sql: string;
}

export function loadMigrations(schema: string): Migration[] {
  const dir = SQL_DIR + 'migrations/';
  return readdirSync(dir)
    .filter((f) => /^\d{4}_[a-z0-9_]+\.sql$/.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      sql: render(readFileSync(dir + file, 'utf8'), schema, `sql/migrations/${file}`),
    }));
}

/** A set of SQL operations bound to one pool and schema: the shared plumbing of small stores. */
export abstract class SqlOps {
  readonly pool: pg.Pool;
  readonly schema: string;
  /** For the typed ops of ops.ts: `op.name(this.ops, this.pool, [...])`. */
  protected readonly ops: Statements;

  constructor(pool: pg.Pool, schema: string) {
    assertSchemaName(schema);
    this.pool = pool;
    this.schema = schema;
    this.ops = loadOps(schema);
  }

  protected run<R extends pg.QueryResultRow>(op: OpName, values: unknown[]): Promise<R[]> {
    return runOp<R>(this.ops[op], this.pool, values);
  }
}
