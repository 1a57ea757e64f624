import test from 'ava';
import pg from 'pg';
import { Leases, PartitionLeases, PostgresGlobalState, globalLeaseName, migrate } from '@partita/postgres';
import { LeaseLostError, StaleEpochError, ValidationError } from '@partita/core';
import { loadMigrations } from '../src/sql.js';
import { freshSchema, type TestSchema } from '../../../test/helpers/index.js';

// One schema for the file; every test uses its own partition names, so they run concurrently.
let db: TestSchema;
let leases: PartitionLeases;
let state: PostgresGlobalState;
let named: Leases;

test.before(async () => {
  db = await freshSchema('leases');
  await migrate(db.pool, db.schema);
  leases = new PartitionLeases(db.pool, db.schema);
  state = new PostgresGlobalState(db.pool, db.schema);
  named = new Leases(db.pool, db.schema);
});
test.after.always(async () => {
  await db?.drop();
});

/** Moves a lease's expiry into the past, as if its holder had stopped renewing long ago. */
async function expire(partition: string): Promise<void> {
  await db.pool.query(`UPDATE "${db.schema}".leases SET expires_at = now() - interval '1 second' WHERE name = 'global:' || $1`, [
    partition,
  ]);
}

test('acquire takes a free lease at epoch 1; others are refused; the holder re-acquires at the same epoch', async (t) => {
  const first = await leases.acquire('acq', 'node-a', 5000);
  t.is(first?.epoch, 1);
  t.true(first!.expiresAt.getTime() > first!.acquiredAt.getTime());
  t.is(await leases.acquire('acq', 'node-b', 5000), undefined);
  const again = await leases.acquire('acq', 'node-a', 5000);
  t.is(again?.epoch, 1, 're-acquiring a live lease of ours keeps its epoch');
  t.deepEqual(again?.acquiredAt, first?.acquiredAt);
  const h = await leases.holder('acq');
  t.like(h, { holder: 'node-a', epoch: 1, live: true, released: false });
  t.is(await leases.holder('never-leased'), undefined);
});

test('renew extends only for the holder at its epoch', async (t) => {
  const got = await leases.acquire('renew', 'node-a', 5000);
  const before = (await leases.holder('renew'))!.expiresAt.getTime();
  t.true(await leases.renew('renew', 'node-a', got!.epoch, 60_000));
  t.true((await leases.holder('renew'))!.expiresAt.getTime() > before + 50_000, 'the expiry moved (database clock)');
  t.false(await leases.renew('renew', 'node-b', got!.epoch, 60_000), 'another node');
  t.false(await leases.renew('renew', 'node-a', got!.epoch + 1, 60_000), 'another epoch');
  t.false(await leases.renew('other-partition', 'node-a', got!.epoch, 60_000), 'a partition never leased');
});

test('an expired lease is taken over by another node with the next epoch; the old holder is fenced', async (t) => {
  const a = await leases.acquire('steal', 'node-a', 5000);
  await expire('steal');
  t.false((await leases.holder('steal'))!.live);
  const b = await leases.acquire('steal', 'node-b', 5000);
  t.is(b?.epoch, a!.epoch + 1);
  t.false(await leases.renew('steal', 'node-a', a!.epoch, 5000), 'the old holder cannot renew');
  t.is(await leases.acquire('steal', 'node-a', 5000), undefined, 'nor take it back while it is live');
  t.like(await leases.holder('steal'), { holder: 'node-b', epoch: 2, live: true });
});

test('a lease expires by the database clock after its ttl', async (t) => {
  // Long enough that a busy machine still asks again well inside it.
  const a = await leases.acquire('ttl', 'node-a', 1000);
  t.is(await leases.acquire('ttl', 'node-b', 1000), undefined);
  await new Promise((r) => setTimeout(r, 1150));
  t.is((await leases.acquire('ttl', 'node-b', 5000))?.epoch, a!.epoch + 1);
});

test('an expired lease nobody took can still be renewed by its holder, at the same epoch', async (t) => {
  const a = await leases.acquire('late-renew', 'node-a', 5000);
  await expire('late-renew');
  t.true(await leases.renew('late-renew', 'node-a', a!.epoch, 5000));
  t.like(await leases.holder('late-renew'), { holder: 'node-a', epoch: a!.epoch, live: true });
  t.is(await leases.acquire('late-renew', 'node-b', 5000), undefined);
});

test('the holder re-acquiring its own expired lease gets a new epoch', async (t) => {
  const a = await leases.acquire('own-expired', 'node-a', 5000);
  await expire('own-expired');
  t.is((await leases.acquire('own-expired', 'node-a', 5000))?.epoch, a!.epoch + 1);
});

