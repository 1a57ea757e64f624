import test from 'ava';
import { AsyncResourceStack } from '@partita/runtime';
import { capturingLogger } from '../../../test/helpers/index.js';

test('unwind releases in reverse order of acquisition, awaiting each release before the next', async (t) => {
  const stack = new AsyncResourceStack();
  const events: string[] = [];
  const pool = stack.use('pool', { name: 'pool' }, async (p) => {
    await new Promise((r) => setTimeout(r, 20));
    events.push(`close ${p.name}`);
  });
  t.deepEqual(pool, { name: 'pool' }, 'use returns the resource');
  stack.defer('leave', () => void events.push('leave'));
  stack.use('server', 'srv', async (s) => {
    await new Promise((r) => setTimeout(r, 5));
    events.push(`close ${s}`);
  });
  t.is(stack.size, 3);
  t.deepEqual(stack.pending(), ['server', 'leave', 'pool']);
  await stack.unwind();
  t.deepEqual(events, ['close srv', 'leave', 'close pool']);
  t.is(stack.size, 0);
});

test('a failing release does not stop the others; its error is thrown after all ran', async (t) => {
  const { logger, lines: records } = capturingLogger('debug');
  const stack = new AsyncResourceStack({ logger });
  const released: string[] = [];
  stack.defer('a', () => void released.push('a'));
  stack.defer('b', () => {
    throw new Error('b broke');
  });
  stack.defer('c', () => void released.push('c'));
  const err = await t.throwsAsync(stack.unwind());
  t.is(err?.message, 'b broke');
  t.is((err as Error & { resource?: string }).resource, 'b', 'the error names the resource');
  t.deepEqual(released, ['c', 'a']);
  t.true(
    records.some((r) => r.msg.includes('release failed') && r.resource === 'b'),
    'the failure is logged with the resource',
  );
  t.deepEqual(
    records.filter((r) => r.msg === 'released').map((r) => r.resource),
    ['c', 'a'],
    'each release is logged',
  );
});

test('several failures are thrown together as an AggregateError naming each resource', async (t) => {
  const stack = new AsyncResourceStack();
  stack.defer('first', async () => Promise.reject(new Error('one')));
  stack.defer('second', () => {
    throw new Error('two');
  });
  const err = await t.throwsAsync(stack.unwind(), { instanceOf: AggregateError });
  t.deepEqual(
    (err as AggregateError).errors.map((e: Error) => e.message),
    ['two', 'one'],
  );
  t.regex(err!.message, /second \(two\).*first \(one\)/);
});

test('unwind is idempotent and refuses new resources once started', async (t) => {
  const stack = new AsyncResourceStack();
  let calls = 0;
  stack.defer('once', async () => {
    calls++;
    await new Promise((r) => setTimeout(r, 10));
  });
  const a = stack.unwind();
  const b = stack.unwind();
  t.is(a, b);
  t.throws(() => stack.defer('late', () => undefined), { message: /already unwinding/ });
  await a;
  t.is(calls, 1);
});
