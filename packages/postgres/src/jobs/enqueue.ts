import type pg from 'pg';
import {
  DuplicateQueueKeyError,
  NAME_PATTERN,
  ValidationError,
  lookupWithTraceContext,
  traceEnqueue,
  toJsonStrict,
  uuidv7,
  isUuid,
  type EnqueueOptions,
} from '@partita/core';
import type { StoreContext } from '../context.js';
import * as op from '../ops.js';
import type { EnqueueBatchParams, EnqueueOneParams } from '../ops.js';
import { lookupIndex } from '../lookup.js';
import { assertKnownQueues, queuesKnown } from '../registry.js';
import { claimedJob, type ClaimedJob } from './claim.js';
import { queueKeyHolder, settleKeys } from './keys.js';
import { inTransaction } from '../transaction.js';

// Enqueue: validation of new jobs, their encoding as the columns of one INSERT, and the inserts.

/**
 * A job stored as a node's running attempt (`claimed`, to start once the transaction commits), or
 * stored queued (`claimed` null) because its queue is paused or stopped for that node in Postgres.
 */
export type LeasedOutcome = { id: string; claimed: ClaimedJob | null };

/** How many jobs go into one INSERT statement; larger batches are split inside one transaction. */
const ENQUEUE_CHUNK = 5000;

export interface NewJob extends EnqueueOptions {
  partition: string;
  type: string;
  payload?: unknown;
  /** The enqueuer's W3C trace context, set by the `partita.enqueue` span when tracing is on. */
  traceparent?: string;
  /**
   * The name of the continuation (OutcomeContinuation.name) that must see this job's final outcome,
   * whatever its type: its outcome is then written in that continuation's transaction, and only
   * nodes that run it claim the job. Set by layers that own a job's follow-up (a workflow marks its
   * steps); client.enqueue never sets it.
   */
  continuation?: string;
  /**
   * The job's id, made by the caller (a UUID; core's uuidv7 keeps the primary key's inserts in
   * order); otherwise one is made here. A layer that writes rows naming the job in the same
   * transaction (a workflow's step links) then sends them together with the enqueue instead of
   * waiting for its answer. Unique like any id: one already taken fails the statement.
   */
  id?: string;
}

export interface EnqueueOutcome {
  id: string;
  /** Set when the job was not enqueued because its queue key is held by another live job. */
  refused?: { reason: 'queue_key'; queueKey: string; heldBy: string | undefined };
}

/**
 * Inserts jobs in one round trip per few thousand. Jobs whose queue key is taken are not
 * inserted and come back with `refused`; everything else is durable when this resolves.
 */
export async function enqueue(ctx: StoreContext, jobs: NewJob[]): Promise<EnqueueOutcome[]> {
  return traceEnqueue(
    jobs,
    (traced) => insertJobs(ctx, traced),
    (outcomes) => outcomes.filter((o) => !o.refused).map((o) => o.id),
  );
}

