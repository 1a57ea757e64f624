import test from 'ava';
import { createSystem, type ActorRef, type ActorSystem, type Behavior } from '@partita/actors';
import { LeaseLostError, ValidationError } from '@partita/core';
import { Leases, migrate } from '@partita/postgres';
import { LeaderSeat, type LeaderChange, type LeaderSeatOptions } from '@partita/runtime';
import { capturingLogger, freshSchema, type TestSchema } from '../../../test/helpers/index.js';
import { sleep, until } from './helpers.js';

// One schema for the file; every test uses lease names of its own, so they run concurrently.
let db: TestSchema;
let leases: Leases;
const systems: ActorSystem[] = [];

test.before(async () => {
  db = await freshSchema('leader_seat');
  await migrate(db.pool, db.schema);
  leases = new Leases(db.pool, db.schema);
  await db.pool.query(`CREATE TABLE "${db.schema}".writes (lease text NOT NULL, node text NOT NULL, epoch bigint NOT NULL)`);
});
test.after.always(async () => {
  await Promise.all(systems.map((s) => s.shutdown()));
  await db?.drop();
});

type WriterMsg = { t: 'write' };

/**
 * A leader's child that writes as the leader would: in a transaction fenced by its epoch. It
 * answers the epoch it wrote at, or the LeaseLostError's message when the fence refused it.
 */
function writer(lease: string, node: string, epoch: number, started: string[]): Behavior<WriterMsg, number | string> {
  return {
    init() {
      started.push(`${node}@${epoch}`);
    },
    async handle() {
      const client = await db.pool.connect();
      try {
        await client.query('BEGIN');
        await leases.assertHolder(client, lease, epoch);
        await client.query(`INSERT INTO "${db.schema}".writes VALUES ($1, $2, $3)`, [lease, node, epoch]);
        await client.query('COMMIT');
        return epoch;
      } catch (err) {
        await client.query('ROLLBACK');
        if (err instanceof LeaseLostError) return err.message;
        throw err;
      } finally {
        client.release();
      }
    },
  };
}

interface Seat {
  node: string;
  seat: LeaderSeat;
  system: ActorSystem;
  changes: LeaderChange[];
  started: string[];
  /** The leader's child on this node, if it leads. */
  child(): ActorRef<WriterMsg, number | string> | undefined;
}

function seatFor(lease: string, node: string, options: Partial<LeaderSeatOptions> = {}): Seat {
  const system = createSystem({ name: node });
  systems.push(system);
  const started: string[] = [];
  const changes: LeaderChange[] = [];
  const seat = new LeaderSeat({
    lease,
    nodeId: node,
    leases,
    system,
    logger: capturingLogger('warn').logger,
    ttlMs: 1000,
    tickMs: 100,
    name: `leader:${lease}`,
    start: (epoch) => writer(lease, node, epoch, started),
    ...options,
  });
  seat.onChange((c) => changes.push(c));
  return { node, seat, system, changes, started, child: () => system.whereis<WriterMsg, number | string>(`leader:${lease}`) };
}

const leaderOf = async (lease: string) => (await leases.holder(lease))?.holder;

test('two seats race: exactly one leads, runs its child, and its writes pass the fence', async (t) => {
  const a = seatFor('race', 'a');
  const b = seatFor('race', 'b');
  a.system.spawn(a.seat.behavior());
  b.system.spawn(b.seat.behavior());
  const winner = await until('a leader', () => [a, b].find((s) => s.seat.isLeader));
  const loser = winner === a ? b : a;
  // Several rounds of both seats later, still one leader.
  await sleep(400);
  t.true(winner.seat.isLeader);
  t.false(loser.seat.isLeader);
  t.is(loser.seat.epoch, undefined);
  t.is(loser.child(), undefined, 'the other node runs no child');
  t.is(await leaderOf('race'), winner.node);
  t.is(winner.seat.epoch, 1);
  t.deepEqual(winner.started, [`${winner.node}@1`]);
  t.deepEqual(loser.started, []);
  t.deepEqual(winner.changes, [{ lease: 'race', leader: true, epoch: 1 }]);
  t.is(await winner.child()!.call({ t: 'write' }), 1);
});

test('the seat actor answers status', async (t) => {
  const a = seatFor('status', 'a');
  const ref = a.system.spawn(a.seat.behavior());
  await until('a leads', () => a.seat.isLeader);
  t.deepEqual(await ref.call({ t: 'status' }), { lease: 'status', leader: true, epoch: 1 });
});

