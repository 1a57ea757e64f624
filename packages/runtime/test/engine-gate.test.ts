/** What stops claims: unknown or stopping controls, and leases that are not being renewed. */
import test from 'ava';
import { ClaimGate } from '../src/engine/gate.js';
import { FakeClock } from './engine/fixtures.js';

const HEARTBEAT_MS = 1000;

test('claims wait for the controls to be known; a stop on every queue stops them, a pause only its queue', (t) => {
  const clock = new FakeClock();
  const g = new ClaimGate(HEARTBEAT_MS, clock.now);
  t.true(g.claimsStopped, 'unknown until loaded: a restart must not run a paused queue');
  t.deepEqual(g.control({ paused: ['a'], throttles: [] }, 'n1', ['a', 'b']), { wasStopped: true });
  t.false(g.claimsStopped);
  t.deepEqual([...g.paused], ['a']);
  t.is(g.throttleMs, 0);
  t.deepEqual(g.control({ paused: [], throttles: [{ ms: -1 }] }, 'n1', ['a', 'b']), { wasStopped: false });
  t.true(g.claimsStopped);
  t.is(g.throttleMs, -1);
  t.deepEqual(g.stopped, ['a', 'b']);
  t.deepEqual([...g.paused], ['a', 'b']);
  t.deepEqual(
    g.control(
      {
        paused: [],
        throttles: [
          { ms: 250, node: 'n1' },
          { ms: -1, node: 'other' },
        ],
      },
      'n1',
      ['a', 'b'],
    ),
    { wasStopped: true },
  );
  t.is(g.throttleMs, 250);
  t.deepEqual(g.stopped, []);
  t.deepEqual([...g.paused], []);
});

test('leases go stale two missed beats and a second after the last renewal, said once; a renewal resumes', (t) => {
  const clock = new FakeClock();
  const g = new ClaimGate(HEARTBEAT_MS, clock.now);
  t.is(g.leases(clock.advance(2 * HEARTBEAT_MS + 1000)), 'renewing');
  t.is(g.leases(clock.advance(1)), 'went-stale');
  t.is(g.sinceRenewal(clock.now), 2 * HEARTBEAT_MS + 1001);
  t.is(g.leases(clock.advance(1)), 'stale');
  t.true(g.renewed(clock.now), 'claims had stopped: they resume');
  t.is(g.leases(clock.now), 'renewing');
  t.false(g.renewed(clock.advance(10)), 'nothing to resume');
});

test('a failed renewal round stops claims at once, until a renewal lands', (t) => {
  const clock = new FakeClock();
  const g = new ClaimGate(HEARTBEAT_MS, clock.now);
  t.true(g.renewalFailed());
  t.false(g.renewalFailed(), 'said once');
  t.is(g.leases(clock.now), 'stale');
  t.true(g.renewed(clock.advance(5)));
  t.is(g.leases(clock.now), 'renewing');
});