test('release hands the lease over at once; a released lease cannot be renewed', async (t) => {
  const a = await leases.acquire('release', 'node-a', 60_000);
  await leases.release('release', 'node-b', a!.epoch); // not node-b's: nothing happens
  t.like(await leases.holder('release'), { holder: 'node-a', live: true, released: false });
  await leases.release('release', 'node-a', a!.epoch);
  t.like(await leases.holder('release'), { holder: 'node-a', epoch: a!.epoch, live: false, released: true });
  t.false(await leases.renew('release', 'node-a', a!.epoch, 60_000));
  const b = await leases.acquire('release', 'node-b', 60_000);
  t.is(b?.epoch, a!.epoch + 1);
  t.like(await leases.holder('release'), { holder: 'node-b', live: true, released: false });
});

test('of 10 concurrent acquirers exactly one wins, for a new lease and for an expired one', async (t) => {
  const racers = new pg.Pool({ connectionString: db.url, max: 10 });
  racers.on('error', () => undefined);
  try {
    const raceLeases = new PartitionLeases(racers, db.schema);
    // Open the connections first so the statements really overlap.
    await Promise.all(Array.from({ length: 10 }, () => racers.query('SELECT 1')));
    const race = () => Promise.all(Array.from({ length: 10 }, (_, i) => raceLeases.acquire('race', `node-${i}`, 60_000)));
    const fresh = await race();
    t.is(fresh.filter(Boolean).length, 1);
    t.is(fresh.find(Boolean)!.epoch, 1);
    await expire('race');
    const takeover = await race();
    t.is(takeover.filter(Boolean).length, 1);
    t.is(takeover.find(Boolean)!.epoch, 2);
    const winner = takeover.findIndex(Boolean);
    t.like(await leases.holder('race'), { holder: `node-${winner}`, epoch: 2 });
  } finally {
    await racers.end();
  }
});

test('raiseEpoch lifts the epoch of a live lease we hold, and only that', async (t) => {
  const a = await leases.acquire('raise', 'node-a', 60_000);
  t.is(await leases.raiseEpoch('raise', 'node-b', a!.epoch, 9), undefined);
  t.is(await leases.raiseEpoch('raise', 'node-a', a!.epoch, 9), 9);
  t.is(await leases.raiseEpoch('raise', 'node-a', 9, 4), 9, 'never lowers it');
  t.false(await leases.renew('raise', 'node-a', a!.epoch, 60_000), 'the old epoch is gone');
  t.true(await leases.renew('raise', 'node-a', 9, 60_000));
  await expire('raise');
  t.is((await leases.acquire('raise', 'node-b', 60_000))?.epoch, 10);
});

test('lease arguments are checked', async (t) => {
  await t.throwsAsync(leases.acquire('bad', 'node-a', 0), { instanceOf: ValidationError });
  await t.throwsAsync(leases.acquire('bad', '', 1000), { instanceOf: ValidationError });
  await t.throwsAsync(leases.renew('bad', 'node-a', 1.5, 1000), { instanceOf: ValidationError });
});

test('global state: save and load round-trip; the same or a newer epoch may overwrite', async (t) => {
  t.is(await state.load('gs'), undefined);
  await state.save('gs', { n: 1 }, 1);
  await state.save('gs', '{"n": 2}', 1);
  t.like(await state.load('gs'), { epoch: 1, snapshot: { n: 2 } });
  await state.save('gs', { n: 3 }, 4);
  const row = await state.load('gs');
  t.like(row, { epoch: 4, snapshot: { n: 3 } });
  t.true(row!.savedAt instanceof Date);
});

test('global state: a save from an older epoch is refused in SQL with the current epoch named', async (t) => {
  await state.save('gs-stale', { n: 1 }, 5);
  const err = await t.throwsAsync(state.save('gs-stale', { n: 0 }, 4), { instanceOf: StaleEpochError });
  t.regex(err!.message, /epoch 4 refused: epoch 5 has taken over/);
  t.like(await state.load('gs-stale'), { epoch: 5, snapshot: { n: 1 } });
});