/** `tx`: a connection inside a transaction (withTransaction): every statement runs there. */
export async function insertJobs(ctx: StoreContext, jobs: NewJob[], tx?: pg.PoolClient): Promise<EnqueueOutcome[]> {
  if (jobs.length === 0) return [];
  const now = Date.now();
  const batch = new EnqueueBatch();
  const single = jobs.length === 1;
  for (let i = 0; i < jobs.length; i++) addJob(ctx, batch, jobs[i]!, i, single, now);
  if (!queuesKnown(ctx, batch.queuePairs)) await assertKnownQueues(ctx, batch.queuePairs, tx);
  // Only keyed jobs come back: the others cannot be refused, so the statement succeeding means
  // they were inserted.
  const inserted = new Set<string>();
  if (jobs.length <= ENQUEUE_CHUNK) {
    const rows = single
      ? await op.enqueueOne(ctx.ops, tx ?? ctx.onePlanPool, batch.single())
      : await op.enqueueBatch(ctx.ops, tx ?? ctx.pool, batch.params(0, jobs.length));
    for (const r of rows) inserted.add(r.id);
  } else if (tx) {
    for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
      for (const r of await op.enqueueBatch(ctx.ops, tx ?? ctx.pool, batch.params(i, Math.min(i + ENQUEUE_CHUNK, jobs.length))))
        inserted.add(r.id);
    }
  } else {
    await inTransaction(ctx.pool, async (client) => {
      for (let i = 0; i < jobs.length; i += ENQUEUE_CHUNK) {
        const params = batch.params(i, Math.min(i + ENQUEUE_CHUNK, jobs.length));
        for (const r of await op.enqueueBatch(ctx.ops, client, params)) inserted.add(r.id);
      }
    });
  }
  const { ids, partitions, queueKeys } = batch;
  const outcomes: EnqueueOutcome[] = [];
  const refused: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    outcomes.push({ id: ids[i]! });
    if (queueKeys[i] !== null && !inserted.has(ids[i]!)) refused.push(i);
  }
  if (refused.length > 0) {
    // A refused job may have been made its execution key's head (the heads are chosen before the
    // inserts): settling the key hands the turn to its next job, or drops the head.
    const { executionKeys } = batch;
    await settleKeys(
      ctx,
      refused.map((i) => ({ partition: partitions[i]!, execution_key: executionKeys[i]! })),
      tx,
    );
    const holders = new Map<string, string>();
    const keysByPartition = new Map<string, string[]>();
    for (const i of refused) {
      const keys = keysByPartition.get(partitions[i]!) ?? [];
      keys.push(queueKeys[i]!);
      keysByPartition.set(partitions[i]!, keys);
    }
    for (const [partition, keys] of keysByPartition) {
      const found = await op.queueKeyHolders(ctx.ops, tx ?? ctx.pool, [partition, keys]);
      for (const h of found) holders.set(`${partition}\u0000${h.queue_key}`, h.id);
    }
    for (const i of refused) {
      const queueKey = queueKeys[i]!;
      const heldBy = holders.get(`${partitions[i]}\u0000${queueKey}`);
      outcomes[i]!.refused = { reason: 'queue_key', queueKey, heldBy: heldBy === ids[i] ? undefined : heldBy };
    }
  }
  return outcomes;
}

/**
 * Enqueues one job straight into a node's hands: stored as that node's running attempt, leased
 * for `leaseMs`, and returned as claimed (the node runs it from a hand-off message, no claim).
 * A taken queue key is a DuplicateQueueKeyError. Jobs with an execution key are not handed off:
 * their key's turn is the claim's to decide. `null`: the job's queue is paused or stopped for that
 * node in Postgres, so it was stored queued for a claim once the queue runs again (do not hand it).
 */
export async function enqueueHandedOff(ctx: StoreContext, job: NewJob, nodeId: string, leaseMs: number): Promise<LeasedOutcome> {
  return traceEnqueue(
    [job],
    ([traced]) => insertHandedOff(ctx, traced!, nodeId, leaseMs),
    (stored) => [stored.id],
  );
}

async function insertHandedOff(ctx: StoreContext, job: NewJob, nodeId: string, leaseMs: number): Promise<LeasedOutcome> {
  const batch = new EnqueueBatch();
  addJob(ctx, batch, job, 0, true, Date.now());
  if (batch.executionKeys[0] !== null)
    throw new ValidationError('a job with an execution key is claimed, never handed off', 'executionKey');
  await assertKnownQueues(ctx, batch.queuePairs);
  const [row] = await op.enqueueHandoff(ctx.ops, ctx.onePlanPool, [...batch.single(), nodeId, leaseMs]);
  if (!row) {
    const queueKey = batch.queueKeys[0]!;
    throw new DuplicateQueueKeyError(queueKey, await queueKeyHolder(ctx, batch.partitions[0]!, queueKey));
  }
  if (row.state === 'queued') return { id: row.id, claimed: null };
  const claimed = claimedJob(batch.partitions[0]!, {
    ...row,
    execution_key: null,
    cancel_requested: false,
    traceparent: job.traceparent ?? null,
    // The hand-off message carries the mark: a node that does not run that continuation hands it back.
    continuation: batch.continuations[0] ?? null,
  });
  return { id: claimed.id, claimed };
}

/**
 * Jobs enqueued inside a transaction straight into the hands of node `nodeId`: stored as its
 * running attempts, leased for `leaseMs`, and returned as claimed, so that node starts them once the
 * transaction commits, without a claim. For a node's own follow-up jobs (a continuation's); a job
 * with a queue or execution key or a later start is refused here, since the claim alone orders those.
 * `claimed` null: its queue is paused or stopped for that node in Postgres, so it was stored
 * queued for a claim once the queue runs again, and must not be started.
 */
