import type pg from 'pg';

/**
 * Runs `fn` in one transaction on a connection of `pool`: BEGIN, then COMMIT when it resolves, or
 * ROLLBACK and its rejection when it throws. Every hand-made transaction of the packages goes
 * through here, so each gets the same care of a connection that dies inside it.
 */
export async function inTransaction<T>(pool: pg.Pool, fn: (client: pg.PoolClient) => Promise<T>): Promise<T> {
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
  try {
    const began = client.query('BEGIN');
    // Heard now (a failed BEGIN must not be an unhandled rejection while `fn` runs), thrown below.
    began.catch(() => undefined);
    if (!canPipeline) await began;
    const value = await fn(client);
    // A BEGIN that failed left `fn`'s statements outside any transaction: never report it committed.
    await began;
    await client.query('COMMIT');
    return value;
  } catch (err) {
    // A connection that cannot even roll back is not given back to the pool for reuse.
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
    throw err;
  } finally {
    // Every statement of the transaction has been answered here: the connection goes back plain.
    if (canPipeline) pipelined.pipeline = false;
    client.off('error', onError);
    client.release(broken instanceof Error ? broken : undefined);
  }
}
