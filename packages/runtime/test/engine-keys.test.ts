/** The execution key a definition derives for a job stored without one (enqueued by the CLI, say). */
import test from 'ava';
import type { ResolvedJobDefinition } from '../src/define.js';
import { deriveExecutionKey } from '../src/engine/keys.js';

const def = (executionKey?: ResolvedJobDefinition['executionKey']) =>
  ({
    type: 't',
    queue: 'q',
    maxAttempts: 1,
    backoff: { baseMs: 0, maxMs: 0 },
    perform: () => undefined,
    ...(executionKey ? { executionKey } : {}),
  }) as ResolvedJobDefinition;

test('a template or a function derives the key from the payload', (t) => {
  t.deepEqual(deriveExecutionKey({ type: 't', payload: { invoice: 'INV-1' } }, def('invoice:{invoice}')), { key: 'invoice:INV-1' });
  t.deepEqual(
    deriveExecutionKey(
      { type: 't', payload: { n: 3 } },
      def((p: { n: number }) => `n-${p.n}`),
    ),
    { key: 'n-3' },
  );
});

test('no rule, no definition, or an empty key: no key and no error', (t) => {
  t.deepEqual(deriveExecutionKey({ type: 't', payload: {} }, def()), {});
  t.deepEqual(deriveExecutionKey({ type: 't', payload: {} }, undefined), {});
  t.deepEqual(
    deriveExecutionKey(
      { type: 't', payload: {} },
      def(() => ''),
    ),
    {},
  );
});

test('a payload the rule cannot read gives the error (the job runs without a key)', (t) => {
  const missing = deriveExecutionKey({ type: 't', payload: {} }, def('invoice:{invoice}'));
  t.is(missing.key, undefined);
  t.truthy(missing.error);
  const throws = deriveExecutionKey(
    { type: 't', payload: {} },
    def(() => {
      throw new Error('boom');
    }),
  );
  t.is(throws.key, undefined);
  t.truthy(throws.error);
});
