import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { createHash } from 'node:crypto';
import { PartitaError, ValidationError } from '@partita/core';

const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new ValidationError(`"${schema}" is not a usable schema name; use lower-case letters, digits and _ (at most 63)`, 'postgres.schema');
  }
}

function render(text: string, schema: string, file: string): string {
  const rendered = text.replaceAll('{{schema_raw}}', schema).replaceAll('{{schema}}', `"${schema}"`);
  const left = /\{\{[^}]*\}\}/.exec(rendered);
  if (left) {
    throw new PartitaError('SQL_TEMPLATE', `${file}: ${left[0]} is not a placeholder the SQL loader knows; the package's sql folder is damaged or out of date, reinstall @partita/postgres`);
  }
  return rendered;
}

const INCLUDE = /^([ \t]*)(.*?)\{\{>\s*([a-z0-9_]+)\s*\}\}/gm;

/**
 * Fragments: a condition several ops repeat word for word (the job filter of the listing and the
 * bulk operations) is kept once, in sql/fragments/NAME.sql, and an op writes `{{> NAME}}` where
 * it stands, so each op is still one whole statement in one file. The fragment goes in as one
 * parenthesised expression (so an OR next to it cannot split it), without its leading comment
 * lines, at load time: the prepared text is the same as if it were written out. Fragments do not
 * include fragments, and migrations take none: an applied migration must never change because a
 * fragment did.
 */
function includeFragments(text: string, file: string, sqlDir: string): string {
  return text.replace(INCLUDE, (_include, indent: string, before: string, name: string) => {
    let fragment: string;
    try {
      fragment = readFileSync(`${sqlDir}fragments/${name}.sql`, 'utf8');
    } catch (cause) {
      throw new PartitaError('SQL_TEMPLATE', `${file}: includes {{> ${name}}} but sql/fragments/${name}.sql cannot be read; the package's sql folder is damaged or out of date, reinstall @partita/postgres`, { cause });
    }
    const lines = fragment.trimEnd().split('\n');
    while (lines.length > 0 && /^\s*(--.*)?$/.test(lines[0]!)) lines.shift();
    if (lines.length === 0) {
      throw new PartitaError('SQL_TEMPLATE', `${file}: sql/fragments/${name}.sql has no SQL in it; the package's sql folder is damaged, reinstall @partita/postgres`);
    }
    return `${indent}${before}(${lines.join(`\n${indent}${' '.repeat(before.length + 1)}`)})`;
  });
}

/** An op's text as it is prepared: fragments from `sqlDir` included, then the schema filled in. */
export function renderOp(text: string, file: string, schema: string, sqlDir: string = SQL_DIR): string {
  return render(includeFragments(text, file, sqlDir), schema, file);
}

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

/** A SQL operation from sql/ops, rendered for a schema, with a prepared-statement name. */
export interface Statement {
  name: string;
  text: string;
}

export type OpName =
  | 'enqueue_batch'
  | 'enqueue_one'
  | 'enqueue_handoff'
  | 'queue_key_holders'
  | 'claim_batch'
  | 'claim_rate_limited'
  | 'prune_rate_buckets'
  | 'load_control'
  | 'change_control'
  | 'adopt_control'
  | 'notify'
  | 'nodes_seen'
  | 'roll_call_request'
  | 'node_leave'
  | 'execution_key_holder'
  | 'release_execution_key'
  | 'live_jobs'
  | 'live_job_counts'
  | 'held_execution_keys'
  | 'clear_queue_key'
  | 'complete_batch'
  | 'fail_batch'
  | 'heartbeat'
  | 'rescue_expired'
  | 'cancel_jobs'
  | 'get_job'
  | 'jobs_by_key'
  | 'list_jobs'
  | 'ensure_history_partitions'
  | 'prune_history'
  | 'register_queues'
  | 'known_queues'
  | 'update_progress'
  | 'register_job_types'
  | 'job_types'
  | 'release_jobs'
  | 'lease_acquire'
  | 'lease_renew'
  | 'lease_release'
  | 'lease_holder'
  | 'lease_raise_epoch'
  | 'lease_check'
  | 'global_state_load'
  | 'global_state_save'
  | 'global_state_epoch'
  | 'retry_jobs'
  | 'cancel_matching'
  | 'delete_matching'
  | 'count_matching'
  | 'applied_migrations';

/** Loads every operation once per schema; named so pg prepares each once per connection. */
export function loadOps(schema: string): Record<OpName, Statement> {
  const dir = SQL_DIR + 'ops/';
  const ops = {} as Record<OpName, Statement>;
  for (const file of readdirSync(dir).filter((f) => f.endsWith('.sql'))) {
    const op = file.slice(0, -4) as OpName;
    const text = renderOp(readFileSync(dir + file, 'utf8'), `sql/ops/${file}`, schema);
    const digest = createHash('sha1').update(text).digest('hex').slice(0, 10);
    ops[op] = { name: `partita_${op}_${digest}`, text };
  }
  return ops;
}

/** A set of SQL operations bound to one pool and schema: the shared plumbing of small stores. */
export abstract class SqlOps {
  readonly pool: import('pg').Pool;
  readonly schema: string;
  private readonly ops: Record<OpName, Statement>;

  constructor(pool: import('pg').Pool, schema: string) {
    assertSchemaName(schema);
    this.pool = pool;
    this.schema = schema;
    this.ops = loadOps(schema);
  }

  /** An op's prepared statement, for running it on a connection of the caller's (a transaction). */
  protected statement(op: OpName): Statement {
    return this.ops[op];
  }

  protected async run<R extends import('pg').QueryResultRow>(op: OpName, values: unknown[]): Promise<R[]> {
    const stmt = this.ops[op];
    const result = await this.pool.query<R>({ name: stmt.name, text: stmt.text, values });
    return result.rows;
  }
}