test('global state: a newer lease fences a save even before its leader saved anything', async (t) => {
  const a = await leases.acquire('gs-fenced', 'node-a', 60_000);
  await state.save('gs-fenced', { by: 'a' }, a!.epoch);
  await expire('gs-fenced');
  const b = await leases.acquire('gs-fenced', 'node-b', 60_000);
  const err = await t.throwsAsync(state.save('gs-fenced', { by: 'a', late: true }, a!.epoch), { instanceOf: StaleEpochError });
  t.regex(err!.message, new RegExp(`epoch ${b!.epoch} has taken over`));
  t.like(await state.load('gs-fenced'), { epoch: a!.epoch, snapshot: { by: 'a' } });
  await state.save('gs-fenced', { by: 'b' }, b!.epoch);
  t.like(await state.load('gs-fenced'), { epoch: b!.epoch, snapshot: { by: 'b' } });
});

test('global state: a save racing a take-over waits for it and is then refused', async (t) => {
  const a = await leases.acquire('gs-race', 'node-a', 60_000);
  await expire('gs-race');
  // The take-over is in flight (its transaction holds the lease row) when the old leader saves.
  const taker = await db.pool.connect();
  try {
    await taker.query('BEGIN');
    const { rows } = await taker.query(
      `UPDATE "${db.schema}".leases SET holder = 'node-b', epoch = epoch + 1, expires_at = now() + interval '1 minute'
       WHERE name = 'global:gs-race' RETURNING epoch`,
    );
    t.is(Number(rows[0].epoch), a!.epoch + 1);
    let settled = false;
    const save = state.save('gs-race', { by: 'a' }, a!.epoch).finally(() => (settled = true));
    save.catch(() => undefined);
    await new Promise((r) => setTimeout(r, 150));
    t.false(settled, 'the save waits for the take-over to commit or roll back');
    await taker.query('COMMIT');
    await t.throwsAsync(save, { instanceOf: StaleEpochError });
  } finally {
    taker.release();
  }
  t.is(await state.load('gs-race'), undefined);
});

/** Moves a named lease's expiry into the past. */
async function expireNamed(name: string): Promise<void> {
  await db.pool.query(`UPDATE "${db.schema}".leases SET expires_at = now() - interval '1 second' WHERE name = $1`, [name]);
}

test('named leases: any name is a lease of its own, independent of the others and of Global leases', async (t) => {
  const m = await named.acquire('maintenance', 'node-a', 60_000);
  const s = await named.acquire('schedule:nightly', 'node-b', 60_000);
  t.is(m?.epoch, 1);
  t.is(s?.epoch, 1);
  t.is(await named.acquire('maintenance', 'node-b', 60_000), undefined);
  // A partition called "maintenance" has its own Global lease: 'global:maintenance'.
  t.is((await leases.acquire('maintenance', 'node-b', 60_000))?.epoch, 1);
  t.like(await named.holder(globalLeaseName('maintenance')), { holder: 'node-b', epoch: 1, live: true });
  t.like(await named.holder('maintenance'), { holder: 'node-a', epoch: 1, live: true });
  t.like(await leases.holder('maintenance'), { holder: 'node-b' });
});

test('assertHolder passes for the live holder in its transaction and refuses an expired, released or superseded epoch', async (t) => {
  const a = await named.acquire('fence', 'node-a', 60_000);
  await named.assertHolder(db.pool, 'fence', a!.epoch);
  await expireNamed('fence');
  const expired = await t.throwsAsync(named.assertHolder(db.pool, 'fence', a!.epoch), { instanceOf: LeaseLostError });
  t.regex(expired!.message, /"fence" at epoch 1 refused: it had expired or was released/);
  const b = await named.acquire('fence', 'node-b', 60_000);
  const superseded = await t.throwsAsync(named.assertHolder(db.pool, 'fence', a!.epoch), { instanceOf: LeaseLostError });
  t.regex(superseded!.message, /epoch 2 \(held by node-b\) has taken over/);
  await named.assertHolder(db.pool, 'fence', b!.epoch);
  await named.release('fence', 'node-b', b!.epoch);
  await t.throwsAsync(named.assertHolder(db.pool, 'fence', b!.epoch), { instanceOf: LeaseLostError });
  await t.throwsAsync(named.assertHolder(db.pool, 'never-taken', 1), { instanceOf: LeaseLostError, message: /never taken/ });
});

