/**
 * Typed enqueue: `client.enqueue(partition, definition, payload)` takes the payload type from the
 * definition, returns an id that types `client.result(id)`, and applies the definition's queue,
 * attempts and keys even through a client connected without `jobs`. The type checks at the end are
 * compiled by `npm run typecheck`: each `@ts-expect-error` line must be an error, or typecheck fails.
 */
import test from 'ava';
import { connect, type Client } from '@partita/client';
import { DuplicateQueueKeyError, type JobId } from '@partita/core';
import { defineJob, startNode } from '@partita/runtime';
import { freshSchema, natsUrl, tempDataDir } from './helpers/index.js';

interface Invoice {
  invoice: string;
  lines: number[];
}

const invoiceTotal = defineJob({
  type: 'invoice.total',
  queue: 'slow',
  maxAttempts: 3,
  queueKey: (p: Invoice) => `invoice:${p.invoice}`,
  async perform(p: Invoice) {
    return { invoice: p.invoice, total: p.lines.reduce((a, b) => a + b, 0) };
  },
});

const greet = defineJob({ type: 'greet', perform: (name: string) => `hello ${name}` });

test("enqueue with a definition: typed payload and result, the definition's queue, attempts and keys through a bare client", async (t) => {
  const db = await freshSchema('typed');
  const nats = await natsUrl();
  const cluster = db.schema.replaceAll('_', '-');
  const node = await startNode({
    dataDir: tempDataDir('typed'),
    postgres: db.url,
    schema: db.schema,
    nats,
    cluster,
    engine: { pollMs: 100 },
    partitions: { billing: { queues: { default: { concurrency: 2 }, slow: { concurrency: 2 } } } },
    jobs: [invoiceTotal, greet],
  });
  // No `jobs` here: what applies comes from the definition handed to enqueue.
  const client = await connect({ postgres: db.url, schema: db.schema, nats, cluster });
  t.teardown(async () => {
    await client.close();
    await node.stop({ graceMs: 200 }).catch(() => undefined);
    await db.drop();
  });

  const { id } = await client.enqueue('billing', invoiceTotal, { invoice: 'INV-1', lines: [20, 22] });
  const result = await client.result(id, { timeoutMs: 10_000 });
  const total: number = result.total;
  t.is(total, 42);
  t.like(await client.job(id), { type: 'invoice.total', queue: 'slow', maxAttempts: 3, queueKey: 'invoice:INV-1' });

  // The definition's queue key holds: a second job for a held invoice is refused.
  const held = await client.enqueue('billing', invoiceTotal, { invoice: 'INV-2', lines: [] }, { delayMs: 3_600_000 });
  const err = await t.throwsAsync(client.enqueue('billing', invoiceTotal, { invoice: 'INV-2', lines: [1] }), {
    instanceOf: DuplicateQueueKeyError,
  });
  t.is(err!.heldBy, held.id);

  // Options still win over the definition.
  const { id: custom } = await client.enqueue(
    'billing',
    invoiceTotal,
    { invoice: 'INV-3', lines: [1] },
    { queue: 'default', maxAttempts: 1, queueKey: 'mine' },
  );
  t.like(await client.job(custom), { queue: 'default', maxAttempts: 1, queueKey: 'mine' });
  t.deepEqual(await client.result(custom, { timeoutMs: 10_000 }), { invoice: 'INV-3', total: 1 });

  // A synchronous perform types the result as well; the string form still works, untyped.
  const hello = await client.enqueue('billing', greet, 'Ada');
  const text: string = await client.result(hello.id, { timeoutMs: 10_000 });
  t.is(text, 'hello Ada');
  const { id: plain } = await client.enqueue('billing', 'greet', 'Grace');
  t.is(await client.result(plain, { timeoutMs: 10_000 }), 'hello Grace');
});

/** Never run: compiled by typecheck, which fails if any line marked @ts-expect-error compiles. */
export function typeChecks(client: Client): void {
  // @ts-expect-error the payload must be an Invoice: invoice is a string
  void client.enqueue('billing', invoiceTotal, { invoice: 42, lines: [] });
  // @ts-expect-error a field of the payload is missing
  void client.enqueue('billing', invoiceTotal, { invoice: 'INV-1' });
  // @ts-expect-error a field the payload type does not have
  void client.enqueue('billing', invoiceTotal, { invoice: 'INV-1', lines: [], extra: true });
  // @ts-expect-error the payload is not optional
  void client.enqueue('billing', invoiceTotal);
  // @ts-expect-error greet takes a string
  void client.enqueue('billing', greet, { name: 'Ada' });

  void (async () => {
    const { id } = await client.enqueue('billing', invoiceTotal, { invoice: 'INV-1', lines: [] });
    const typed: JobId<{ invoice: string; total: number }> = id;
    const asString: string = id; // still a string for job(), cancel(), retry()
    const result = await client.result(typed);
    const total: number = result.total;
    // @ts-expect-error the result has no such field
    void result.subtotal;
    // @ts-expect-error the total is a number
    const wrong: string = result.total;
    // @ts-expect-error a plain string id gives an unknown result, not a typed one
    const untyped: { total: number } = await client.result(asString);
    // @ts-expect-error an id of one job type is not an id of another
    const other: JobId<string> = id;
    void [total, wrong, untyped, other];
  });
}
