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
  try {
    await client.query('BEGIN');
    const value = await fn(client);
    await client.query('COMMIT');
    return value;
  } catch (err) {
    // A connection that cannot even roll back is not given back to the pool for reuse.
    await client.query('ROLLBACK').catch((rollbackErr: unknown) => (broken = rollbackErr));
    throw err;
  } finally {
    client.off('error', onError);
    client.release(broken instanceof Error ? broken : undefined);
  }
}
