import test from 'ava';
import { ValidationError } from '@partita/core';
import { InProcessBus, matchSubject } from '@partita/nats';
import {
  eventSubscriptionPattern,
  eventTypeFromToken,
  eventTypeToken,
  isJobEvent,
  jobEventSubject,
  jobEventsOf,
  publishJobEvents,
  jsonForm,
  type JobEvent,
} from '@partita/client';

test('type tokens: plain types stay as they are, unsafe characters are percent-encoded and decode back', (t) => {
  t.is(eventTypeToken('invoice'), 'invoice');
  t.is(eventTypeToken('send-email_v2'), 'send-email_v2');
  t.is(eventTypeToken('billing.invoice'), 'billing%2Einvoice');
  t.is(eventTypeToken('a*b>c'), 'a%2Ab%3Ec');
  t.is(eventTypeToken('100%'), '100%25');
  t.is(eventTypeToken('two words\n'), 'two%20words%0A');
  t.is(eventTypeToken('café.crème'), 'café%2Ecrème', 'non-ASCII letters are valid in subjects and stay');
  for (const type of ['billing.invoice', 'a*b>c', '100%', 'two words\n', 'x.%2E.y', 'tab\there', 'nbsp\u00a0x', 'ideo\u3000x']) {
    const token = eventTypeToken(type);
    t.notRegex(token, /[.*>\s]/u, `${JSON.stringify(type)} → ${token}`);
    t.is(eventTypeFromToken(token), type);
  }
  // Exact: two types never share a token (a lossy '.' → '_' would merge these).
  t.not(eventTypeToken('a.b'), eventTypeToken('a_b'));
  t.not(eventTypeToken('a.b'), eventTypeToken('a%2Eb'));
});

test('type tokens: very long encodings are cut and hashed, still distinct and valid', (t) => {
  const a = '.'.repeat(200);
  const b = `${'.'.repeat(199)}x`;
  const ta = eventTypeToken(a);
  const tb = eventTypeToken(b);
  t.true(ta.length <= 256);
  t.true(tb.length <= 256);
  t.not(ta, tb);
  t.notThrows(() => jobEventSubject('c', 'p', 'q', a, 'completed'));
});

test('event subjects: partita.<cluster>.event.<partition>.<queue>.<typeToken>.<kind>', (t) => {
  t.is(jobEventSubject('c1', 'billing', 'default', 'invoice', 'completed'), 'partita.c1.event.billing.default.invoice.completed');
  t.is(
    jobEventSubject('c1', 'billing', 'default', 'billing.invoice', 'started'),
    'partita.c1.event.billing.default.billing%2Einvoice.started',
  );
  t.throws(() => jobEventSubject('c1', 'bad partition', 'default', 'x', 'completed'), { instanceOf: ValidationError });
});

test('subscription patterns: relative, full and filter forms', (t) => {
  const c = 'c1';
  t.is(eventSubscriptionPattern(c, 'billing.*.invoice.completed'), 'partita.c1.event.billing.*.invoice.completed');
  t.is(eventSubscriptionPattern(c, 'billing.>'), 'partita.c1.event.billing.>');
  t.is(eventSubscriptionPattern(c, '>'), 'partita.c1.event.>');
  t.is(eventSubscriptionPattern(c, '*.*.*.failed'), 'partita.c1.event.*.*.*.failed');
  t.is(eventSubscriptionPattern(c, 'partita.c1.event.email.>'), 'partita.c1.event.email.>');
  t.is(eventSubscriptionPattern(c, {}), 'partita.c1.event.*.*.*.*');
  t.is(eventSubscriptionPattern(c, { type: 'billing.invoice', kind: 'completed' }), 'partita.c1.event.*.*.billing%2Einvoice.completed');
  t.is(eventSubscriptionPattern(c, { partition: 'email', queue: 'bulk' }), 'partita.c1.event.email.bulk.*.*');

  const subject = jobEventSubject(c, 'billing', 'default', 'billing.invoice', 'completed');
  t.true(matchSubject(eventSubscriptionPattern(c, { type: 'billing.invoice' }), subject));
  t.true(matchSubject(eventSubscriptionPattern(c, 'billing.>'), subject));
  t.false(matchSubject(eventSubscriptionPattern(c, { type: 'billing' }), subject));
});

