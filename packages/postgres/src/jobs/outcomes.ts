import pg from 'pg';
import { describeError, toJsonStrict, type JobError } from '@partita/core';
import type { StoreContext } from '../context.js';
import * as op from '../ops.js';
import { columnIndexes } from '../ops.js';
import { tidArray, uuidArrayOf, uuidOrder, uuidWords } from '../binary.js';
import type { Tx } from '../store.js';
import { CLAIMED_COLUMNS, claimedJobAt, type ClaimedJob } from './claim.js';
import { settleKeys, settleStaleKeys } from './keys.js';

// The engine's hot path, second half: what became of claimed jobs (completed, failed, released,
// still running, lost with their node), in one statement per batch.

export interface Completion {
  id: string;
  attempt: number;
  result: unknown;
  /** The result's JSON text when the caller has checked it already (toJsonStrict); then `result` is not read. */
  json?: string;
  /** Where the claim left the job's row (ClaimedJob.tid), when known: found there first (complete_plain). */
  tid?: string | null | undefined;
}

/**
 * The ids a batch write recorded. `refused` holds the rows the database would not take (id → why,
 * e.g. a value Postgres cannot store): they were left as they were, and the rest of the batch was
 * recorded without them.
 */
export type Recorded = Set<string> & { refused: Map<string, string> };

export interface CompleteOptions {
  /**
   * Settle the keys taking their next jobs into this node's hands, in the completion's own
   * statement (complete_batch $7-$10): a next job of the completed job's queue, due, of a type in
   * `types` and a continuation in `continuations` (null: any), becomes the completing node's running
   * attempt, leased for `leaseMs`, for each completion in `ids` (the caller holds a place for it).
   * Its predecessor's commit makes it running, with no settle or claim after.
   */
  take?: TakeInto;
  /**
   * Continuation names (job marks, NewJob.continuation) that record their jobs' successes
   * themselves in the same transaction: a completed job marked with one leaves no history row.
   * Only for a write inside the transaction those continuations run in.
   */
  successesRecordedBy?: readonly string[];
  /**
   * The caller knows no job of the batch holds an execution key: without `take`, the batch goes
   * through complete_plain, complete_batch without its key work (a smaller plan to make and run).
   * A keyed job sent anyway is still settled, by a second statement.
   */
  keyless?: boolean;
}

/** Whose keys' next jobs a completion takes into its node's hands (see CompleteOptions.take). */
export interface TakeInto {
  leaseMs: number;
  types: readonly string[] | null;
  continuations: readonly string[] | null;
  ids: ReadonlySet<string>;
}

/** What a completion made of the keys of the jobs it completed: `queues` had a job queued (claimable now), `taken` are the node's running attempts now. */
export interface Settled {
  queues: string[];
  taken: ClaimedJob[];
}

/** A completion's record, with what it made of the keys it settled: `queues` had a job queued, `taken` are the node's running attempts now. */
export type Completed = Recorded & { settled: Settled };

export interface Failure {
  id: string;
  attempt: number;
  /** Null when the attempt ended without an error of its own (e.g. cancelled before running). */
  error: JobError | null;
  /** When to try again; absent means this was the last attempt. */
  retryAt?: Date;
  /** Final state when not retried (default failed). */
  finalState?: 'failed' | 'cancelled';
}

export interface RescuedJob {
  id: string;
  partition: string;
  queue: string;
  executionKey: string | null;
  /** True when the job was failed for good (rescued too many times), false when requeued. */
  failed: boolean;
}

/**
 * Records successes; returns the ids accepted (the rest were not this node's to complete), and
 * apart the rows refused (a result that is not JSON, or that Postgres would not store).
 * With `tx` it writes inside that transaction, and a row Postgres refuses rejects the whole write
 * (an aborted transaction takes no more statements, so the batch cannot be split there).
 */
