/**
 * The workflows' SQL operations (one file each in sql/ops) and the one interface the executor writes
 * through: a job-store transaction, so the workflow's rows and the jobs it enqueues commit together.
 */
import { fileURLToPath } from 'node:url';
import { loadOpsFrom, type EnqueueOutcome, type NewJob, type Statement, type Tx } from '@partita/postgres';

export const OPS_DIR = fileURLToPath(new URL('../sql/ops/', import.meta.url));
export const MIGRATIONS_DIR = fileURLToPath(new URL('../sql/migrations/', import.meta.url));

export type WfOp =
  | 'active_get'
  | 'active_set'
  | 'activities_of'
  | 'activities_of_dimensions'
  | 'activities_insert'
  | 'activities_upsert'
  | 'children_open_of'
  | 'activity_passes'
  | 'expired_remove'
  | 'fanin_insert'
  | 'fanin_take'
  | 'fanout_children_interrupt'
  | 'hook_register'
  | 'hook_release'
  | 'hooks_release_workflow'
  | 'hooks_release_workflows'
  | 'hooks_by_search'
  | 'hooks_waiting'
  | 'signal_keep'
  | 'signal_take'
  | 'signals_pending'
  | 'steps_insert'
  | 'steps_of'
  | 'steps_of_workflows'
  | 'steps_take'
  | 'topic_lock'
  | 'version_get'
  | 'version_insert'
  | 'workflow_children_open'
  | 'workflow_finish'
  | 'workflow_get'
  | 'workflow_insert_pending'
  | 'workflows_insert'
  | 'workflow_interrupt'
  | 'workflow_lock'
  | 'workflow_resume'
  | 'workflow_scrub'
  | 'workflows_list'
  | 'workflows_lock'
  | 'workflows_update';

export type WfOps = Record<WfOp, Statement>;

const cache = new Map<string, WfOps>();

/** The ops rendered for a schema, loaded once per schema. */
export function wfOps(schema: string): WfOps {
  let ops = cache.get(schema);
  if (!ops) {
    ops = loadOpsFrom<WfOp>(OPS_DIR, schema, 'wf');
    cache.set(schema, ops);
  }
  return ops;
}

/** Something that runs statements: a pool, or the connection of a transaction. */
export interface Queryable {
  query(config: { name: string; text: string; values: unknown[] }): Promise<{ rows: any[] }>;
}

/** A transaction of the job store, seen by the executor. */
export interface Db {
  run<R = any>(op: WfOp, params: unknown[]): Promise<R[]>;
  enqueue(jobs: NewJob[]): Promise<EnqueueOutcome[]>;
}

export function txDb(tx: Tx, ops: WfOps): Db {
  return {
    run: async (op, params) => (await tx.client.query({ name: ops[op].name, text: ops[op].text, values: params })).rows,
    enqueue: (jobs) => tx.enqueue(jobs),
  };
}

export async function runOn<R = any>(q: Queryable, ops: WfOps, op: WfOp, params: unknown[]): Promise<R[]> {
  return (await q.query({ name: ops[op].name, text: ops[op].text, values: params })).rows as R[];
}
