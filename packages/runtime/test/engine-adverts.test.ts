/** Idle adverts and hand-offs: when an advert goes out again, when it is taken back, repeated hand-offs. */
import test from 'ava';
import { IDLE_ADVERT_TTL_MS } from '@partita/protocol';
import { ADVERT_REFRESH_MS, Adverts, RECENT_HANDOFFS } from '../src/engine/adverts.js';
import { FakeClock } from './engine/fixtures.js';

test('an idle queue is advertised once, then again when it gets old, its free slots change or a hand-off used it', (t) => {
  const clock = new FakeClock();
  const a = new Adverts(['q']);
  t.true(a.offer('q', 4, clock.now));
  t.false(a.offer('q', 4, clock.advance(ADVERT_REFRESH_MS - 1)), 'the same advert is still fresh');
  t.true(a.offer('q', 4, clock.advance(1)), 'refreshed before clients stop trusting it');
  t.true(a.offer('q', 3, clock.advance(1)), 'free slots changed');
  t.true(a.firstHandoff('j1', 'q'));
  t.true(a.offer('q', 3, clock.advance(1)), 'a hand-off used the advert');
  t.false(a.offer('q', 3, clock.advance(1)));
});

test('no advert for a full queue or a queue this engine does not serve', (t) => {
  const clock = new FakeClock();
  const a = new Adverts(['q']);
  t.false(a.offer('q', 0, clock.now));
  t.false(a.offer('other', 3, clock.now));
});

test('an advert still out is taken back once the queue cannot take hand-offs', (t) => {
  const clock = new FakeClock();
  const a = new Adverts(['a', 'b', 'c']);
  a.offer('a', 2, clock.now);
  a.offer('b', 2, clock.now);
  let open = new Set(['a', 'b', 'c']);
  const takes = (q: string) => open.has(q);
  t.is(a.retract(clock.now, takes), undefined, 'every queue still takes hand-offs');
  open = new Set(['b']);
  t.deepEqual(a.retract(clock.advance(10), takes), [{ queue: 'a', free: 0 }], 'c had no advert out');
  t.is(a.retract(clock.advance(10), takes), undefined, 'taken back once');
  t.true(a.offer('a', 2, clock.now), 'retracted: the next idle claim advertises again');
});

test('an advert used up by hand-offs, or too old for clients to trust, needs no retraction', (t) => {
  const clock = new FakeClock();
  const a = new Adverts(['used', 'old']);
  a.offer('used', 2, clock.now);
  a.offer('old', 2, clock.now);
  a.firstHandoff('j1', 'used');
  a.firstHandoff('j2', 'used');
  t.deepEqual(
    a.retract(clock.now, () => false),
    [{ queue: 'old', free: 0 }],
  );
  a.offer('old', 1, clock.now);
  t.is(
    a.retract(clock.advance(IDLE_ADVERT_TTL_MS + 1), () => false),
    undefined,
  );
});

test('a repeated hand-off is refused; the memory of hand-offs is bounded, oldest forgotten first', (t) => {
  const a = new Adverts(['q']);
  t.true(a.firstHandoff('first', 'q'));
  t.false(a.firstHandoff('first', 'q'));
  for (let i = 0; i < RECENT_HANDOFFS - 1; i++) a.firstHandoff(`j${i}`, 'q');
  t.false(a.firstHandoff('first', 'q'), `still among the last ${RECENT_HANDOFFS}`);
  a.firstHandoff('one-more', 'q');
  t.true(a.firstHandoff('first', 'q'), 'forgotten');
  t.false(a.firstHandoff('j5', 'q'));
});