test('a stopped leader releases the lease: the other seat takes over at the next epoch well within the ttl', async (t) => {
  const a = seatFor('handover', 'a', { ttlMs: 10_000, tickMs: 100 });
  const aRef = a.system.spawn(a.seat.behavior());
  await until('a leads', () => a.seat.isLeader);
  const b = seatFor('handover', 'b', { ttlMs: 10_000, tickMs: 100 });
  b.system.spawn(b.seat.behavior());
  await sleep(300);
  t.false(b.seat.isLeader, 'b waits while a holds the lease');
  const child = a.child()!;
  const stoppedAt = Date.now();
  await aRef.stop();
  t.false(child.alive, "the leader's child stopped with the seat");
  // Released at once: either still a's released row, or b (ticking every 100 ms) already took it over.
  const after = await leases.holder('handover');
  t.true(
    after?.holder === 'a' ? after.released : after?.holder === 'b' && after.epoch === 2,
    `lease after a stopped: ${JSON.stringify(after)}`,
  );
  await until('b leads', () => b.seat.isLeader, 8000);
  // Had a merely stopped renewing, b would have waited out the 10 s ttl.
  t.true(Date.now() - stoppedAt < 5000, `b took over ${Date.now() - stoppedAt} ms after a stopped (ttl 10000)`);
  t.is(b.seat.epoch, 2);
  t.deepEqual(
    a.changes.map((c) => [c.leader, c.epoch, c.reason]),
    [
      [true, 1, undefined],
      [false, 1, 'released'],
    ],
  );
});

// Serial (ava runs these before the concurrent tests), as it steps this process's wall clock.
test.serial('a leader whose wall clock steps an hour back, then forward, keeps renewing and keeps the lease', async (t) => {
  const realNow = Date.now;
  t.teardown(() => {
    Date.now = realNow;
  });
  const ttlMs = 1000;
  const a = seatFor('clock-step', 'a', { ttlMs, tickMs: 100 });
  a.system.spawn(a.seat.behavior());
  await until('a leads', () => a.seat.isLeader, 10_000, 10);
  const b = seatFor('clock-step', 'b', { ttlMs, tickMs: 100 });
  b.system.spawn(b.seat.behavior());
  for (const stepMs of [-3_600_000, 3_600_000]) {
    Date.now = () => realNow() + stepMs;
    await sleep(3 * ttlMs);
    t.is(await leaderOf('clock-step'), 'a', `a still holds the lease ${3 * ttlMs} ms after its clock stepped ${stepMs} ms`);
  }
  Date.now = realNow;
  t.true(a.seat.isLeader);
  t.false(b.seat.isLeader);
  t.deepEqual(
    a.changes.map((c) => c.leader),
    [true],
    'a led once, without a step-down',
  );
  t.deepEqual(b.started, [], 'b never led');
});

test('a leader that dies without releasing is replaced within ttl + tick of its last renewal', async (t) => {
  const ttlMs = 1000;
  const tickMs = 100;
  // a is driven by hand: after its first round it never ticks again, as if its process died.
  const a = seatFor('dead', 'a', { ttlMs, tickMs });
  // The lease runs out ttl after the database ran the acquire: somewhere between these two moments.
  const asked = Date.now();
  await a.seat.tick();
  const renewedAt = Date.now();
  t.true(a.seat.isLeader);
  const b = seatFor('dead', 'b', { ttlMs, tickMs });
  b.system.spawn(b.seat.behavior());
  await until('b leads', () => b.seat.isLeader, 10_000, 10);
  const tookMs = Date.now() - renewedAt;
  t.log(`b took over ${tookMs} ms after a's last renewal (ttl ${ttlMs}, tick ${tickMs})`);
  t.true(Date.now() - asked >= ttlMs, 'not before the lease ran out');
  // ttl + tick, plus room for a busy machine's round trips.
  t.true(tookMs <= ttlMs + tickMs + 500, `took ${tookMs} ms`);
  t.is(b.seat.epoch, 2);
});

