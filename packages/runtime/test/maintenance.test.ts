import test from 'ava';
import { Leases } from '@partita/postgres';
import { cluster, sleep, until } from './helpers.js';

const oneQueue = { p: { queues: { default: { concurrency: 2 } } } };

test('history maintenance runs on the one node holding the maintenance lease; when it stops, another node takes it over', async (t) => {
  const c = await cluster('maintenance');
  try {
    const leases = new Leases(c.db.pool, c.db.schema);
    const a = await c.start({ partitions: oneQueue, nodeId: 'a' });
    const b = await c.start({ partitions: oneQueue, nodeId: 'b' });
    const futurePartition = async () =>
      (
        await c.db.pool.query(
          `SELECT count(*)::int AS n FROM pg_tables WHERE schemaname = $1 AND tablename = 'jobs_history_' || to_char(current_date + 2, 'YYYYMMDD')`,
          [c.db.schema],
        )
      ).rows[0].n === 1;
    await until('the history partitions are created ahead', futurePartition, 10_000);
    const first = (await leases.holder('maintenance'))!.holder;
    t.true(first === 'a' || first === 'b');
    // Several seat rounds of both nodes later, still one maintainer.
    await sleep(500);
    const maintainers = () => [a, b].filter((n) => n.system.whereis('maintenance')?.alive).map((n) => n.id);
    t.deepEqual(maintainers(), [first], 'only the lease holder runs the maintenance');
    t.like(await leases.holder('maintenance'), { holder: first, epoch: 1, live: true });

    // Dropped behind the leader's back: only a maintenance round of the next leader brings it back.
    await c.db.pool.query(
      `DROP TABLE "${c.db.schema}".jobs_history_${await c.db.pool.query(`SELECT to_char(current_date + 2, 'YYYYMMDD') AS d`).then((r) => r.rows[0].d)}`,
    );
    t.false(await futurePartition());
    const [leader, other] = first === 'a' ? [a, b] : [b, a];
    await leader.stop({ graceMs: 200 });
    t.like(await leases.holder('maintenance'), { holder: first, released: true }, 'a stopping node hands the lease back');
    // The other node's seat ticks every 5 s (ttl 30 s): the released lease is taken on its next round.
    await until('the other node maintains', () => other.system.whereis('maintenance')?.alive === true, 10_000);
    t.like(await leases.holder('maintenance'), { holder: other.id, epoch: 2, live: true });
    await until('the dropped partition is back', futurePartition, 20_000);
  } finally {
    await c.close();
  }
});