export async function complete(
  ctx: StoreContext,
  nodeId: string,
  items: Completion[],
  tx?: Tx,
  options: CompleteOptions = {},
): Promise<Completed> {
  const refused = new Map<string, string>();
  const queues = new Set<string>();
  const taken: ClaimedJob[] = [];
  const settled = { queues: [] as string[], taken };
  if (items.length === 0) return Object.assign(recorded([], refused), { settled });
  const { take, successesRecordedBy } = options;
  const recordedElsewhere = successesRecordedBy && successesRecordedBy.length > 0 ? successesRecordedBy : null;
  // The hottest write: the ids go sorted in uuid order, as a binary uuid[] (parsing them as text
  // was a tenth of the statement's CPU; see binary.ts), the attempts as an integer[] in the same
  // order (the statement finds each row's by a binary search of the ids), the results as a JSON
  // object keyed by id, built here as text the driver passes through. A result is already JSON
  // text, and most jobs return nothing, which is left out of the object (stored as JSON null).
  // Column by column, no object per job: the ids sorted as the numbers binary.ts parses them into,
  // not as lower-cased text (an object, a regular expression test and string comparisons per job
  // were most of this function's time, ~0.85 us a job of 2,000).
  const kept: Completion[] = [];
  const fragments: string[] = [];
  for (const c of items) {
    let json: string | undefined;
    if (c.json !== undefined) json = c.json;
    else if (c.result !== undefined && c.result !== null) {
      try {
        json = toJsonStrict(c.result, 'result').json;
      } catch (err) {
        refused.set(c.id, describeError(err).message);
        continue;
      }
    }
    kept.push(c);
    fragments.push(json === undefined || json === 'null' ? '' : `"${c.id}":${json}`);
  }
  const n = kept.length;
  let ids = kept.map((c) => c.id);
  const words = new Uint32Array(n * 4);
  const binary = uuidWords(ids, words);
  let order: number[];
  if (binary) order = uuidOrder(words, n);
  else {
    // Any other form Postgres reads as a uuid is sorted by its hex digits alone and sent as text.
    // A stable sort: of an id sent twice, the last attempt counts, as width_bucket finds the last of equal ids.
    const keys = ids.map((id) => id.toLowerCase().replace(/[^0-9a-f]/g, ''));
    order = ids.map((_, i) => i);
    order.sort((a, b) => (keys[a]! < keys[b]! ? -1 : keys[a]! > keys[b]! ? 1 : 0));
  }
  ids = order.map((i) => kept[i]!.id);
  const attemptsOf = order.map((i) => kept[i]!.attempt);
  const resultsOf = order.map((i) => fragments[i]!);
  let anyTid = false;
  const tidsOf = order.map((i) => {
    const t = kept[i]!.tid ?? null;
    if (t !== null) anyTid = true;
    return t;
  });
  // Outside a transaction it runs on the pool of cached generic plans: planned afresh (the other
  // pool's custom plans) it spent a tenth of its time planning, mostly copying the batch's ids and
  // objects, inlined as constants, through the planner's passes. Its generic plan knows no batch
  // size either way (the ids come through a scalar subquery, see complete_batch).
  const idsOf = (lo: number, hi: number) =>
    binary ? uuidArrayOf(words, order, lo, hi) : `{${(lo === 0 && hi === n ? ids : ids.slice(lo, hi)).join(',')}}`;
  const part = <T>(column: T[], lo: number, hi: number) => (lo === 0 && hi === n ? column : column.slice(lo, hi));
  const plainWrite = options.keyless === true && !take;
  const write = (lo: number, hi: number) => {
    const attempts = `{${part(attemptsOf, lo, hi).join(',')}}`;
    let results = '';
    for (let k = lo; k < hi; k++) {
      const r = resultsOf[k]!;
      if (r !== '') results = results === '' ? r : `${results},${r}`;
    }
    results = `{${results}}`;
    // The rows' addresses in the ids' order, binary (else as text, a tid "(block,offset)" quoted); none known: NULL.
    let tids: Buffer | string | null = null;
    if (anyTid) {
      const each = part(tidsOf, lo, hi);
      tids = tidArray(each) ?? `{${each.map((t) => (t === null ? 'NULL' : `"${t}"`)).join(',')}}`;
    }
    if (plainWrite) {
      return op.completePlain(ctx.ops, tx?.client ?? ctx.onePlanPool, [idsOf(lo, hi), attempts, results, nodeId, recordedElsewhere, tids]);
    }
    return op.completeBatch(ctx.ops, tx?.client ?? ctx.onePlanPool, [
      idsOf(lo, hi),
      attempts,
      results,
      nodeId,
      recordedElsewhere,
      tids,
      take ? take.leaseMs : null,
      take?.types ?? null,
      take?.continuations ?? null,
      take
        ? `{${part(ids, lo, hi)
            .map((id) => (take.ids.has(id) ? 't' : 'f'))
            .join(',')}}`
        : null,
    ]);
  };
  const parts = tx ? [await write(0, ids.length)] : await isolatingRows(ctx, ids, refused, async (lo, hi) => [await write(lo, hi)]);
  // The statement answers with the ids it did not complete (not this node's attempt), the keys its
  // jobs held that it could not settle (an enqueue of the key raced it), to settle again under the
  // head's lock, the queues it queued a key's next job in, and the jobs it took into this node's
  // hands. Every other id sent was completed.
  const notDone = new Set<string>();
  const unsettled: { partition: string; execution_key: string }[] = [];
  for (const { names, rows } of parts) {
    if (plainWrite) {
      const at = columnIndexes(names, PLAIN_COMPLETE_COLUMNS, 'complete_plain');
      for (const r of rows) {
        const id = r[at.not_done] as string | null;
        if (id !== null) notDone.add(id);
        else unsettled.push({ partition: r[at.partition] as string, execution_key: r[at.execution_key] as string });
      }
      continue;
    }
    const at = columnIndexes(names, COMPLETE_COLUMNS, 'complete_batch');
    for (const r of rows) {
      const id = r[at.not_done] as string | null;
      const partition = r[at.partition] as string | null;
      const key = r[at.execution_key] as string | null;
      if (id !== null) notDone.add(id);
      else if (r[at.id] !== null) taken.push(claimedJobAt(r, at, partition!, undefined, undefined, at.tid));
      else if (r[at.queue] !== null) queues.add(r[at.queue] as string);
      else if (partition !== null && key !== null) unsettled.push({ partition, execution_key: key });
    }
  }
  for (const q of await settleKeys(ctx, unsettled, tx?.client)) queues.add(q);
  settled.queues = [...queues];
  // A part Postgres refused wrote nothing: its ids are in `refused`, not completed either.
  const done = recorded(notDone.size === 0 && refused.size === 0 ? ids : ids.filter((id) => !notDone.has(id) && !refused.has(id)), refused);
  return Object.assign(done, { settled });
}

