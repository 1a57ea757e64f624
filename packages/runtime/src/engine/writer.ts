/**
 * Writes an outcome batch: the plain statements (complete, fail, release, progress) side by side,
 * and the final outcomes of types with continuations, and of jobs marked for one, in a transaction
 * of their own, with them. Unmarked jobs of types without continuations never pay for it.
 * The I/O half of the outcome batch (see outcomes.ts); its result comes back as an engine message.
 */
import { traceComplete, type Logger } from '@partita/core';
import {
  isRowRefusal,
  type ClaimedJob,
  type EnqueueOutcome,
  type LeasedSent,
  type NewJob,
  type Recorded,
  type TakeInto,
} from '@partita/postgres';
import type {
  Continuation,
  ContinuationPrepare,
  ContinuationTx,
  FinishedJob,
  OutcomeContinuation,
  ResolvedJobDefinition,
} from '../define.js';
import type { Metrics } from '../metrics.js';
import type { EngineMsg } from './messages.js';
import {
  CONTINUATION_TRIES,
  ContinuationThrew,
  batchSize,
  countContinuationTry,
  settleWrites,
  splitContinued,
  transientFailure,
  type ContinuedPart,
  type ContinuedWrite,
  type FlushBatch,
  type PendingCompletion,
  type PendingFailure,
} from './outcomes.js';
import type { EngineStore } from './types.js';

export interface WriterOptions {
  store: EngineStore;
  nodeId: string;
  partition: string;
  log: Logger;
  metrics?: Metrics;
  /** Job type → its continuations (the definition's first, then plugins'). */
  continuationsByType: ContinuationIndex;
  /** Where the write's result goes: the engine's mailbox. */
  reply: (msg: EngineMsg) => void;
  /**
   * After a transaction with continuations committed: the queues of this partition its continuations
   * enqueued into (their follow-ups are claimable now, not at the next poll).
   */
  enqueued?: (queues: string[]) => void;
  /** This node's own hands, for a continuation's tx.enqueueHere; absent: it enqueues as tx.enqueue. */
  here?: OwnHands;
  /**
   * Whether a job type's definition has outcome callbacks (onSuccess and the like): a transaction
   * recording the outcome of such a job commits synchronously whatever its continuations ask, since
   * the callback tells user code the outcome was recorded.
   */
  hooked?: (type: string) => boolean;
}

/**
 * The engine's side of tx.enqueueHere. `reserve` runs inside the continuation's transaction, on the
 * engine's thread but outside its mailbox: it only takes a place in the queue's window (a counter),
 * which `took` or `dropped` gives back exactly once, after the commit or the rollback.
 */
export interface OwnHands {
  /** Lease lengths of the jobs stored as this node's running attempts. */
  leaseMs: number;
  /** Whether the engine can start this job here now; true takes a place for it. */
  reserve(job: NewJob): boolean;
  /** The transaction committed: these jobs are this node's running attempts; start them. */
  took(jobs: ClaimedJob[], reserved: string[]): void;
  /** The transaction rolled back: the places reserved in these queues are free again. */
  dropped(reserved: string[]): void;
  /**
   * Whether the engine can start a job of this queue here now (the next job of a key this node
   * just completed); true takes a place, given back by `took` or `dropped` exactly once.
   */
  reserveNext(queue: string): boolean;
  /** The node's job types and continuations: a key's next job of others is queued, not taken. */
  takes: { types: string[]; continuations: readonly string[] };
}

type NamedContinuation = {
  name: string;
  run: Continuation;
  prepare?: ContinuationPrepare | undefined;
  genericPlans?: boolean | undefined;
  recordsSuccess?: boolean | undefined;
};

/**
 * The continuations a finished job goes through: its type's, and the one its mark names.
 * `empty` when there are none at all (every batch then takes the plain write).
 */
export interface ContinuationIndex {
  readonly empty: boolean;
  /** The names a job may be marked with on this node: the claim takes marked jobs only for these. */
  readonly marks: readonly string[];
  /** The marks whose continuation records its jobs' successes itself (OutcomeContinuation.recordsSuccess). */
  readonly successesRecordedBy: readonly string[];
  of(type: string): readonly NamedContinuation[] | undefined;
  /** The continuation a mark names, or undefined when this node runs none by that name. */
  marked(name: string): NamedContinuation | undefined;
}

/**
 * Job type → its continuations: the definition's first, then plugins' listed by type, then plugins'
 * chosen by a predicate. A predicate is asked at each write (never cached), so a plugin whose types
 * change while the node runs is followed at once. Every plugin continuation also takes the jobs
 * marked with its name; one without `types` takes only those.
 */
