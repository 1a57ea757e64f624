import test from 'ava';
import { setTimeout as sleep } from 'node:timers/promises';
import { ReusedRead } from '@partita/core';

/** A read that counts its calls, takes `ms`, and answers with its call number (or throws when told). */
function slowRead(ms: number) {
  const state = { calls: 0, fail: false };
  const read = async () => {
    const call = ++state.calls;
    await sleep(ms);
    if (state.fail) throw new Error(`read ${call} failed`);
    return call;
  };
  return { state, read };
}

test('callers within the reuse time share one read, and callers during a read share it too', async (t) => {
  const { state, read } = slowRead(20);
  const reused = new ReusedRead(read, { minMs: 10_000, factor: 1 });
  t.is(reused.last, undefined);
  const [a, b, c] = await Promise.all([reused.get(), reused.get(), reused.get()]);
  t.deepEqual([a, b, c], [1, 1, 1]);
  t.is(await reused.get(), 1);
  t.is(state.calls, 1);
  t.is(reused.last, 1);
});

test('a read is reused for factor times what it took when that is longer than minMs', async (t) => {
  const { state, read } = slowRead(40);
  // A read of >= 40 ms × 10 is reused >= 400 ms, against a 1 ms floor: a minMs-only cache reads again at once.
  const reused = new ReusedRead(read, { minMs: 1, factor: 10 });
  t.is(await reused.get(), 1);
  const readAt = Date.now();
  let value = 1;
  while (value === 1 && Date.now() - readAt < 5000) {
    await sleep(10);
    value = await reused.get();
  }
  t.is(value, 2);
  t.true(Date.now() - readAt >= 400, `read again after ${Date.now() - readAt} ms`);
  t.is(state.calls, 2);
});

test('a read a caller stopped waiting for still finishes and serves the next caller', async (t) => {
  const { state, read } = slowRead(60);
  const reused = new ReusedRead(read, { minMs: 10_000, factor: 1 });
  const gaveUp = await Promise.race([reused.get(), sleep(10).then(() => 'timed out')]);
  t.is(gaveUp, 'timed out');
  t.is(reused.last, undefined);
  const next = await reused.get(); // joins the read in flight rather than starting another
  t.is(next, 1);
  t.is(state.calls, 1);
});

test('a failed read is not kept: its callers see the error, the next call reads again, the last value stays', async (t) => {
  const { state, read } = slowRead(5);
  const reused = new ReusedRead(read, { minMs: 0, factor: 0 });
  t.is(await reused.get(), 1);
  state.fail = true;
  await t.throwsAsync(reused.get(), { message: 'read 2 failed' });
  t.is(reused.last, 1);
  state.fail = false;
  t.is(await reused.get(), 3);
});