const COMPLETE_COLUMNS = ['not_done', 'partition', ...CLAIMED_COLUMNS, 'tid'] as const;
const PLAIN_COMPLETE_COLUMNS = ['not_done', 'partition', 'execution_key'] as const;

/** Records failed attempts (retried or final); returns the ids accepted, and apart the rows Postgres refused. `tx`: as complete(). */
export async function fail(ctx: StoreContext, nodeId: string, items: Failure[], tx?: Tx): Promise<Recorded> {
  const refused = new Map<string, string>();
  if (items.length === 0) return recorded([], refused);
  const ids = items.map((f) => f.id);
  const attempts = items.map((f) => f.attempt);
  const errors = items.map((f) => (f.error ? JSON.stringify(f.error) : null));
  const retryAts = items.map((f) => (f.retryAt ? f.retryAt.toISOString() : null));
  const finalStates = items.map((f) => f.finalState ?? 'failed');
  const write = (lo: number, hi: number) =>
    op.failBatch(ctx.ops, tx?.client ?? ctx.pool, [
      ids.slice(lo, hi),
      attempts.slice(lo, hi),
      errors.slice(lo, hi),
      retryAts.slice(lo, hi),
      finalStates.slice(lo, hi),
      nodeId,
    ]);
  const rows = tx ? await write(0, ids.length) : await isolatingRows(ctx, ids, refused, write);
  await settleKeys(ctx, rows, tx?.client);
  return recorded(
    rows.map((r) => r.id),
    refused,
  );
}

