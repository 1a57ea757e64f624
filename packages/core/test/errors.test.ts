import test from 'ava';
import * as actors from '@partita/actors';
import { PartitaError, TimeoutError, ValidationError } from '../src/index.js';

test('one TimeoutError: an actor call timeout is the class core exports, and a Partita error', async (t) => {
  t.is(TimeoutError, actors.TimeoutError);
  const system = actors.createSystem({ name: 'timeout-test' });
  try {
    const ref = system.spawn<string, string>({ handle: () => new Promise<string>(() => {}) });
    const err = await t.throwsAsync(ref.call('hang', { timeoutMs: 10 }));
    t.true(err instanceof TimeoutError);
    t.true(err instanceof PartitaError);
    t.is((err as TimeoutError).code, 'TIMEOUT');
    t.is((err as TimeoutError).timeoutMs, 10);
  } finally {
    await system.shutdown();
  }
});

test('PartitaError still tells its own subclasses apart', (t) => {
  const timeout = new TimeoutError('x', 5);
  t.false(timeout instanceof ValidationError);
  t.false(new ValidationError('bad') instanceof TimeoutError);
  t.true(new ValidationError('bad') instanceof PartitaError);
  t.false(new Error('plain') instanceof PartitaError);
  t.false(new actors.ActorStoppedError('a') instanceof PartitaError);
});