test('subscription patterns that can never match, or leave the cluster, are refused with advice', (t) => {
  const e1 = t.throws(() => eventSubscriptionPattern('c1', 'billing.*'), { instanceOf: ValidationError });
  t.regex(e1!.message, /never match.*billing\.\*\.>/);
  t.throws(() => eventSubscriptionPattern('c1', 'a.b.c.d.e'), { instanceOf: ValidationError });
  t.throws(() => eventSubscriptionPattern('c1', 'partita.other.event.>'), { instanceOf: ValidationError });
  t.throws(() => eventSubscriptionPattern('c1', 'partita.c1.wake.>'), { instanceOf: ValidationError });
  t.throws(() => eventSubscriptionPattern('c1', 'bill*.>'), { instanceOf: ValidationError });
  t.throws(() => eventSubscriptionPattern('c1', { kind: 'finished' as never }), { instanceOf: ValidationError });
});

test('isJobEvent accepts well-formed events only', (t) => {
  const ok: JobEvent = { id: 'x', partition: 'p', queue: 'q', type: 't', kind: 'completed', attempt: 1, at: new Date(), result: 1 };
  t.true(isJobEvent(ok));
  t.true(isJobEvent({ ...ok, kind: 'retrying', retryAt: new Date(), error: { attempt: 1, at: '', name: 'Error', message: 'm' } }));
  t.false(isJobEvent(null));
  t.false(isJobEvent([]));
  t.false(isJobEvent({ ...ok, kind: 'exploded' }));
  t.false(isJobEvent({ ...ok, id: 5 }));
  t.false(isJobEvent({ ...ok, at: 'yesterday' }));
  t.false(isJobEvent({ ...ok, retryAt: 3 }));
});

test('batch messages: events of one subject travel together and unpack one by one; malformed parts are dropped', async (t) => {
  const bus = new InProcessBus({ cluster: 'c' });
  const got: { kind: string; events: JobEvent[] }[] = [];
  const off = await bus.subscribe(
    'partita.c.event.>',
    (data, msg) => void got.push({ kind: msg.kind, events: jobEventsOf(data, msg.kind) }),
  );
  const at = new Date();
  const ev = (id: string, kind: JobEvent['kind'], queue = 'q'): JobEvent => ({
    id,
    partition: 'p',
    queue,
    type: 't.x',
    kind,
    attempt: 1,
    at,
    node: 'n',
  });
  publishJobEvents(bus, [ev('a', 'completed'), ev('b', 'completed'), ev('c', 'started'), ev('d', 'completed', 'other')]);
  await new Promise((r) => setTimeout(r, 20));
  t.deepEqual(got.map((g) => g.kind).sort(), ['job.completed', 'job.completed.batch', 'job.started']);
  const batch = got.find((g) => g.kind === 'job.completed.batch')!;
  t.deepEqual(batch.events, [ev('a', 'completed'), ev('b', 'completed')]);
  t.deepEqual(
    jobEventsOf(
      { partition: 'p', queue: 'q', type: 't', kind: 'completed', at, events: [{ id: 'ok', attempt: 1 }, { id: 5 }, null] },
      'job.completed.batch',
    ).map((e) => e.id),
    ['ok'],
  );
  t.deepEqual(jobEventsOf({ events: 'nope' }, 'job.completed.batch'), []);
  t.deepEqual(jobEventsOf(null, 'job.completed.batch'), []);
  await off();
  await bus.close();
});

test('jsonForm gives what Postgres returns for a stored value', (t) => {
  t.is(jsonForm(undefined), null);
  t.is(jsonForm(3), 3);
  t.is(jsonForm('s'), 's');
  const at = new Date('2030-01-02T03:04:05.000Z');
  t.deepEqual(jsonForm({ at, n: undefined, list: [1, 'a'] }), { at: '2030-01-02T03:04:05.000Z', list: [1, 'a'] });
});