test('a paused leader whose lease expired is fenced: its writes are refused, and it steps down when it resumes', async (t) => {
  const a = seatFor('paused', 'a', { ttlMs: 500, tickMs: 100 });
  await a.seat.tick();
  const child = a.child()!;
  t.is(await child.call({ t: 'write' }), 1);
  // a is paused (no ticks) past its ttl: even before anyone takes over, its lease no longer fences writes in.
  await sleep(650);
  t.regex(String(await child.call({ t: 'write' })), /"paused" at epoch 1 refused: it had expired/);
  const b = seatFor('paused', 'b', { ttlMs: 500, tickMs: 100 });
  await b.seat.tick();
  t.is(b.seat.epoch, 2);
  t.true(a.seat.isLeader, 'a has not noticed yet');
  t.regex(String(await child.call({ t: 'write' })), /epoch 2 \(held by b\) has taken over/);
  // a resumes: its renewal fails, it stops its child and does not touch b's lease.
  await a.seat.tick();
  t.false(a.seat.isLeader);
  t.false(child.alive);
  t.deepEqual(a.changes.at(-1), { lease: 'paused', leader: false, epoch: 1, reason: 'lost' });
  t.like(await leases.holder('paused'), { holder: 'b', epoch: 2, live: true, released: false });
  t.is(await b.child()!.call({ t: 'write' }), 2);
  const { rows } = await db.pool.query(`SELECT node, epoch::int FROM "${db.schema}".writes WHERE lease = 'paused' ORDER BY epoch`);
  t.deepEqual(
    rows,
    [
      { node: 'a', epoch: 1 },
      { node: 'b', epoch: 2 },
    ],
    'only the writes made while holding the lease landed',
  );
});

test('a child that stops on its own gives the lease up to another node', async (t) => {
  const a = seatFor('child-stops', 'a', { ttlMs: 5000 });
  await a.seat.tick();
  await a.child()!.stop('done');
  await a.seat.tick();
  t.false(a.seat.isLeader);
  t.like(await leases.holder('child-stops'), { holder: 'a', released: true });
  t.deepEqual(a.changes.at(-1), { lease: 'child-stops', leader: false, epoch: 1, reason: 'child-stopped' });
  const b = seatFor('child-stops', 'b', { ttlMs: 5000 });
  await b.seat.tick();
  t.is(b.seat.epoch, 2);
});

test('start may raise the epoch and run a supervision tree; a failing start is retried, not leading meanwhile', async (t) => {
  let attempts = 0;
  const started: number[] = [];
  const a = seatFor('tree', 'a', {
    ttlMs: 5000,
    start: async (epoch, lease) => {
      attempts += 1;
      if (attempts === 1) throw new Error('not yet');
      t.is(lease.epoch, epoch);
      const raised = await lease.raiseEpoch(10);
      return {
        strategy: 'one_for_one',
        children: [{ id: 'worker', start: () => ({ init: () => void started.push(raised), handle: () => undefined }) }],
      };
    },
  });
  await t.throwsAsync(a.seat.tick(), { message: 'not yet' });
  t.false(a.seat.isLeader);
  t.like(await leases.holder('tree'), { holder: 'a', epoch: 1, live: true }, 'kept, so the retry gets the same epoch');
  await a.seat.tick();
  t.true(a.seat.isLeader);
  t.is(a.seat.epoch, 10);
  t.deepEqual(started, [10]);
  t.is<unknown, unknown>(a.system.whereisSupervisor('leader:tree'), a.seat.child);
  t.true(await leases.renew('tree', 'a', 10, 5000));
  await a.seat.stop();
  t.false(a.seat.isLeader);
  t.like(await leases.holder('tree'), { epoch: 10, released: true });
  await a.seat.tick();
  t.false(a.seat.isLeader, 'a stopped seat does not chase the lease');
});

test('whileLeading runs with the child and its teardown before the child stops', async (t) => {
  const order: string[] = [];
  const a = seatFor('hooks', 'a', {
    ttlMs: 5000,
    start: () => ({ handle: () => undefined, terminate: () => void order.push('child stopped') }),
    whileLeading: async (child, epoch) => {
      order.push(`leading ${epoch} ${child.alive}`);
      return async () => void order.push('teardown');
    },
  });
  await a.seat.tick();
  await a.seat.stop();
  t.deepEqual(order, ['leading 1 true', 'teardown', 'child stopped']);
});

test('seat options are checked', (t) => {
  const system = createSystem();
  systems.push(system);
  const base = {
    lease: 'x',
    nodeId: 'a',
    leases,
    system,
    logger: capturingLogger().logger,
    ttlMs: 1000,
    tickMs: 100,
    start: () => ({ handle: () => undefined }),
  };
  t.throws(() => new LeaderSeat({ ...base, tickMs: 1000 }), { instanceOf: ValidationError, message: /tickMs/ });
  t.throws(() => new LeaderSeat({ ...base, lease: '' }), { instanceOf: ValidationError, message: /lease/ });
  t.throws(() => new LeaderSeat({ ...base, ttlMs: 0 }), { instanceOf: ValidationError, message: /ttlMs/ });
});
