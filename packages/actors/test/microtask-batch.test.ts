import test from 'ava';
import { MicrotaskBatch } from '@partita/actors';

test('a burst runs on one microtask, in order; an item added while it runs waits for the next; a throw fails only its item', async (t) => {
  const ran: string[] = [];
  const failed: [string, string][] = [];
  const batch: MicrotaskBatch<string> = new MicrotaskBatch(
    (item) => {
      ran.push(item);
      if (item === 'b') throw new Error('b broke');
      if (item === 'c') batch.add('late');
    },
    (item, err) => failed.push([item, (err as Error).message]),
  );
  batch.add('a');
  batch.add('b');
  batch.add('c');
  t.deepEqual(ran, [], 'nothing runs synchronously');
  await Promise.resolve();
  t.deepEqual(ran, ['a', 'b', 'c'], 'the burst ran together, in order, past the throw');
  t.deepEqual(failed, [['b', 'b broke']]);
  await Promise.resolve();
  t.deepEqual(ran, ['a', 'b', 'c', 'late'], 'added during the run: the next microtask');
  batch.add('again');
  await Promise.resolve();
  t.deepEqual(ran.at(-1), 'again', 'the batch is reusable once drained');
});