export function continuationsByType(
  definitions: ReadonlyMap<string, ResolvedJobDefinition>,
  plugins: readonly OutcomeContinuation[] = [],
): ContinuationIndex {
  const byType = new Map<string, NamedContinuation[]>();
  for (const [type, def] of definitions)
    if (def.continuation) byType.set(type, [{ name: `${type}.continuation`, run: (tx, jobs) => def.continuation!(tx, jobs) }]);
  const chosen: { named: NamedContinuation; types: (type: string) => boolean }[] = [];
  // One object per name: the marked jobs of a batch reach their continuation in one call, whatever their types.
  const byName = new Map<string, NamedContinuation>();
  for (const c of plugins) {
    const { types } = c;
    const named: NamedContinuation = {
      name: c.name,
      run: c.run,
      prepare: c.prepare,
      genericPlans: c.genericPlans,
      recordsSuccess: c.recordsSuccess,
    };
    if (!byName.has(c.name)) byName.set(c.name, named);
    if (types === undefined) continue;
    if (typeof types === 'function') chosen.push({ named, types });
    else for (const type of types) byType.set(type, [...(byType.get(type) ?? []), named]);
  }
  const marks = [...byName.keys()];
  const successesRecordedBy = [...byName.values()].filter((c) => c.recordsSuccess === true).map((c) => c.name);
  const marked = (name: string) => byName.get(name);
  if (chosen.length === 0)
    return { empty: byType.size === 0 && byName.size === 0, marks, successesRecordedBy, marked, of: (type) => byType.get(type) };
  // The list of a type is rebuilt only when the set of predicates accepting it changed: this runs for
  // every job written, and must not allocate a list per job.
  const memo = new Map<string, { accepted: string; list: NamedContinuation[] | undefined }>();
  return {
    empty: false,
    marks,
    successesRecordedBy,
    marked,
    of(type) {
      let accepted = '';
      for (const c of chosen) accepted += c.types(type) ? '1' : '0';
      const known = memo.get(type);
      if (known !== undefined && known.accepted === accepted) return known.list;
      let list: NamedContinuation[] | undefined = byType.get(type);
      chosen.forEach((c, i) => {
        if (accepted[i] === '1') list = [...(list ?? []), c.named];
      });
      memo.set(type, { accepted, list });
      return list;
    },
  };
}

export class OutcomeWriter {
  /** Marks this node runs no continuation for, warned about once each. */
  private readonly unknownMarks = new Set<string>();
  private readonly hasContinuation = (job: ClaimedJob) => {
    const index = this.o.continuationsByType;
    const mark = job.continuation;
    if (mark != null) {
      if (index.marked(mark)) return true;
      this.warnUnknownMark(mark, job);
    }
    return index.of(job.type) !== undefined;
  };

  constructor(private readonly o: WriterOptions) {}

  /**
   * A claim takes marked jobs only for the continuations this node runs, so this is a job claimed by
   * some other means (a tool claiming any job): its outcome is recorded plainly rather than held
   * back forever, and the mark's continuation never sees it.
   */
  private warnUnknownMark(mark: string, job: ClaimedJob): void {
    if (this.unknownMarks.has(mark)) return;
    this.unknownMarks.add(mark);
    this.o.log.warn(
      { continuation: mark, job: job.id, type: job.type, known: this.o.continuationsByType.marks },
      'a job is marked for a continuation this node does not run; its outcome is recorded without it (load the plugin that provides it)',
    );
  }

