/** The pure control computation a node applies to its engines from Global's broadcasts. */
import test from 'ava';
import { controlProblem, effectiveControl, queueThrottle } from '../src/quorum.js';

const Q = ['a', 'b', 'c'];

test('no rules: nothing paused, no throttle', (t) => {
  t.deepEqual(effectiveControl({ paused: [], throttles: [] }, 'n1', Q), { paused: [], throttleMs: 0 });
});

test('paused queues of the engine are listed, others ignored', (t) => {
  t.deepEqual(effectiveControl({ paused: ['b', 'zzz'], throttles: [] }, 'n1', Q), { paused: ['b'], throttleMs: 0 });
});

test('specificity: node+queue > node > queue > partition-wide', (t) => {
  const rules = [{ ms: 10 }, { ms: 20, queue: 'a' }, { ms: 30, node: 'n1' }, { ms: 40, node: 'n1', queue: 'a' }];
  t.is(queueThrottle(rules, 'n1', 'a'), 40);
  t.is(queueThrottle(rules, 'n1', 'b'), 30);
  t.is(queueThrottle(rules, 'n2', 'a'), 20);
  t.is(queueThrottle(rules, 'n2', 'b'), 10);
  t.is(queueThrottle([], 'n2', 'b'), 0);
  // A more specific rule wins even when it is lower (a node exempted from a partition-wide throttle).
  t.is(queueThrottle([{ ms: 500 }, { ms: 0, node: 'n1' }], 'n1', 'a'), 0);
  // Rules of other nodes do not apply.
  t.is(
    queueThrottle(
      [
        { ms: 7, node: 'n9' },
        { ms: 8, node: 'n9', queue: 'a' },
      ],
      'n1',
      'a',
    ),
    0,
  );
});

test('same level: the most restrictive rule wins, -1 above all', (t) => {
  t.is(queueThrottle([{ ms: 10 }, { ms: 50 }], 'n', 'a'), 50);
  t.is(
    queueThrottle(
      [
        { ms: 10, queue: 'a' },
        { ms: -1, queue: 'a' },
        { ms: 50, queue: 'a' },
      ],
      'n',
      'a',
    ),
    -1,
  );
});

test('the engine throttle is the largest among claiming queues', (t) => {
  t.deepEqual(effectiveControl({ paused: [], throttles: [{ ms: 100, queue: 'b' }] }, 'n1', Q), { paused: [], throttleMs: 100 });
  // A paused queue's throttle does not slow the others.
  t.deepEqual(effectiveControl({ paused: ['b'], throttles: [{ ms: 100, queue: 'b' }, { ms: 5 }] }, 'n1', Q), {
    paused: ['b'],
    throttleMs: 5,
  });
});

test('-1 on a queue stops that queue only (as a pause); on every queue it stops the engine', (t) => {
  t.deepEqual(effectiveControl({ paused: [], throttles: [{ ms: -1, queue: 'a' }, { ms: 20 }] }, 'n1', Q), {
    paused: ['a'],
    throttleMs: 20,
  });
  t.deepEqual(effectiveControl({ paused: [], throttles: [{ ms: -1 }] }, 'n1', Q), { paused: ['a', 'b', 'c'], throttleMs: -1 });
  t.deepEqual(effectiveControl({ paused: [], throttles: [{ ms: -1, node: 'n1' }] }, 'n1', Q), { paused: ['a', 'b', 'c'], throttleMs: -1 });
  t.deepEqual(effectiveControl({ paused: [], throttles: [{ ms: -1, node: 'n1' }] }, 'n2', Q), { paused: [], throttleMs: 0 });
  // Lifting for one node (a more specific 0) while the rest stay stopped.
  t.deepEqual(effectiveControl({ paused: [], throttles: [{ ms: -1 }, { ms: 0, node: 'n1' }] }, 'n1', Q), { paused: [], throttleMs: 0 });
  // All paused, one of them stopped: the engine reports -1.
  t.deepEqual(effectiveControl({ paused: ['a', 'b'], throttles: [{ ms: -1, queue: 'c' }] }, 'n1', Q), {
    paused: ['a', 'b', 'c'],
    throttleMs: -1,
  });
  // All paused, none stopped: 0 (nothing claims anyway).
  t.deepEqual(effectiveControl({ paused: ['a', 'b', 'c'], throttles: [] }, 'n1', Q), { paused: ['a', 'b', 'c'], throttleMs: 0 });
});

test('controlProblem: well-formed broadcasts pass, anything else is named', (t) => {
  t.is(controlProblem({ partition: 'p', paused: [], throttles: [] }), undefined);
  t.is(controlProblem({ partition: 'p', paused: ['a'], throttles: [{ ms: -1, queue: 'a', node: 'n1' }], epoch: 3, seq: 9 }), undefined);
  t.is(controlProblem({ partition: 'p', paused: [], throttles: [{ ms: 5, queue: null, node: null }], epoch: null }), undefined);
  t.regex(controlProblem(null)!, /object/);
  t.regex(controlProblem({ paused: [], throttles: [] })!, /partition/);
  t.regex(controlProblem({ partition: 'p', paused: 'a', throttles: [] })!, /paused/);
  t.regex(controlProblem({ partition: 'p', paused: [], throttles: [{ ms: 1.5 }] })!, /integer/);
  t.regex(controlProblem({ partition: 'p', paused: [], throttles: [{ ms: -2 }] })!, /integer/);
  t.regex(controlProblem({ partition: 'p', paused: [], throttles: [{ ms: 4_000_000 }] })!, /integer/);
  t.regex(controlProblem({ partition: 'p', paused: [], throttles: [{ ms: 1, queue: 7 }] })!, /queue/);
  t.regex(controlProblem({ partition: 'p', paused: [], throttles: [], seq: 'x' })!, /seq/);
});