export async function insertLeased(
  ctx: StoreContext,
  jobs: NewJob[],
  nodeId: string,
  leaseMs: number,
  tx: pg.PoolClient,
): Promise<LeasedOutcome[]> {
  if (jobs.length === 0) return [];
  let ids: string[] = [];
  return traceEnqueue(
    jobs,
    async (traced) => {
      const batch = leasedBatch(ctx, traced);
      if (!queuesKnown(ctx, batch.queuePairs)) await assertKnownQueues(ctx, batch.queuePairs, tx);
      ids = batch.ids;
      const queued = new Set<string>();
      for (const params of leasedParams(batch, traced.length, nodeId, leaseMs))
        for (const row of await op.enqueueLeased(ctx.ops, tx, params)) queued.add(row.id);
      return leasedOutcomes(batch, traced, queued);
    },
    () => ids,
  );
}

/** The ids of jobs sent as a transaction's last statements (sendLeased), and their outcomes once answered. */
export interface LeasedSent {
  ids: string[];
  /** Settles with the statements' answers, before the COMMIT's; rejects with the transaction's failure if they fail. */
  stored: Promise<LeasedOutcome[]>;
}

/**
 * insertLeased, sent as the transaction's last statements (`sendLast`): resolves once they are on
 * the wire, with the jobs' ids, so the COMMIT can follow them without waiting for their answer (a
 * round trip fewer in a step's transition). Whether each job was leased or stored queued is known
 * from `stored`, which the caller reads after the commit. Sent within the call when the queues are
 * known, so a statement the caller sends next follows them on the wire.
 */
export async function sendLeased(
  ctx: StoreContext,
  jobs: NewJob[],
  nodeId: string,
  leaseMs: number,
  tx: pg.PoolClient,
  sendLast: (statement: pg.QueryConfig) => Promise<{ id: string }[]>,
): Promise<LeasedSent> {
  if (jobs.length === 0) return { ids: [], stored: Promise.resolve([]) };
  let ids: string[] = [];
  let onSent!: (ids: string[]) => void;
  const sent = new Promise<string[]>((resolve) => (onSent = resolve));
  const stored = traceEnqueue(
    jobs,
    async (traced) => {
      const batch = leasedBatch(ctx, traced);
      if (!queuesKnown(ctx, batch.queuePairs)) await assertKnownQueues(ctx, batch.queuePairs, tx);
      ids = batch.ids;
      const statement = ctx.ops.enqueue_leased;
      const answers = leasedParams(batch, traced.length, nodeId, leaseMs).map((values) =>
        sendLast({ name: statement.name, text: statement.text, values }),
      );
      onSent(ids);
      const queued = new Set<string>();
      for (const rows of await Promise.all(answers)) for (const row of rows) queued.add(row.id);
      return leasedOutcomes(batch, traced, queued);
    },
    () => ids,
  );
  // A failure before anything was sent (a job that cannot be leased) is this call's rejection;
  // after, the caller hears it through `stored` and the transaction's.
  stored.catch(() => undefined);
  return { ids: await Promise.race([sent, stored.then(() => sent)]), stored };
}

/** The columns of jobs to lease, checked: no key and no later start. */
function leasedBatch(ctx: StoreContext, jobs: NewJob[]): EnqueueBatch {
  const batch = new EnqueueBatch();
  const single = jobs.length === 1;
  const now = Date.now();
  for (let i = 0; i < jobs.length; i++) {
    addJob(ctx, batch, jobs[i]!, i, single, now);
    if (batch.queueKeys[i] !== null || batch.executionKeys[i] !== null || batch.runAts[i] !== 'NULL')
      throw new ValidationError(
        'a job with a queue key, an execution key or a later start is claimed, never leased at enqueue; enqueue it with tx.enqueue',
        jobPath(i, single),
      );
  }
  return batch;
}

/** The values of each enqueue_leased statement: one per ENQUEUE_CHUNK jobs. */
function leasedParams(batch: EnqueueBatch, count: number, nodeId: string, leaseMs: number): [...EnqueueBatchParams, string, number][] {
  const statements: [...EnqueueBatchParams, string, number][] = [];
  for (let i = 0; i < count; i += ENQUEUE_CHUNK) statements.push([...batch.params(i, Math.min(i + ENQUEUE_CHUNK, count)), nodeId, leaseMs]);
  return statements;
}