  /** Writes the batch; replies 'flushed' (with the parts that failed, if any) or 'flushFailed' (nothing was written). */
  write(batch: FlushBatch): void {
    const { store, nodeId, partition, metrics } = this.o;
    const flushStarted = performance.now();
    const flushSize = batchSize(batch);
    const traced = traceComplete(partition, batch.completions, batch.failures);
    // No type has a continuation: every flush takes the plain path.
    const split = this.o.continuationsByType.empty ? undefined : splitContinued(batch, this.hasContinuation);
    const plain = split ? split.plain : batch;
    const continued = split?.continued;
    const take = this.reserveNext(plain.completions);
    const work = Promise.allSettled([
      // The completion settles its jobs' keys itself, taking each key's next job of the same queue
      // into this node's hands where it holds a place for it: that job is running here once this
      // statement commits, with no settle round trip and no claim between the two jobs of a key.
      // A batch without keyed jobs (the usual one) goes through complete_batch's plain twin: no key
      // work to plan or run.
      store.complete(
        nodeId,
        completionItems(plain.completions),
        undefined,
        take ? { take: take.into } : { keyless: keyless(plain.completions) },
      ),
      store.fail(nodeId, failureItems(plain.failures)),
      store.release(
        nodeId,
        batch.releases.map((j) => ({ id: j.id, attempt: j.attempt, executionKey: j.executionKey })),
      ),
      store.updateProgress(
        nodeId,
        [...batch.progress].map(([id, json]) => ({ id, progress: undefined, json })),
      ),
      continued && this.writeContinued(continued),
    ]);
    void work.then(([completed, failed, released, progress, continuedWrite]) => {
      if (
        completed.status === 'rejected' &&
        failed.status === 'rejected' &&
        released.status === 'rejected' &&
        progress.status === 'rejected' &&
        (continued === undefined || continuedWrite.status === 'rejected')
      ) {
        if (continued) countContinuationTry(continued, continuedWrite.status === 'rejected' ? continuedWrite.reason : undefined);
        metrics?.flushFailed(partition);
        traced?.end(completed.reason);
        this.o.reply({ t: 'flushFailed', batch, error: completed.reason });
        return;
      }
      // The taken jobs first: they start while the recorded outcomes' events and callbacks run.
      if (take) {
        if (completed.status === 'fulfilled') this.o.here!.took(completed.value.settled.taken, take.reserved);
        else this.o.here!.dropped(take.reserved);
      }
      const flushed = settleWrites(batch, plain, continued, completed, failed, released, progress, continuedWrite);
      if (!flushed.unwritten) metrics?.flushed(partition, performance.now() - flushStarted, flushSize);
      else metrics?.flushFailed(partition);
      traced?.end(flushed.unwritten?.error);
      this.o.reply(flushed);
      if (completed.status === 'fulfilled' && completed.value.settled.queues.length > 0)
        this.o.reply({ t: 'keysSettled', queues: completed.value.settled.queues });
    });
  }

  /**
   * Places in this engine's queues for the next jobs of the keys these completions end (a key's
   * next job is likely of the same queue): the completion then takes each such job into this
   * node's hands. Undefined when no completion holds a key or the engine takes none now.
   */
  private reserveNext(completions: readonly PendingCompletion[]): { into: TakeInto; reserved: string[] } | undefined {
    const { here } = this.o;
    if (!here) return undefined;
    let ids: Set<string> | undefined;
    const reserved: string[] = [];
    for (const c of completions) {
      if (!c.job.executionKey || !here.reserveNext(c.job.queue)) continue;
      (ids ??= new Set()).add(c.job.id);
      reserved.push(c.job.queue);
    }
    if (!ids) return undefined;
    return { into: { leaseMs: here.leaseMs, types: here.takes.types, continuations: here.takes.continuations, ids }, reserved };
  }

  /**
   * Writes outcomes with their continuations in one transaction. Once a job has rolled back
   * CONTINUATION_TRIES of them, the outcomes are written in halves, each in its own transaction,
   * until each job whose continuation still throws stands alone: those land in `offending`, the
   * others commit (a transaction writes all of its part or nothing, so no outcome is written twice).
   */
  private async writeContinued({ completions, failures }: ContinuedPart): Promise<ContinuedWrite> {
    const offending = new Map<string, unknown>();
    const later: ContinuedPart = { completions: [], failures: [] };
    let laterError: unknown;
    const entries: (PendingCompletion | PendingFailure)[] = [...completions, ...failures];
    if (!entries.some((e) => (e.continuationTries ?? 0) >= CONTINUATION_TRIES))
      return { ...(await this.continuedTransaction(completions, failures)), offending };
    const completed = Object.assign(new Set<string>(), { refused: new Map<string, string>() });
    const failed = Object.assign(new Set<string>(), { refused: new Map<string, string>() });
    const isCompletion = new Set<unknown>(completions);
    const write = async (part: (PendingCompletion | PendingFailure)[]): Promise<void> => {
      if (part.length === 0) return;
      const partCompletions = part.filter((e): e is PendingCompletion => isCompletion.has(e));
      const partFailures = part.filter((e): e is PendingFailure => !isCompletion.has(e));
      try {
        const done = await this.continuedTransaction(partCompletions, partFailures);
        for (const id of done.completed) completed.add(id);
        for (const id of done.failed) failed.add(id);
        for (const [id, why] of done.completed.refused) completed.refused.set(id, why);
        for (const [id, why] of done.failed.refused) failed.refused.set(id, why);
      } catch (err) {
        if (transientFailure(err)) {
          // Not the jobs' doing: this part waits for the next write, the parts before it stay committed.
          later.completions.push(...partCompletions);
          later.failures.push(...partFailures);
          laterError = err;
          return;
        }
        if (!(err instanceof ContinuationThrew) && !isRowRefusal(err)) throw err;
        if (part.length === 1) {
          offending.set(part[0]!.job.id, err);
          return;
        }
        const mid = part.length >>> 1;
        await write(part.slice(0, mid));
        await write(part.slice(mid));
      }
    };
    this.o.log.warn(
      { jobs: entries.length, tries: CONTINUATION_TRIES },
      'a continuation keeps rolling back its batch; writing it in parts to find the jobs it throws for',
    );
    await write(entries);
    return laterError === undefined
      ? { completed, failed, offending }
      : { completed, failed, offending, later: { part: later, error: laterError } };
  }

