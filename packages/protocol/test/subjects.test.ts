import test from 'ava';
import fc from 'fast-check';
import { ValidationError } from '@partita/core';
import { isValidPattern, isValidSubject, matchSubject, subjects } from '../src/index.js';

test('subject helpers build names under partita.<cluster>.', (t) => {
  t.is(subjects.wake('prod', 'billing', 'default'), 'partita.prod.wake.billing.default');
  t.is(
    subjects.event('prod', 'billing', 'default', 'send-invoice', 'completed'),
    'partita.prod.event.billing.default.send-invoice.completed',
  );
  t.is(subjects.global('prod', 'billing'), 'partita.prod.global.billing');
  t.is(subjects.rollCall('prod'), 'partita.prod.rollcall');
  t.is(subjects.throttle('prod'), 'partita.prod.throttle');
  t.is(subjects.pause('prod', 'billing'), 'partita.prod.pause.billing');
  t.is(subjects.cancel('prod', 'billing'), 'partita.prod.cancel.billing');
  t.is(subjects.node('prod', 'node-1'), 'partita.prod.node.node-1');
  t.is(subjects.quorum('prod', 'orders'), 'partita.prod.quorum.orders');
  t.is(subjects.quorum('prod', 'orders.created'), 'partita.prod.quorum.orders.created');
});

test('literal tokens with spaces, dots or wildcards are a clear ValidationError naming the field', (t) => {
  const cases: [() => string, RegExp][] = [
    [() => subjects.wake('prod', 'bill ing', 'q'), /partition .*whitespace/],
    [() => subjects.wake('prod', 'billing', 'a.b'), /queue .*"\."/],
    [() => subjects.wake('prod', 'billing', '*'), /queue .*wildcard/],
    [() => subjects.global('pr>d', 'x'), /cluster .*wildcard/],
    [() => subjects.event('p', 'b', 'q', 'type.with.dots', 'done'), /job type/],
    [() => subjects.event('p', 'b', 'q', 't', ''), /event kind must not be empty/],
    [() => subjects.cancel('prod', '\tx'), /whitespace/],
    [() => subjects.node('prod', 'x'.repeat(300)), /at most 256/],
    [() => subjects.quorum('prod', 'orders..created'), /quorum topic token 2 must not be empty/],
    [() => subjects.quorum('prod', 'orders.*'), /wildcard/],
    [() => subjects.quorum('prod', ''), /quorum topic must not be empty/],
    [() => subjects.pause('prod', 42 as unknown as string), /must be a string/],
  ];
  for (const [fn, message] of cases) {
    const err = t.throws(fn, { instanceOf: ValidationError });
    t.regex(err!.message, message);
  }
});

test('pattern helpers: omitted parts are `*`, string patterns are validated', (t) => {
  t.is(subjects.wakePattern('c'), 'partita.c.wake.*.*');
  t.is(subjects.wakePattern('c', 'billing'), 'partita.c.wake.billing.*');
  t.is(subjects.eventPattern('c'), 'partita.c.event.*.*.*.*');
  t.is(subjects.eventPattern('c', { type: 'email', kind: 'failed' }), 'partita.c.event.*.*.email.failed');
  t.is(subjects.eventPattern('c', 'billing.>'), 'partita.c.event.billing.>');
  t.throws(() => subjects.eventPattern('c', 'a.b.c.d.e'), { instanceOf: ValidationError, message: /4 tokens/ });
  t.throws(() => subjects.eventPattern('c', 'a.>.b'), { instanceOf: ValidationError });
  t.throws(() => subjects.eventPattern('c', { queue: 'a.b' }), { instanceOf: ValidationError });
  t.is(subjects.quorumPattern('c'), 'partita.c.quorum.>');
  t.is(subjects.quorumPattern('c', 'orders.*'), 'partita.c.quorum.orders.*');
  t.is(subjects.clusterPattern('c'), 'partita.c.>');
  t.true(matchSubject(subjects.eventPattern('c', { kind: 'completed' }), subjects.event('c', 'p', 'q', 't', 'completed')));
  t.false(matchSubject(subjects.eventPattern('c', { kind: 'completed' }), subjects.event('c', 'p', 'q', 't', 'failed')));
  t.true(matchSubject(subjects.clusterPattern('c'), subjects.rollCall('c')));
  t.false(matchSubject(subjects.clusterPattern('c'), subjects.rollCall('d')));
});