/** Each job as claimed by the node, or null for those the statements stored queued (`queued`). */
function leasedOutcomes(batch: EnqueueBatch, jobs: NewJob[], queued: Set<string>): LeasedOutcome[] {
  // The payload as Postgres stores it (a Date arrives as a string), as a claim would return it.
  return jobs.map((job, i) => {
    const id = batch.ids[i]!;
    if (queued.has(id)) return { id, claimed: null };
    const claimed: ClaimedJob = {
      id,
      partition: batch.partitions[i]!,
      queue: batch.queues[i]!,
      type: batch.types[i]!,
      payload: JSON.parse(batch.payloads[i]!),
      priority: batch.priorities[i]!,
      attempt: 1,
      maxAttempts: batch.maxAttempts[i]!,
      timeoutMs: batch.timeouts[i] === 'NULL' ? null : (batch.timeouts[i] as number),
      queueKey: null,
      executionKey: null,
      cancelRequested: false,
      traceparent: job.traceparent ?? null,
      continuation: batch.continuations[i] ?? null,
    };
    return { id, claimed };
  });
}

/** Enqueues one job; a taken queue key is a DuplicateQueueKeyError. */
export async function enqueueOne(ctx: StoreContext, job: NewJob): Promise<string> {
  const [outcome] = await enqueue(ctx, [job]);
  if (outcome!.refused) throw new DuplicateQueueKeyError(outcome!.refused.queueKey, outcome!.refused.heldBy);
  return outcome!.id;
}

/** Validates job `index` of a batch and appends it to the batch's columns. */
function addJob(ctx: StoreContext, batch: EnqueueBatch, job: NewJob, index: number, single: boolean, now: number): void {
  if (typeof job !== 'object' || job === null) throw new ValidationError('must be an object', jobPath(index, single));
  const fields = fieldsOf(job);
  const { partition, queue: queueGiven, type, priority: priorityGiven, maxAttempts: attemptsGiven, timeoutMs: timeoutGiven } = fields;
  const { runAt: runAtDate, delayMs, queueKey, executionKey, payload: value, lookup, continuation, id } = fields;
  if (id !== undefined && (typeof id !== 'string' || !isUuid(id)))
    throw new ValidationError('id must be a UUID', jobPath(index, single, 'id'));
  const queue = queueGiven ?? 'default';
  const priority = priorityGiven ?? 0;
  const maxAttempts = attemptsGiven ?? 1;
  const timeoutMs = timeoutGiven ?? null;
  if (typeof partition !== 'string' || !NAME_PATTERN.test(partition)) {
    throw new ValidationError('partition must be 1-64 letters, digits, _ or -', jobPath(index, single, 'partition'));
  }
  if (typeof queue !== 'string' || !NAME_PATTERN.test(queue)) {
    throw new ValidationError('queue must be 1-64 letters, digits, _ or -', jobPath(index, single, 'queue'));
  }
  if (typeof type !== 'string' || type.length === 0 || type.length > 200) {
    throw new ValidationError('type must be a non-empty string (the name given to defineJob)', jobPath(index, single, 'type'));
  }
  if (!Number.isInteger(priority) || Math.abs(priority) > 1_000_000) {
    throw new ValidationError('priority must be an integer (lower runs first)', jobPath(index, single, 'priority'));
  }
  if (!Number.isInteger(maxAttempts) || maxAttempts < 1 || maxAttempts > 1000) {
    throw new ValidationError('maxAttempts must be an integer from 1 to 1000', jobPath(index, single, 'maxAttempts'));
  }
  if (timeoutMs !== null && (!Number.isInteger(timeoutMs) || timeoutMs < 0 || timeoutMs > 2_147_483_647)) {
    throw new ValidationError('timeoutMs must be a whole number of milliseconds ≥ 0', jobPath(index, single, 'timeoutMs'));
  }
  let runAt: string | null = null;
  if (runAtDate !== undefined && delayMs !== undefined)
    throw new ValidationError('give runAt or delayMs, not both', jobPath(index, single));
  if (runAtDate !== undefined) {
    if (!(runAtDate instanceof Date) || Number.isNaN(runAtDate.getTime()))
      throw new ValidationError('runAt must be a valid Date', jobPath(index, single, 'runAt'));
    runAt = runAtDate.toISOString();
  } else if (delayMs !== undefined) {
    if (typeof delayMs !== 'number' || !Number.isFinite(delayMs) || delayMs < 0) {
      throw new ValidationError('delayMs must be a number of milliseconds ≥ 0', jobPath(index, single, 'delayMs'));
    }
    if (delayMs > 0) runAt = new Date(now + delayMs).toISOString();
  }
  if (queueKey !== undefined && (typeof queueKey !== 'string' || queueKey.length === 0 || queueKey.length > 500)) {
    throw new ValidationError('queueKey must be a non-empty string of at most 500 characters', jobPath(index, single, 'queueKey'));
  }
  if (executionKey !== undefined && (typeof executionKey !== 'string' || executionKey.length === 0 || executionKey.length > 500)) {
    throw new ValidationError('executionKey must be a non-empty string of at most 500 characters', jobPath(index, single, 'executionKey'));
  }
  if (continuation !== undefined && (typeof continuation !== 'string' || continuation.length === 0 || continuation.length > 200)) {
    throw new ValidationError(
      "continuation must be a continuation's name (a non-empty string of at most 200 characters)",
      jobPath(index, single, 'continuation'),
    );
  }
  // Kept as JSON text: it is spliced into the batch's payload document as is, never parsed back.
  const payload = value === undefined ? 'null' : toJsonStrict(value, () => jobPath(index, single, 'payload'), ctx.payloadLimitBytes).json;
  const indexed = lookup === undefined || lookup === null ? null : lookupIndex(lookup, jobPath(index, single, 'lookup'));
  batch.add(
    id ?? uuidv7(now),
    partition,
    queue,
    type,
    payload,
    priority,
    runAt,
    maxAttempts,
    timeoutMs,
    queueKey ?? null,
    executionKey ?? null,
    job.traceparent ? JSON.stringify(lookupWithTraceContext(indexed && lookup, job.traceparent)) : indexed ? JSON.stringify(lookup) : null,
    indexed ? JSON.stringify(indexed) : null,
    continuation ?? null,
  );
}

