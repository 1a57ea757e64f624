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
  | 'children_open_of'
  | 'activity_passes'
  | 'expired_remove'
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
  | 'steps_of'
  | 'steps_of_workflows'
  | 'steps_lock'
  | 'steps_take'
  | 'steps_take_lock'
  | 'topic_lock'
  | 'transition_write'
  | 'version_get'
  | 'version_insert'
  | 'wf_partitions_ensure'
  | 'wf_partitions_prune'
  | 'workflow_children_open'
  | 'workflow_finish'
  | 'workflow_get'
  | 'workflow_outcome'
  | 'workflow_insert_pending'
  | 'workflows_insert'
  | 'workflow_interrupt'
  | 'workflow_resume'
  | 'workflow_scrub'
  | 'workflows_list'
  | 'workflows_lock';

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
  /**
   * The transaction's last statement: sent now, and the COMMIT follows it on the wire without
   * waiting for its answer (tx.sendLast). Absent where the caller must hear its failure before
   * anything else is sent (under a savepoint). Its failure is `mapError`'s error when given.
   */
  runLast?(op: WfOp, params: unknown[], mapError?: (err: unknown) => unknown): Promise<unknown>;
}

/**
 * `tx`: a continuation's transaction (a step finished) has `enqueueHere`: the next steps and emits go
 * straight to the engine of the node that ran the step when it can start them, with no wake-up and
 * no claim. Elsewhere (a pub, a hook from a client) they are queued for any node.
 */
export function txDb(tx: Tx & { enqueueHere?: Tx['enqueue'] }, ops: WfOps): Db {
  const enqueue = tx.enqueueHere ? tx.enqueueHere.bind(tx) : tx.enqueue.bind(tx);
  return {
    run: async (op, params) => (await tx.client.query({ name: ops[op].name, text: ops[op].text, values: params })).rows,
    enqueue,
    runLast: (op, params, mapError) => tx.sendLast({ name: ops[op].name, text: ops[op].text, values: params }, mapError),
  };
}

export async function runOn<R = any>(q: Queryable, ops: WfOps, op: WfOp, params: unknown[]): Promise<R[]> {
  return (await q.query({ name: ops[op].name, text: ops[op].text, values: params })).rows as R[];
}
