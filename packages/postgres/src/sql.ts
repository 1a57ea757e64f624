import { createHash } from 'node:crypto';
import { readFileSync, readdirSync } from 'node:fs';
import type pg from 'pg';
import { ValidationError } from '@partita/core';
import { SQL_DIR, assertSchemaName, render, renderOp } from './template.js';
import { loadOps, runOp, type OpName, type Statement, type Statements } from './ops.js';
import { markedStatement } from './plans.js';

export { assertSchemaName, renderOp } from './template.js';
export { loadOps, type OpName, type Statement, type Statements } from './ops.js';

export interface Migration {
  version: number;
  name: string;
  /** Where it was read, as shown in messages. */
  file: string;
  sql: string;
}

export function loadMigrations(schema: string): Migration[] {
  return loadMigrationsFrom(SQL_DIR + 'migrations/', schema, 'sql/migrations/');
}

const MIGRATION_FILE = /^\d{4}_[a-z0-9_]+\.sql$/;

/**
 * The numbered migrations of a folder (`NNNN_name.sql`), in order, rendered for a schema. A .sql
 * file that does not follow the pattern is an error rather than silently skipped: it would be a
 * migration that never runs.
 */
export function loadMigrationsFrom(dir: string, schema: string, shownDir: string = dir): Migration[] {
  const base = dir.endsWith('/') ? dir : `${dir}/`;
  const shown = shownDir.endsWith('/') ? shownDir : `${shownDir}/`;
  const files = readdirSync(base).filter((f) => f.endsWith('.sql'));
  const misnamed = files.filter((f) => !MIGRATION_FILE.test(f));
  if (misnamed.length && base !== SQL_DIR + 'migrations/') {
    throw new ValidationError(
      `${misnamed.map((f) => shown + f).join(', ')}: a migration file is named NNNN_name.sql (four digits, lower-case name)`,
      'migrations',
    );
  }
  const out = files
    .filter((f) => MIGRATION_FILE.test(f))
    .sort()
    .map((file) => ({
      version: Number(file.slice(0, 4)),
      name: file.slice(5, -4),
      file: shown + file,
      sql: render(readFileSync(base + file, 'utf8'), schema, shown + file),
    }));
  const twice = out.find((m, i) => i > 0 && out[i - 1]!.version === m.version);
  if (twice)
    throw new ValidationError(
      `${shown}: two migrations have the number ${String(twice.version).padStart(4, '0')}; number each once`,
      'migrations',
    );
  return out;
}

/**
 * Loads the SQL operations of another package's folder (one statement per file), with the same
 * `{{schema}}` placeholders and `{{> fragment}}` includes (from that folder's ../fragments/).
 * Names are prefixed so they never collide with the core's prepared statements.
 */
export function loadOpsFrom<Name extends string = string>(opsDir: string, schema: string, prefix: string): Record<Name, Statement> {
  assertSchemaName(schema);
  const base = opsDir.endsWith('/') ? opsDir : `${opsDir}/`;
  const ops = {} as Record<Name, Statement>;
  for (const file of readdirSync(base).filter((f) => f.endsWith('.sql'))) {
    const op = file.slice(0, -4) as Name;
    const text = renderOp(readFileSync(base + file, 'utf8'), `${base}${file}`, schema, `${base}../`);
    const digest = createHash('sha1').update(text).digest('hex').slice(0, 10);
    ops[op] = markedStatement(`${prefix}_${op}_${digest}`, text);
  }
  return ops;
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

  /** An op's prepared statement, for running it on a connection of the caller's (a transaction). */
  protected statement(op: OpName): Statement {
    return this.ops[op];
  }
}