  /** Is a job of the batch of a type whose definition has outcome callbacks? */
  private hookedJob(completions: readonly PendingCompletion[], failures: readonly PendingFailure[]): boolean {
    const { hooked } = this.o;
    if (!hooked) return false;
    return completions.some((c) => hooked(c.job.type)) || failures.some((f) => hooked(f.job.type));
  }

  /** Records the outcomes and runs their types' continuations with the accepted ones, in one transaction. */
  private continuedTransaction(
    completions: PendingCompletion[],
    failures: PendingFailure[],
  ): Promise<{ completed: Recorded; failed: Recorded }> {
    const { store, nodeId, partition, continuationsByType } = this.o;
    const queues = new Set<string>();
    const { here } = this.o;
    /** Queues of the places reserved (one entry per job), and the jobs stored as this node's. */
    const reserved: string[] = [];
    const taken: ClaimedJob[] = [];
    /** What the continuations asked to run once the transaction committed (tx.afterCommit). */
    const onCommit: (() => void)[] = [];
    /** Whether the continuation running now asked for an asynchronous commit (tx.commitAsync). */
    let askedAsync = false;
    /** The jobs sent as this node's running attempts (tx.enqueueHere, sent last): which were leased is read once committed. */
    const leasing: { jobs: NewJob[]; sent: LeasedSent }[] = [];
    // Each continuation runs once with its jobs, in the order their first job came: the list handed
    // to prepare, and to run when the store accepted every outcome (the usual case), is this one.
    const byContinuation = new Map<NamedContinuation, FinishedJob[]>();
    const push = (c: NamedContinuation, finished: FinishedJob) => {
      const list = byContinuation.get(c);
      if (list) list.push(finished);
      else byContinuation.set(c, [finished]);
    };
    const add = (finished: FinishedJob, job: ClaimedJob) => {
      const ofType = continuationsByType.of(job.type);
      const mark = job.continuation == null ? undefined : continuationsByType.marked(job.continuation);
      if (ofType) for (const c of ofType) push(c, finished);
      if (mark && !ofType?.some((c) => c.name === mark.name)) push(mark, finished);
    };
    // Each FinishedJob in one literal: a spread of a shared base, then two more fields, was a copy and
    // a grown property store per job (~1 KB of the ~3 KB this function allocated per workflow).
    for (const { job, result } of completions)
      add(
        { id: job.id, type: job.type, partition, queue: job.queue, payload: job.payload, attempt: job.attempt, state: 'completed', result },
        job,
      );
    for (const { job, finalState, error } of failures)
      add(
        {
          id: job.id,
          type: job.type,
          partition,
          queue: job.queue,
          payload: job.payload,
          attempt: job.attempt,
          state: finalState ?? 'failed',
          error,
        },
        job,
      );
    // Planned once per connection only when every continuation of the batch says its statements allow it.
    const genericPlans = [...byContinuation.keys()].every((c) => c.genericPlans === true);
    const committed = store.withTransaction(
      async (outer) => {
        const enqueue = (jobs: NewJob[]) => {
          for (const j of jobs) if (j.partition === partition) queues.add(j.queue ?? 'default');
          return outer.enqueue(jobs);
        };
        const tx: ContinuationTx = {
          client: outer.client,
          query: outer.query.bind(outer),
          enqueue,
          enqueueLeased: outer.enqueueLeased.bind(outer),
          sendLast: outer.sendLast.bind(outer),
          sendLeased: outer.sendLeased.bind(outer),
          enqueueHere: async (jobs) => {
            if (!here) return enqueue(jobs);
            const mine: NewJob[] = [];
            const others: NewJob[] = [];
            const isMine = jobs.map((j) => {
              const ok = j.partition === partition && here.reserve(j);
              if (ok) reserved.push(j.queue ?? 'default');
              (ok ? mine : others).push(j);
              return ok;
            });
            const queued = others.length > 0 ? await enqueue(others) : [];
            // Sent as a last statement: the COMMIT follows it without waiting for its answer (the
            // continuation needs only the ids, made before it is sent), a round trip fewer between two steps.
            if (mine.length === 0) return queued;
            const leased = await outer.sendLeased(mine, nodeId, here.leaseMs);
            leasing.push({ jobs: mine, sent: leased });
            let m = 0;
            let o = 0;
            return isMine.map((ok): EnqueueOutcome => (ok ? { id: leased.ids[m++]! } : queued[o++]!));
          },
          afterCommit: (fn) => void onCommit.push(fn),
          commitAsync: () => void (askedAsync = true),
        };
        // Both outcome statements, then what the continuations send ahead (prepare), go on the wire
        // together, behind BEGIN: one round trip for all of them. Awaited in that order below, so the
        // first that failed is the error.
        // A job marked for a continuation that keeps its successes itself needs no history row: each
        // such job is in byContinuation under its mark, so that continuation runs with it here.
        const completing = store.complete(nodeId, completionItems(completions), tx, {
          successesRecordedBy: continuationsByType.successesRecordedBy,
        });
        const failing = store.fail(nodeId, failureItems(failures), tx);
        completing.catch(() => undefined);
        failing.catch(() => undefined);
        const prepared = new Map<NamedContinuation, unknown>();
        for (const [c, finished] of byContinuation) {
          if (!c.prepare) continue;
          try {
            const ahead = c.prepare(tx, finished);
            if (ahead !== undefined) prepared.set(c, ahead);
          } catch (err) {
            throw new ContinuationThrew(c.name, err);
          }
        }
        const completed = await completing;
        const failed = await failing;
        // Only what the store accepted (this node still held the lease) reaches a continuation.
        let ran = 0;
        let relaxed = 0;
        for (const [c, finished] of byContinuation) {
          const accepted = acceptedOf(finished, completed, failed);
          const ahead = prepared.get(c);
          if (accepted.length === 0 && ahead === undefined) continue;
          askedAsync = false;
          try {
            await c.run(tx, accepted, ahead);
          } catch (err) {
            throw new ContinuationThrew(c.name, err);
          }
          ran += 1;
          if (askedAsync) relaxed += 1;
        }
        // The transaction is one commit: it skips the WAL flush only when every continuation that
        // wrote in it said nothing outside hears of it, and no job of it has a callback told so.
        if (ran > 0 && relaxed === ran && !this.hookedJob(completions, failures)) outer.commitAsync();
        return { completed, failed };
      },
      { genericPlans },
    );
    // Their statements were answered before the COMMIT (a failure among them failed it). A job stored
    // queued instead (its queue paused in Postgres before this engine heard) is not taken: its place
    // is given back with the rest at `took`, and a claim runs it later.
    const settled = committed.then(async (written) => {
      for (const { jobs, sent } of leasing)
        (await sent.stored).forEach((l, k) => (l.claimed ? taken.push(l.claimed) : queues.add(jobs[k]!.queue ?? 'default')));
      return written;
    });
    return settled.then(
      (written) => {
        if (reserved.length > 0) here!.took(taken, reserved);
        if (queues.size && this.o.enqueued) this.o.enqueued([...queues]);
        for (const fn of onCommit) {
          try {
            fn();
          } catch (err) {
            this.o.log.warn({ err }, "a continuation's after-commit action threw; its transaction stays committed");
          }
        }
        this.o.metrics?.continued?.(partition, written.completed.size + written.failed.size);
        return written;
      },
      (err: unknown) => {
        if (reserved.length > 0) here!.dropped(reserved);
        throw err;
      },
    );
  }
}

/** The jobs whose outcome the store recorded: `finished` itself when it recorded all of them. */
function acceptedOf(finished: FinishedJob[], completed: Recorded, failed: Recorded): FinishedJob[] {
  const recorded = (f: FinishedJob) => (f.state === 'completed' ? completed : failed).has(f.id);
  return finished.every(recorded) ? finished : finished.filter(recorded);
}

function completionItems(completions: PendingCompletion[]) {
  return completions.map((c) => ({ id: c.job.id, attempt: c.job.attempt, result: c.result, json: c.json, tid: c.job.tid }));
}

function failureItems(failures: PendingFailure[]) {
  return failures.map((f) => ({
    id: f.job.id,
    attempt: f.job.attempt,
    error: f.error,
    ...(f.retryAt ? { retryAt: f.retryAt } : {}),
    ...(f.finalState ? { finalState: f.finalState } : {}),
  }));
}

/** Whether no job of the completions holds an execution key. */
function keyless(completions: readonly PendingCompletion[]): boolean {
  for (const c of completions) if (c.job.executionKey) return false;
  return true;
}
