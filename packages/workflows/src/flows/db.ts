import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { loadOpsFrom, type Statement } from '@partita/postgres';

export const OPS_DIR = fileURLToPath(new URL('../../sql/flows/ops/', import.meta.url));
export const MIGRATIONS_DIR = fileURLToPath(new URL('../../sql/flows/migrations/', import.meta.url));

export type FlowOp = 'keys_insert' | 'keys_sweep' | 'jobs_by_key' | 'app_active';
export type FlowOps = Record<FlowOp, Statement>;

const cache = new Map<string, FlowOps>();

export function flowOps(schema: string): FlowOps {
  let ops = cache.get(schema);
  if (!ops) cache.set(schema, (ops = loadOpsFrom<FlowOp>(OPS_DIR, schema, 'flow')));
  return ops;
}

export interface Queryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: any[] }>;
}

export async function runOn<R = any>(q: Queryable, ops: FlowOps, op: FlowOp, params: unknown[]): Promise<R[]> {
  return (await q.query({ name: ops[op].name, text: ops[op].text, values: params })).rows as R[];
}

const raw = new Map<FlowOp, string>();

/** An op's text with `{{schema}}` left in, for a transaction that renders it (a continuation's tx.query). */
export function rawOp(op: FlowOp): string {
  let text = raw.get(op);
  if (text === undefined) raw.set(op, (text = readFileSync(`${OPS_DIR}${op}.sql`, 'utf8')));
  return text;
}