test('a write fenced by assertHolder commits before a take-over, which waits for it', async (t) => {
  await db.pool.query(`CREATE TABLE "${db.schema}".fenced_writes (by text NOT NULL)`);
  const a = await named.acquire('fence-tx', 'node-a', 60_000);
  const writer = await db.pool.connect();
  try {
    await writer.query('BEGIN');
    await named.assertHolder(writer, 'fence-tx', a!.epoch);
    await writer.query(`INSERT INTO "${db.schema}".fenced_writes VALUES ('a')`);
    // Even expiring the lease (an UPDATE of its row) has to wait for the fenced transaction.
    let expired = false;
    const expiring = expireNamed('fence-tx').finally(() => (expired = true));
    let settled = false;
    const takeover = named.acquire('fence-tx', 'node-b', 60_000).finally(() => (settled = true));
    await new Promise((r) => setTimeout(r, 150));
    t.false(expired, 'the lease cannot be expired under the fenced transaction');
    t.false(settled, 'nor taken over');
    await writer.query('COMMIT');
    await expiring;
    // Both waited on the lease row; which got it first after the commit is the server's business: a
    // take-over that went first found a's lease still live, and one made now finds it expired.
    const took = (await takeover) ?? (await named.acquire('fence-tx', 'node-b', 60_000));
    t.is(took?.epoch, a!.epoch + 1, 'once it committed, the expired lease is taken over');
  } finally {
    writer.release();
  }
  t.deepEqual((await db.pool.query(`SELECT by FROM "${db.schema}".fenced_writes`)).rows, [{ by: 'a' }]);
});

test('a statement fences itself with lease_held(name, epoch): the old holder writes nothing', async (t) => {
  await db.pool.query(`CREATE TABLE "${db.schema}".fenced_rows (epoch bigint NOT NULL)`);
  const write = async (epoch: number) =>
    (
      await db.pool.query(
        `INSERT INTO "${db.schema}".fenced_rows SELECT $1::bigint WHERE "${db.schema}".lease_held('fence-sql', $1::bigint) RETURNING epoch`,
        [epoch],
      )
    ).rowCount;
  const a = await named.acquire('fence-sql', 'node-a', 60_000);
  t.is(await write(a!.epoch), 1);
  await expireNamed('fence-sql');
  t.is(await write(a!.epoch), 0, 'an expired lease fences its holder even before anyone took over');
  const b = await named.acquire('fence-sql', 'node-b', 60_000);
  t.is(await write(a!.epoch), 0);
  t.is(await write(b!.epoch), 1);
});

test('named lease arguments are checked', async (t) => {
  await t.throwsAsync(named.acquire('', 'node-a', 1000), { instanceOf: ValidationError, message: /name/ });
  await t.throwsAsync(named.holder(''), { instanceOf: ValidationError });
  await t.throwsAsync(named.assertHolder(db.pool, 'x', -1), { instanceOf: ValidationError });
});

test('migration 0011 keeps existing partition leases and their epochs, under global:<partition>', async (t) => {
  const old = await freshSchema('leases_upgrade');
  try {
    // The schema as a node before 0011 left it, with a lease at epoch 7 and a snapshot saved at it.
    await old.pool.query(
      `CREATE TABLE "${old.schema}".migrations (version integer PRIMARY KEY, name text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())`,
    );
    for (const m of loadMigrations(old.schema).filter((m) => m.version < 11)) {
      await old.pool.query(m.sql);
      await old.pool.query(`INSERT INTO "${old.schema}".migrations (version, name) VALUES ($1, $2)`, [m.version, m.name]);
    }
    await old.pool.query(
      `INSERT INTO "${old.schema}".partition_leases (partition, holder, epoch, expires_at) VALUES ('billing', 'node-a', 7, now() + interval '1 minute')`,
    );
    await old.pool.query(`INSERT INTO "${old.schema}".global_state (partition, epoch, snapshot) VALUES ('billing', 7, '{"n": 1}')`);
    t.true((await migrate(old.pool, old.schema)).includes(11));
    const upgraded = new PartitionLeases(old.pool, old.schema);
    t.like(await upgraded.holder('billing'), { holder: 'node-a', epoch: 7, live: true });
    t.true(await upgraded.renew('billing', 'node-a', 7, 60_000), 'the holder keeps its lease across the upgrade');
    const oldState = new PostgresGlobalState(old.pool, old.schema);
    await oldState.save('billing', { n: 2 }, 7);
    await t.throwsAsync(oldState.save('billing', { n: 0 }, 6), { instanceOf: StaleEpochError });
    await old.pool.query(`UPDATE "${old.schema}".leases SET expires_at = now() - interval '1 second'`);
    t.is((await upgraded.acquire('billing', 'node-b', 60_000))?.epoch, 8, 'the epoch carries on from the old row');
    await t.throwsAsync(oldState.save('billing', { n: 3 }, 7), { instanceOf: StaleEpochError, message: /epoch 8 has taken over/ });
  } finally {
    await old.drop();
  }
});
