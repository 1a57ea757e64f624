import type pg from 'pg';
import { planByMark } from './plans.js';

/** A statement as pg takes it (a prepared one: name, text and values). */
export type StatementConfig = pg.QueryConfig;

/**
 * Statements a transaction's function leaves on the wire when it returns: COMMIT is queued right
 * behind them instead of after their answers (pipelined, one round trip fewer: the server runs the
 * COMMIT as soon as the last statement is done, without waiting for the client to hear of it).
 */
export interface TransactionTail {
  /**
   * Sends `statement` now and answers with its rows. Only for a statement whose answer nothing in
   * the transaction waits for before committing (the last write). If it fails, the COMMIT behind it
   * is answered with a rollback and the transaction rejects with its error; never reported
   * committed. A function that awaits it anyway gets the same answer. `mapError` turns its failure
   * into the error the transaction rejects with (a taken key into the caller's own error class), as
   * a caller awaiting the answer would have.
   */
  send<R extends pg.QueryResultRow = any>(statement: StatementConfig, mapError?: (err: unknown) => unknown): Promise<R[]>;
  /**
   * The transaction's COMMIT does not wait for its WAL to reach disk (`SET LOCAL synchronous_commit =
   * off`, sent now, behind what was sent before it: no round trip of its own). Committed and visible
   * as any other, but a Postgres crash in the next few wal_writer_delay can undo it. Postgres writes
   * WAL in order, so a later synchronous commit of any session makes it durable too. Only for a
   * transaction whose commit no one outside the process is told of (a promise answered, a message
   * published) until a later synchronous commit; idempotent.
   */
  commitAsync(): void;
}

/** COMMIT was answered with a rollback: a statement of the transaction failed and its error was not awaited. */
export class TransactionRolledBackError extends Error {
  constructor() {
    super(
      'the transaction was rolled back at COMMIT: one of its statements failed (its error was not awaited); the whole transaction is undone, run it again',
    );
    this.name = 'TransactionRolledBackError';
  }
}

/** How a transaction's statements are planned. */
export interface TransactionOptions {
  /**
   * Plan the statements marked `-- plan: generic` once per connection (a cached generic plan)
   * instead of at every execution, and every other statement as the connection does (plans.ts).
   */
  genericPlans?: boolean;
}

/** A statement refused because its transaction had already failed: the error that matters came before it. */
const IN_FAILED_TRANSACTION = '25P02';

/**
 * Runs `fn` in one transaction on a connection of `pool`: BEGIN, then COMMIT when it resolves, or
 * ROLLBACK and its rejection when it throws. Every hand-made transaction of the packages goes
 * through here, so each gets the same care of a connection that dies inside it. `tail.send` leaves
 * a last statement on the wire for the COMMIT to follow without waiting for its answer.
 */
export async function inTransaction<T>(
  pool: pg.Pool,
  fn: (client: pg.PoolClient, tail: TransactionTail) => Promise<T>,
  options: TransactionOptions = {},
): Promise<T> {
  const client = await pool.connect();
  let broken: unknown;
  // A connection that dies between two statements of the transaction (while `fn` awaits something
  // else) emits 'error' on the checked-out client; unheard, that is an uncaught exception that ends
  // the process. Heard here, the next statement rejects and the transaction fails as any other.
  const onError = (err: Error) => (broken = err);
  client.on('error', onError);
  // BEGIN goes on the wire together with the transaction's first statement (pg's pipeline mode, on
  // this connection only while the transaction runs): waiting for its answer first was a round trip
  // of its own in every transaction, a step's transition on an idle node included.
  const pipelined = client as unknown as { pipeline?: boolean };
  const canPipeline = typeof pipelined.pipeline === 'boolean';
  if (canPipeline) pipelined.pipeline = true;
  /** Puts the client's own query back (genericPlans). */
  let unmark: (() => void) | undefined;
  /** The tail's statements in wire order, and the first of them that failed. */
  const sent: Promise<unknown>[] = [];
  let tailError: { err: unknown } | undefined;
  let closing = false;
  let relaxed = false;
  const tail: TransactionTail = {
    send: <R extends pg.QueryResultRow>(statement: StatementConfig, mapError?: (err: unknown) => unknown) => {
      // After COMMIT was queued it would run outside the transaction: a caller's bug, refused loudly.
      if (closing) return Promise.reject(new Error('a statement was sent on a transaction that was already committing'));
      // One handler on pg's own promise, which rejects in wire order: the first failure on the wire
      // is the transaction's error, whatever a later statement's 25P02 says.
      const result = client.query<R>(statement).catch((err: unknown) => {
        const mapped = mapError ? mapError(err) : err;
        tailError ??= { err: mapped };
        throw mapped;
      });
      sent.push(result);
      const answer = result.then((r) => r.rows);
      answer.catch(() => undefined);
      return answer;
    },
    commitAsync: () => {
      if (relaxed) return;
      // After COMMIT was queued it would set nothing: as for send, a caller's bug.
      if (closing) throw new Error('commitAsync was called on a transaction that was already committing');
      relaxed = true;
      // Not awaited: it cannot fail in a live transaction, and in a failed one the COMMIT is answered
      // with a rollback anyway. Queued behind BEGIN even without pipeline mode (pg sends in order).
      client.query('SET LOCAL synchronous_commit = off').catch(() => undefined);
    },
  };
  try {
    if (options.genericPlans) unmark = planByMark(client);
    const began = client.query('BEGIN');
    // Heard now (a failed BEGIN must not be an unhandled rejection while `fn` runs), thrown below.
    began.catch(() => undefined);
    if (!canPipeline) await began;
    const value = await fn(client, tail);
    closing = true;
    if (sent.length > 0) {
      // A statement pg could not even send (its values did not serialize) fails on the next tick,
      // unsent: the COMMIT must not go out without it. One tick lets such a failure be heard.
      await new Promise<void>((resolve) => process.nextTick(resolve));
      if (tailError) throw tailError.err;
    }
    const commit = client.query('COMMIT');
    commit.catch(() => undefined);
    // A BEGIN that failed left `fn`'s statements outside any transaction: never report it committed.
    await began;
    const committed = await commit.catch((err: unknown) => ({ command: undefined, err }));
    if (committed.command === 'COMMIT') return value;
    // A statement that failed aborts the transaction, and the server answers COMMIT with ROLLBACK
    // (no error): the tail's failure, or one whose rejection `fn` did not await. The tail's answers
    // came before the COMMIT's, but their rejections may not have been heard yet.
    await Promise.allSettled(sent);
    if (tailError) throw tailError.err;
    throw 'err' in committed ? committed.err : new TransactionRolledBackError();
  } catch (err) {
    // A connection that cannot even roll back is not given back to the pool for reuse. After a
    // COMMIT answered with a rollback there is no transaction left; the server only warns.
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
    await Promise.allSettled(sent);
    // A statement `fn` awaited after a tail statement failed is refused as in a failed transaction:
    // the tail's error (earlier on the wire) is the one that says why.
    if (tailError && (err as { code?: unknown } | null)?.code === IN_FAILED_TRANSACTION) throw tailError.err;
    throw err;
  } finally {
    // Every statement of the transaction has been answered here (ROLLBACK or COMMIT came after
    // them): the connection goes back plain.
    if (canPipeline) pipelined.pipeline = false;
    unmark?.();
    client.off('error', onError);
    client.release(broken instanceof Error ? broken : undefined);
  }
}
