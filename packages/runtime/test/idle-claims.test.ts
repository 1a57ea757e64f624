import test from 'ava';
import pg from 'pg';
import { defineJob, type ContinuationTx, type FinishedJob } from '@partita/runtime';
import { cluster, until } from './helpers.js';

// An idle node whose jobs' continuations hand it their follow-ups (a workflow's steps): a queue that
// goes idle as a job ends is busy again once that job's outcome commits, so the engine waits for the
// write before it claims for it. Claimed at once, every link of the chain cost a claim that found
// nothing, sent ahead of the link's own transaction.

test('an idle node sends no claim per job whose continuation hands the next job to it', async (t) => {
  // Claims of this process (this file's only test), counted by the statement's name.
  let claims = 0;
  const query = pg.Client.prototype.query as (...args: unknown[]) => unknown;
  (pg.Client.prototype as unknown as { query: (...args: unknown[]) => unknown }).query = function (this: pg.Client, ...args: unknown[]) {
    const name = (args[0] as { name?: unknown } | undefined)?.name;
    if (typeof name === 'string' && name.includes('claim_batch')) claims++;
    return query.apply(this, args);
  };
  const c = await cluster('idle_claims');
  try {
    const N = 20;
    const ran: number[] = [];
    const link = defineJob<{ n: number }>({
      type: 'link',
      perform: (p) => void ran.push(p.n),
      async continuation(tx: ContinuationTx, jobs: FinishedJob<{ n: number }>[]) {
        const next = jobs.filter((j) => j.state === 'completed' && j.payload.n < N);
        if (next.length > 0)
          await tx.enqueueHere(next.map((j) => ({ partition: j.partition, type: 'link', payload: { n: j.payload.n + 1 } })));
      },
    });
    // No poll in the test's time: every claim counted is one the engine chose to send.
    const node = await c.start({
      partitions: { p: { queues: { default: { concurrency: 4 } } } },
      jobs: [link],
      engine: { pollMs: 600_000 },
    });
    // The engine takes follow-ups into its hands only once it knows its controls and has renewed its
    // leases; before that they are queued, and claimed. Chains run until one is handed in all along.
    const chain = async () => {
      ran.length = 0;
      await node.client.enqueue('p', 'link', { n: 1 });
      await until('the first link ran', async () => ran.length >= 1, 20_000);
      const before = claims;
      await until('the chain ran', async () => ran.length === N, 30_000);
      return claims - before;
    };
    let sent = await chain();
    for (let round = 1; round < 10 && sent > 3; round++) sent = await chain();
    t.log(`${sent} claims during ${N - 1} links`);
    t.deepEqual(
      ran,
      Array.from({ length: N }, (_, i) => i + 1),
      'every link ran once, in order',
    );
    t.true(sent <= 3, `${sent} claims for ${N - 1} links handed in`);
  } finally {
    pg.Client.prototype.query = query as typeof pg.Client.prototype.query;
    await c.close();
  }
});