test('parse helpers invert the builders', (t) => {
  t.deepEqual(subjects.parseEvent(subjects.event('c', 'p', 'q', 't', 'k')), {
    cluster: 'c',
    partition: 'p',
    queue: 'q',
    type: 't',
    kind: 'k',
  });
  t.deepEqual(subjects.parseWake(subjects.wake('c', 'p', 'q')), { cluster: 'c', partition: 'p', queue: 'q' });
  t.deepEqual(subjects.parseQuorum(subjects.quorum('c', 'a.b')), { cluster: 'c', topic: 'a.b' });
  t.is(subjects.parseEvent(subjects.wake('c', 'p', 'q')), undefined);
  t.is(subjects.parseWake('partita.c.event.p.q.t.k'), undefined);
  t.is(subjects.parseQuorum('partita.c.wake.p.q'), undefined);
});

const token = fc.stringMatching(/^[A-Za-z0-9_\-éü]{1,12}$/);

test('property: any valid tokens build a valid subject that parses back', (t) => {
  fc.assert(
    fc.property(token, token, token, token, token, (c, p, q, ty, k) => {
      const s = subjects.event(c, p, q, ty, k);
      return (
        isValidSubject(s) &&
        JSON.stringify(subjects.parseEvent(s)) === JSON.stringify({ cluster: c, partition: p, queue: q, type: ty, kind: k })
      );
    }),
  );
  t.pass();
});

test('property: a token containing a space, dot, `*` or `>` is always rejected', (t) => {
  fc.assert(
    fc.property(
      fc.string({ maxLength: 6 }),
      fc.constantFrom(' ', '.', '*', '>', '\n', '\u00a0'),
      fc.string({ maxLength: 6 }),
      (a, bad, b) => {
        try {
          subjects.wake('c', a + bad + b, 'q');
          return false;
        } catch (err) {
          return err instanceof ValidationError;
        }
      },
    ),
  );
  t.pass();
});

/** Reference matcher written differently (regex), to cross-check matchSubject. */
function reference(pattern: string, subject: string): boolean {
  const re = pattern
    .split('.')
    .map((tok) => (tok === '*' ? '[^.]+' : tok === '>' ? '[^.]+(?:\\.[^.]+)*' : tok.replace(/[-\\^$+?()[\]{}|]/g, '\\$&')))
    .join('\\.');
  return new RegExp(`^${re}$`).test(subject);
}

test('property: matchSubject agrees with a regex reference for random patterns and subjects', (t) => {
  const tok = fc.constantFrom('a', 'b', 'cc');
  const subj = fc.array(tok, { minLength: 1, maxLength: 5 }).map((x) => x.join('.'));
  const pat = fc
    .tuple(fc.array(fc.constantFrom('a', 'b', 'cc', '*'), { minLength: 0, maxLength: 5 }), fc.boolean())
    .filter(([toks, tail]) => toks.length > 0 || tail)
    .map(([toks, tail]) => [...toks, ...(tail ? ['>'] : [])].join('.'));
  fc.assert(
    fc.property(pat, subj, (p, s) => isValidPattern(p) && matchSubject(p, s) === reference(p, s)),
    { numRuns: 5000 },
  );
  t.pass();
});

test('pattern validity follows NATS: wildcards are whole tokens, `>` only last', (t) => {
  for (const p of ['a', 'a.b', '*', '>', 'a.*', 'a.>', '*.*.>', 'a.*.c']) t.true(isValidPattern(p), p);
  for (const p of ['', '.', 'a.', '.a', 'a..b', '>.a', 'a.>.b', 'a*', 'a.b>', 'a b', 'a.\tb']) t.false(isValidPattern(p), p);
  for (const s of ['a', 'a.b', '_INBOX.x.y']) t.true(isValidSubject(s), s);
  for (const s of ['', 'a.*', 'a.>', 'a..b', 'a b', 'a.b*']) t.false(isValidSubject(s), s);
});
