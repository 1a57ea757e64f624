/** A transaction's events split into emit jobs under the payload limit, one workflow's events together and in order. */
import test from 'ava';
import { emitChunks, type EmitPayload } from '../src/executor.js';

const event = (id: string, kind: EmitPayload['kind'], bytes: number): EmitPayload => ({
  app: 'a',
  topic: 't',
  id,
  kind,
  status: 0,
  data: 'x'.repeat(bytes),
});

test('small batches stay one job; a big one is cut between workflows, never inside one', (t) => {
  const small = [event('w1', 'emit', 10), event('w2', 'output', 10), event('w1', 'output', 10)];
  t.deepEqual(emitChunks(small), [[small[0], small[2], small[1]]]);

  const events: EmitPayload[] = [];
  for (let i = 0; i < 100; i++) events.push(event(`w${i}`, 'emit', 900), event(`w${i}`, 'output', 900));
  const chunks = emitChunks(events, 10_000);
  t.true(chunks.length > 1);
  t.is(chunks.flat().length, events.length, 'every event goes out once');
  const seen = new Map<string, number>();
  chunks.forEach((chunk, n) => {
    t.true(JSON.stringify(chunk).length <= 10_000 + 2_000, `chunk ${n} near the budget`);
    for (const e of chunk) {
      const where = seen.get(e.id);
      t.true(where === undefined || where === n, `${e.id} in one job`);
      seen.set(e.id, n);
    }
    for (let i = 0; i + 1 < chunk.length; i++)
      if (chunk[i]!.id === chunk[i + 1]!.id) t.deepEqual([chunk[i]!.kind, chunk[i + 1]!.kind], ['emit', 'output']);
  });
});

test('one workflow over the budget goes alone rather than being split', (t) => {
  const events = [event('a', 'output', 10), event('big', 'emit', 5_000), event('big', 'output', 5_000), event('c', 'output', 10)];
  const chunks = emitChunks(events, 4_000);
  t.deepEqual(
    chunks.map((c) => c.map((e) => e.id)),
    [['a'], ['big', 'big'], ['c']],
  );
});
