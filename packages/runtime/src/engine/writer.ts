/**
 * Writes an outcome batch: the plain statements (complete, fail, release, progress) side by side,
 * and the final outcomes of types with continuations in a transaction of their own, with them.
 * The I/O half of the outcome batch (see outcomes.ts); its result comes back as an engine message.
 */
import { traceComplete, type Logger } from '@partita/core';
import { isRowRefusal, type ClaimedJob, type Recorded, type Tx } from '@partita/postgres';
import type { Continuation, FinishedJob, OutcomeContinuation, ResolvedJobDefinition } from '../define.js';
import type { Metrics } from '../metrics.js';
import type { EngineMsg } from './messages.js';
import {
  CONTINUATION_TRIES,
  ContinuationThrew,
  batchSize,
  countContinuationTry,
  settleWrites,
  splitContinued,
  type ContinuedPart,
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
}

type NamedContinuation = { name: string; run: Continuation };

/** The continuations of each job type; `empty` when no type has any (every batch then takes the plain write). */
export interface ContinuationIndex {
  readonly empty: boolean;
  of(type: string): readonly NamedContinuation[] | undefined;
}

/**
 * Job type → its continuations: the definition's first, then plugins' listed by type, then plugins'
 * chosen by a predicate. A predicate is asked at each write (never cached), so a plugin whose types
 * change while the node runs (a workflow version deployed with a new worker topic) is followed at once.
 */
export function continuationsByType(
  definitions: ReadonlyMap<string, ResolvedJobDefinition>,
  plugins: readonly OutcomeContinuation[] = [],
): ContinuationIndex {
  const byType = new Map<string, NamedContinuation[]>();
  for (const [type, def] of definitions)
    if (def.continuation) byType.set(type, [{ name: `${type}.continuation`, run: (tx, jobs) => def.continuation!(tx, jobs) }]);
  const chosen: { name: string; run: Continuation; types: (type: string) => boolean }[] = [];
  for (const c of plugins) {
    const { types } = c;
    if (typeof types === 'function') chosen.push({ name: c.name, run: c.run, types });
    else for (const type of types) byType.set(type, [...(byType.get(type) ?? []), { name: c.name, run: c.run }]);
  }
  if (chosen.length === 0) return { empty: byType.size === 0, of: (type) => byType.get(type) };
  // The list of a type is rebuilt only when the set of predicates accepting it changed: this runs for
  // every job written, and must not allocate a list per job.
  const memo = new Map<string, { accepted: string; list: NamedContinuation[] | undefined }>();
  return {
    empty: false,
    of(type) {
      let accepted = '';
      for (const c of chosen) accepted += c.types(type) ? '1' : '0';
      const known = memo.get(type);
      if (known !== undefined && known.accepted === accepted) return known.list;
      let list: NamedContinuation[] | undefined = byType.get(type);
      chosen.forEach((c, i) => {
        if (accepted[i] === '1') list = [...(list ?? []), { name: c.name, run: c.run }];
      });
      memo.set(type, { accepted, list });
      return list;
    },
  };
}

export class OutcomeWriter {
  private readonly hasContinuation = (type: string) => this.o.continuationsByType.of(type) !== undefined;

  constructor(private readonly o: WriterOptions) {}

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
    const work = Promise.allSettled([
      store.complete(nodeId, completionItems(plain.completions)),
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
      const flushed = settleWrites(batch, plain, continued, completed, failed, released, progress, continuedWrite);
      if (!flushed.unwritten) metrics?.flushed(partition, performance.now() - flushStarted, flushSize);
      else metrics?.flushFailed(partition);
      traced?.end(flushed.unwritten?.error);
      this.o.reply(flushed);
    });
  }

  /**
   * Writes outcomes with their continuations in one transaction. Once a job has rolled back
   * CONTINUATION_TRIES of them, the outcomes are written in halves, each in its own transaction,
   * until each job whose continuation still throws stands alone: those land in `offending`, the
   * others commit (a transaction writes all of its part or nothing, so no outcome is written twice).
   */
  private async writeContinued({
    completions,
    failures,
  }: ContinuedPart): Promise<{ completed: Recorded; failed: Recorded; offending: Map<string, unknown> }> {
    const offending = new Map<string, unknown>();
    const entries: (PendingCompletion | PendingFailure)[] = [...completions, ...failures];
    if (!entries.some((e) => (e.continuationTries ?? 0) >= CONTINUATION_TRIES))
      return { ...(await this.continuedTransaction(completions, failures)), offending };
    const completed = Object.assign(new Set<string>(), { refused: new Map<string, string>() });
    const failed = Object.assign(new Set<string>(), { refused: new Map<string, string>() });
    const isCompletion = new Set<unknown>(completions);
    const write = async (part: (PendingCompletion | PendingFailure)[]): Promise<void> => {
      if (part.length === 0) return;
      try {
        const done = await this.continuedTransaction(
          part.filter((e): e is PendingCompletion => isCompletion.has(e)),
          part.filter((e): e is PendingFailure => !isCompletion.has(e)),
        );
        for (const id of done.completed) completed.add(id);
        for (const id of done.failed) failed.add(id);
        for (const [id, why] of done.completed.refused) completed.refused.set(id, why);
        for (const [id, why] of done.failed.refused) failed.refused.set(id, why);
      } catch (err) {
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
    return { completed, failed, offending };
  }

  /** Records the outcomes and runs their types' continuations with the accepted ones, in one transaction. */
  private continuedTransaction(
    completions: PendingCompletion[],
    failures: PendingFailure[],
  ): Promise<{ completed: Recorded; failed: Recorded }> {
    const { store, nodeId, partition, continuationsByType } = this.o;
    const queues = new Set<string>();
    const committed = store.withTransaction(async (outer) => {
      const tx: Tx = {
        client: outer.client,
        query: outer.query.bind(outer),
        enqueue: (jobs) => {
          for (const j of jobs) if (j.partition === partition) queues.add(j.queue ?? 'default');
          return outer.enqueue(jobs);
        },
      };
      const completed = await store.complete(nodeId, completionItems(completions), tx);
      const failed = await store.fail(nodeId, failureItems(failures), tx);
      // Only what the store accepted (this node still held the lease) reaches a continuation.
      const byType = new Map<string, FinishedJob[]>();
      const add = (finished: FinishedJob) => {
        const list = byType.get(finished.type);
        if (list) list.push(finished);
        else byType.set(finished.type, [finished]);
      };
      const base = (job: ClaimedJob) => ({
        id: job.id,
        type: job.type,
        partition,
        queue: job.queue,
        payload: job.payload,
        attempt: job.attempt,
      });
      for (const c of completions) if (completed.has(c.job.id)) add({ ...base(c.job), state: 'completed', result: c.result });
      for (const f of failures) if (failed.has(f.job.id)) add({ ...base(f.job), state: f.finalState ?? 'failed', error: f.error });
      for (const [type, jobs] of byType) {
        for (const c of continuationsByType.of(type) ?? []) {
          try {
            await c.run(tx, jobs);
          } catch (err) {
            throw new ContinuationThrew(c.name, err);
          }
        }
      }
      return { completed, failed };
    });
    return committed.then((written) => {
      if (queues.size && this.o.enqueued) this.o.enqueued([...queues]);
      return written;
    });
  }
}

function completionItems(completions: PendingCompletion[]) {
  return completions.map((c) => ({ id: c.job.id, attempt: c.job.attempt, result: c.result, json: c.json }));
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