/**
 * Runs a batch write over rows [0, ids.length). When the database refuses the statement for a
 * property of a row, the batch is split in halves until each refused row stands alone: those
 * land in `refused`, every other row is written. A statement writes all of its rows or none, so
 * writing the halves again never writes a row twice. Other failures (connection, timeouts,
 * deadlocks) reject as before, for the caller to retry the whole batch; one met halfway through
 * a split leaves the parts written before it written, and their rows are then refused on the
 * retry as no longer this node's (the lease check), which costs their events but no outcome.
 */
async function isolatingRows<R>(
  ctx: StoreContext,
  ids: string[],
  refused: Map<string, string>,
  write: (lo: number, hi: number) => Promise<R[]>,
  lo = 0,
  hi = ids.length,
): Promise<R[]> {
  if (hi <= lo) return [];
  try {
    return await write(lo, hi);
  } catch (err) {
    if (!isRowRefusal(err)) throw err;
    if (hi - lo === 1) {
      refused.set(ids[lo]!, describeRefusal(err));
      return [];
    }
    if (lo === 0 && hi === ids.length)
      ctx.logger.warn({ err: err.message, rows: hi }, 'Postgres refused a batch for one of its rows; writing it in parts to find the row');
    const mid = lo + ((hi - lo) >>> 1);
    const first = await isolatingRows(ctx, ids, refused, write, lo, mid);
    return first.concat(await isolatingRows(ctx, ids, refused, write, mid, hi));
  }
}

/**
 * Renews the leases of the given running jobs in one statement; returns those still held by
 * this node (a missing id means the lease was lost) and which were asked to cancel. With
 * `renewWithinMs`, only leases ending within that long are written; fresher ones are checked only.
 */
export async function heartbeat(
  ctx: StoreContext,
  nodeId: string,
  leaseMs: number,
  jobIds: string[],
  info?: Record<string, unknown>,
  renewWithinMs?: number,
): Promise<{ renewed: string[]; cancelRequested: string[] }> {
  const rows = await op.heartbeat(ctx.ops, ctx.pool, [nodeId, leaseMs, info ? JSON.stringify(info) : null, jobIds, renewWithinMs ?? null]);
  return { renewed: rows.map((r) => r.id), cancelRequested: rows.filter((r) => r.cancel_requested).map((r) => r.id) };
}

/**
 * Hands claimed jobs back to the queue without counting the attempt; returns the ids released,
 * and apart those finished as cancelled instead (a cancel was asked while this node held them).
 * `executionKey` records a key derived from the job's definition for a job stored without one.
 */
export async function release(
  ctx: StoreContext,
  nodeId: string,
  items: { id: string; attempt: number; executionKey?: string | null }[],
): Promise<{ released: Set<string>; cancelled: Set<string>; refused: Map<string, string> }> {
  const released = new Set<string>();
  const cancelled = new Set<string>();
  const refused = new Map<string, string>();
  if (items.length === 0) return { released, cancelled, refused };
  const ids = items.map((i) => i.id);
  const attempts = items.map((i) => i.attempt);
  const keys = items.map((i) => i.executionKey ?? null);
  const rows = await isolatingRows(ctx, ids, refused, (lo, hi) =>
    op.releaseJobs(ctx.ops, ctx.pool, [ids.slice(lo, hi), attempts.slice(lo, hi), nodeId, keys.slice(lo, hi)]),
  );
  for (const r of rows) (r.cancelled ? cancelled : released).add(r.id);
  await settleKeys(ctx, rows);
  return { released, cancelled, refused };
}

/**
 * Requeues (or, past maxRescues, fails) every job whose lease expired: one sequential scan of jobs,
 * as no index covers running jobs. Safe to run on every node; the runtime's maintenance leader
 * runs it, at a cadence set by its cost (see rescueDeadNodes for the every-round path).
 */
export async function rescueExpired(ctx: StoreContext): Promise<RescuedJob[]> {
  return rescued(ctx, await op.rescueExpired(ctx.ops, ctx.pool, [ctx.maxRescues]));
}

/**
 * Requeues (or fails) the expired jobs of nodes that stopped heartbeating, reading jobs only when
 * the nodes table shows such a node: a node is one once its last heartbeat is older than its lease
 * less its heartbeat period (from its stored profile; `staleMs` for a row without them).
 */