const JOB_FIELDS = [
  'partition',
  'queue',
  'type',
  'payload',
  'priority',
  'maxAttempts',
  'timeoutMs',
  'runAt',
  'delayMs',
  'queueKey',
  'executionKey',
  'lookup',
  'continuation',
  'id',
] as const;

type JobFields = { [K in (typeof JOB_FIELDS)[number]]: NewJob[K] | undefined };

/**
 * A job's fields in an object of one fixed shape. On Node 20, objects made by spread plus a
 * property (`{ ...job, partition }`, as the client builds them) each get a hidden class of their
 * own, so every field read from them is a megamorphic lookup, the absent fields' dearest: the
 * twelve reads cost about 2 µs a job, more than the rest of the validation. Object.assign copies
 * a plain object's own enumerable properties (which its fields are) without those lookups.
 * Anything else (a prototype with defaults, a class with getters) is read field by field,
 * inherited fields included.
 */
function fieldsOf(job: NewJob): JobFields {
  const fields: JobFields = {
    partition: undefined,
    queue: undefined,
    type: undefined,
    payload: undefined,
    priority: undefined,
    maxAttempts: undefined,
    timeoutMs: undefined,
    runAt: undefined,
    delayMs: undefined,
    queueKey: undefined,
    executionKey: undefined,
    lookup: undefined,
    continuation: undefined,
    id: undefined,
  };
  if (Object.getPrototypeOf(job) === Object.prototype) {
    Object.assign(fields, job);
    // An own "__proto__" key (JSON.parse makes those) goes through the setter and swaps the copy's
    // prototype; read such a job field by field instead.
    if (Object.getPrototypeOf(fields) === Object.prototype) return fields;
  }
  const slow = {} as Record<string, unknown>;
  for (const key of JOB_FIELDS) slow[key] = job[key];
  return slow as JobFields;
}

/** Names job `index` of a batch in error messages; only called when there is an error to report. */
function jobPath(index: number, single: boolean, field?: string): string {
  const job = single ? 'job' : `jobs[${index}]`;
  return field === undefined ? job : `${job}.${field}`;
}

/**
 * Validated jobs as parallel columns, encoded per chunk into enqueue_batch's parameters. Column
 * arrays replace the one JSON document of rows, which Postgres had to parse and then pick apart
 * field by field. The arrays are joined here, not handed to pg as JS arrays, which escapes every
 * element with two regex replaces: only values that never need escaping (ids, numbers, names,
 * ISO times) go as array literals, and anything else as JSON, as before.
 */
class EnqueueBatch {
  readonly ids: string[] = [];
  readonly partitions: string[] = [];
  readonly queues: string[] = [];
  readonly types: string[] = [];
  readonly payloads: string[] = [];
  readonly priorities: number[] = [];
  /** ISO timestamps, or NULL (array literal syntax) for "now". */
  readonly runAts: string[] = [];
  readonly maxAttempts: number[] = [];
  readonly timeouts: (number | 'NULL')[] = [];
  readonly queueKeys: (string | null)[] = [];
  readonly executionKeys: (string | null)[] = [];
  /** JSON texts; 'null' where the job has none. */
  readonly lookups: string[] = [];
  readonly lookupIndexes: string[] = [];
  readonly continuations: (string | null)[] = [];
  /** Each partition and queue used, consecutive repeats left out, for the known-queue check. */
  readonly queuePairs: { partition: string; queue: string }[] = [];
  private runAtCount = 0;
  private timeoutCount = 0;
  private queueKeyCount = 0;
  private executionKeyCount = 0;
  private lookupCount = 0;
  private continuationCount = 0;

  add(
    id: string,
    partition: string,
    queue: string,
    type: string,
    payload: string,
    priority: number,
    runAt: string | null,
    maxAttempts: number,
    timeoutMs: number | null,
    queueKey: string | null,
    executionKey: string | null,
    lookup: string | null,
    lookupIndex: string | null,
    continuation: string | null,
  ): void {
    const last = this.queuePairs[this.queuePairs.length - 1];
    if (last === undefined || last.partition !== partition || last.queue !== queue) this.queuePairs.push({ partition, queue });
    this.ids.push(id);
    this.partitions.push(partition);
    this.queues.push(queue);
    this.types.push(type);
    this.payloads.push(payload);
    this.priorities.push(priority);
    this.runAts.push(runAt ?? 'NULL');
    if (runAt !== null) this.runAtCount++;
    this.maxAttempts.push(maxAttempts);
    this.timeouts.push(timeoutMs ?? 'NULL');
    if (timeoutMs !== null) this.timeoutCount++;
    this.queueKeys.push(queueKey);
    if (queueKey !== null) this.queueKeyCount++;
    this.executionKeys.push(executionKey);
    if (executionKey !== null) this.executionKeyCount++;
    this.lookups.push(lookup ?? 'null');
    this.lookupIndexes.push(lookupIndex ?? 'null');
    if (lookup !== null) this.lookupCount++;
    this.continuations.push(continuation);
    if (continuation !== null) this.continuationCount++;
  }

  /** enqueue_one's parameters: the batch's only job. */
  single(): EnqueueOneParams {
    const nullIf = <T>(value: T, none: T) => (value === none ? null : value);
    return [
      this.ids[0],
      this.partitions[0],
      this.queues[0],
      this.types[0],
      this.payloads[0],
      this.priorities[0],
      nullIf(this.runAts[0], 'NULL'),
      this.maxAttempts[0],
      nullIf(this.timeouts[0], 'NULL'),
      this.queueKeys[0],
      this.executionKeys[0],
      nullIf(this.lookups[0], 'null'),
      nullIf(this.lookupIndexes[0], 'null'),
      this.continuations[0],
    ] as EnqueueOneParams;
  }

  /**
   * enqueue_batch's parameters for jobs [from, to). A column with no value in the whole batch
   * goes as NULL: ROWS FROM pads it with nulls, so a batch of plain jobs sends no null lists.
   */
  params(from: number, to: number): EnqueueBatchParams {
    const whole = from === 0 && to === this.ids.length;
    const part = <T>(column: T[]): T[] => (whole ? column : column.slice(from, to));
    return [
      `{${part(this.ids).join(',')}}`,
      // Names match NAME_PATTERN, so quoting is enough; quoted, a queue named null stays a name.
      `{"${part(this.partitions).join('","')}"}`,
      `{"${part(this.queues).join('","')}"}`,
      JSON.stringify(part(this.types)),
      `[${part(this.payloads).join(',')}]`,
      `{${part(this.priorities).join(',')}}`,
      this.runAtCount > 0 ? `{${part(this.runAts).join(',')}}` : null,
      `{${part(this.maxAttempts).join(',')}}`,
      this.timeoutCount > 0 ? `{${part(this.timeouts).join(',')}}` : null,
      this.queueKeyCount > 0 ? JSON.stringify(part(this.queueKeys)) : null,
      this.executionKeyCount > 0 ? JSON.stringify(part(this.executionKeys)) : null,
      this.lookupCount > 0 ? `[${part(this.lookups).join(',')}]` : null,
      this.lookupCount > 0 ? `[${part(this.lookupIndexes).join(',')}]` : null,
      this.continuationCount > 0 ? JSON.stringify(part(this.continuations)) : null,
    ];
  }
}