export async function rescueDeadNodes(ctx: StoreContext, staleMs: number): Promise<RescuedJob[]> {
  return rescued(ctx, await op.rescueDeadNodes(ctx.ops, ctx.pool, [ctx.maxRescues, staleMs]));
}

/** The pages a sequential scan of jobs reads (what rescueExpired costs). */
export async function jobsPages(ctx: StoreContext): Promise<number> {
  const [row] = await op.jobsPages(ctx.ops, ctx.pool, []);
  return row!.pages;
}

async function rescued(
  ctx: StoreContext,
  rows: { id: string; partition: string; queue: string; execution_key: string | null; failed: boolean }[],
): Promise<RescuedJob[]> {
  await settleKeys(ctx, rows);
  // The periodic pass also settles keys a crash or an error left between a statement and its settle.
  await settleStaleKeys(ctx).catch((err: Error) => ctx.logger.warn({ err: err.message }, 'settling stale execution keys failed'));
  return rows.map((r) => ({ id: r.id, partition: r.partition, queue: r.queue, executionKey: r.execution_key, failed: r.failed }));
}

/**
 * Stores running jobs' progress; `json` is the value's JSON text when the caller has checked it.
 * Returns the values refused (id → why), which were dropped.
 */
export async function updateProgress(
  ctx: StoreContext,
  nodeId: string,
  items: { id: string; progress: unknown; json?: string }[],
): Promise<Map<string, string>> {
  const refused = new Map<string, string>();
  if (items.length === 0) return refused;
  const ids: string[] = [];
  const values: string[] = [];
  for (const p of items) {
    try {
      values.push(p.json ?? toJsonStrict(p.progress, 'progress').json);
      ids.push(p.id);
    } catch (err) {
      refused.set(p.id, describeError(err).message);
    }
  }
  await isolatingRows(ctx, ids, refused, (lo, hi) =>
    op.updateProgress(ctx.ops, ctx.pool, [ids.slice(lo, hi), values.slice(lo, hi), nodeId]),
  );
  return refused;
}

function recorded(ids: Iterable<string>, refused: Map<string, string>): Recorded {
  return Object.assign(new Set(ids), { refused });
}

/**
 * A statement failure caused by what one of its rows holds: a data exception (class 22: bad JSON,
 * a value too long, an encoding error), an integrity constraint violation (23), or a value over a
 * size limit (54000). Splitting the batch isolates such a row; retrying it whole never helps.
 */
export function isRowRefusal(err: unknown): err is pg.DatabaseError {
  if (!(err instanceof pg.DatabaseError) || typeof err.code !== 'string') return false;
  return err.code.startsWith('22') || err.code.startsWith('23') || err.code === '54000';
}

/** SQLSTATE classes a retry of the same transaction can get past: connection, rollback (deadlock, serialization), resources, operator intervention, system. */
const TRANSIENT_SQLSTATE = /^(08|40|53|57|58)/;

/**
 * A failure that says nothing about the statement or its rows: the connection went, the transaction
 * was chosen as a deadlock's victim, the server ran short or is shutting down. Written again whole,
 * later, it succeeds; splitting its batch or failing its jobs for it would lose work to an outage.
 */
export function isTransientDbError(err: unknown): boolean {
  const code = (err as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && TRANSIENT_SQLSTATE.test(code)) return true;
  // node-postgres's own, without a SQLSTATE: the connection went away under the statement.
  return /Connection terminated|ECONNRESET|ECONNREFUSED|timeout exceeded/i.test(String((err as Error | null)?.message ?? ''));
}

/**
 * What a refused row is failed with, so it must be storable itself. A constraint's detail repeats
 * the whole row, which may be what was refused (and is large): only a data exception's detail,
 * which says what was wrong with the value, is kept, and short.
 */
function describeRefusal(err: pg.DatabaseError): string {
  const detail = err.code!.startsWith('22') && err.detail ? `; ${err.detail.slice(0, 200)}` : '';
  return `Postgres refused to store it (${err.message.slice(0, 300)}${detail}; SQLSTATE ${err.code})`;
}
