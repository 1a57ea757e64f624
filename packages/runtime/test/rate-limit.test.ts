import test from 'ava';
import { ConfigError } from '@partita/core';
import { defineJob, startNode, type PartitaNode } from '@partita/runtime';
import { cluster, until } from './helpers.js';

const LIMIT = 10;
const PERIOD_MS = 1000;
/**
 * Two clocks of a start, two allowances. Postgres records each attempt's start (started_at) in the
 * claim that takes its token, a few ms at most after the take: counted on those, any window of the
 * period less this slack holds no more than the limit.
 */
const RECORDED_SLACK_MS = 50;
/**
 * A job's perform starts after the claim commits and the engine hands it to a worker, a delay that
 * varies from claim to claim on a busy machine (2 cores, many test processes): counted on perform
 * starts, the window is shortened by this much more. Both only make the check more lenient, and
 * not by enough to hide a missing limit: 50 jobs started without one land within a few hundred ms,
 * and twice the limit puts 20 in such a window.
 */
const PERFORM_SLACK_MS = 500;

/** Most starts in any window of `windowMs` (ms timestamps). */
function busiestWindow(starts: number[], windowMs: number): { count: number; from: number } {
  const sorted = [...starts].sort((a, b) => a - b);
  let best = { count: 0, from: 0 };
  let lo = 0;
  for (let hi = 0; hi < sorted.length; hi++) {
    while (sorted[hi]! - sorted[lo]! >= windowMs) lo++;
    if (hi - lo + 1 > best.count) best = { count: hi - lo + 1, from: sorted[lo]! };
  }
  return best;
}

function recorder() {
  const starts: { at: number; node: string; key?: string }[] = [];
  const job = (node: string) =>
    defineJob<{ customer?: string }>({
      type: 'tick',
      queue: 'limited',
      perform(payload) {
        starts.push({ at: Date.now(), node, ...(payload?.customer ? { key: payload.customer } : {}) });
      },
    });
  return { starts, job };
}

const limitedQueue = (concurrency: number, rateLimit: { limit: number; periodMs: number; key?: string }) => ({
  p: { queues: { limited: { concurrency, rateLimit }, other: { concurrency: 4 } } },
});

async function finished(c: Awaited<ReturnType<typeof cluster>>, n: number): Promise<void> {
  await until(
    `${n} jobs finished`,
    async () => {
      const { rows } = await c.db.pool.query(`SELECT count(*)::int AS n FROM "${c.db.schema}".jobs_history WHERE state = 'completed'`);
      return rows[0].n >= n;
    },
    30_000,
    50,
  );
}

/**
 * Checks that no window of the period (less the slack) has more than `limit` starts, counted both
 * on Postgres's record of the attempts and on the perform calls; per key when `key` is given.
 */
async function assertWithinLimit(
  t: import('ava').ExecutionContext,
  c: Awaited<ReturnType<typeof cluster>>,
  starts: { at: number; key?: string }[],
  limit: number,
  key?: string,
): Promise<void> {
  const { rows } = await c.db.pool.query(
    `SELECT extract(epoch FROM started_at) * 1000 AS at, payload->>'customer' AS key FROM "${c.db.schema}".jobs_history WHERE queue = 'limited' AND state = 'completed'`,
  );
  const recorded = rows.filter((r) => key === undefined || (r.key ?? '') === key).map((r) => Number(r.at));
  const performed = starts.filter((s) => key === undefined || (s.key ?? '') === key).map((s) => s.at);
  const name = key === undefined ? '' : `key "${key}": `;
  for (const [what, at, slack] of [
    ['recorded', recorded, RECORDED_SLACK_MS],
    ['perform', performed, PERFORM_SLACK_MS],
  ] as const) {
    const busiest = busiestWindow(at, PERIOD_MS - slack);
    const t0 = Math.min(...at);
    const detail =
      busiest.count > limit
        ? `; starts (ms): ${[...at]
            .sort((x, y) => x - y)
            .map((x) => Math.round(x - t0))
            .join(' ')}`
        : '';
    t.log(`${name}${at.length} ${what} starts, at most ${busiest.count} in ${PERIOD_MS - slack} ms${detail}`);
    t.true(busiest.count <= limit, `${name}${busiest.count} ${what} starts within ${PERIOD_MS - slack} ms`);
  }
}

test('limit 10 per second over two nodes: 50 quick jobs never start more than 10 in any second', async (t) => {
  const c = await cluster('rate_queue');
  try {
    const { starts, job } = recorder();
    // Each node may run 5 at once: reaching 10 a second takes both, so only a limit counted over
    // the cluster holds (one counted per node would let 20 a second through).
    const a = await c.start({
      partitions: limitedQueue(5, { limit: LIMIT, periodMs: PERIOD_MS }),
      jobs: [job('a')],
      nodeId: 'a',
      engine: { pollMs: 50 },
    });
    await c.start({
      partitions: limitedQueue(5, { limit: LIMIT, periodMs: PERIOD_MS }),
      jobs: [job('b')],
      nodeId: 'b',
      engine: { pollMs: 50 },
    });
    await a.client.enqueueMany(
      'p',
      Array.from({ length: 50 }, () => ({ type: 'tick', queue: 'limited' })),
    );
    await finished(c, 50);

    t.is(starts.length, 50);
    t.log(`by node: ${['a', 'b'].map((n) => `${n} ${starts.filter((s) => s.node === n).length}`).join(', ')}`);
    await assertWithinLimit(t, c, starts, LIMIT);
    // 50 jobs at 10 a second: the last starts at least four periods after the first.
    const span = Math.max(...starts.map((s) => s.at)) - Math.min(...starts.map((s) => s.at));
    t.true(span >= 4 * PERIOD_MS - PERFORM_SLACK_MS, `50 jobs started within ${span} ms`);
    // And the limit is a rate, not a stall: five periods and some slack see them all started.
    t.true(span <= 4 * PERIOD_MS + 3000, `50 jobs took ${span} ms to start`);
    t.true(starts.some((s) => s.node === 'a') && starts.some((s) => s.node === 'b'), 'both nodes ran jobs');

    const stats = await a.stats();
    const limited = stats[0]!.queues.limited!.rateLimit!;
    t.like(limited, { limit: LIMIT, periodMs: PERIOD_MS });
    t.is(typeof limited.tokensLeft, 'number');
    const members = await a.client.rollCall();
    const profile = members.find((m) => m.id === 'a')!.queues.find((q) => q.queue === 'limited')!;
    t.like(profile.rateLimit, { limit: LIMIT, periodMs: PERIOD_MS });
    t.is(members.find((m) => m.id === 'a')!.queues.find((q) => q.queue === 'other')!.rateLimit, undefined);
    const metrics = await a.metrics.scrape();
    t.regex(metrics, /partita_rate_limit_tokens\{[^}]*queue="limited"[^}]*\} \d+/);
    t.regex(metrics, /partita_rate_limit_held_jobs\{[^}]*queue="limited"[^}]*\} \d+/);
  } finally {
    await c.close();
  }
});

test("a rate-limited queue does not slow the partition's other queues", async (t) => {
  const c = await cluster('rate_other');
  try {
    const { starts, job } = recorder();
    const other = defineJob({ type: 'other', queue: 'other', perform: () => void starts.push({ at: Date.now(), node: 'other' }) });
    // The jobs are queued before a node serves the queue, so its first take sees them all due.
    const declares = await c.start({
      partitions: { p: { queues: { limited: { concurrency: 0 }, other: { concurrency: 0 } } } },
      jobs: [],
      nodeId: 'declares',
    });
    await declares.client.enqueueMany(
      'p',
      Array.from({ length: 10 }, () => ({ type: 'tick', queue: 'limited', allowUnknownType: true })),
    );
    const a = await c.start({
      partitions: limitedQueue(5, { limit: 2, periodMs: 60_000 }),
      jobs: [job('a'), other],
      nodeId: 'a',
      engine: { pollMs: 50 },
    });
    await until('the limit used up', async () => starts.filter((s) => s.node === 'a').length === 2);
    const enqueuedAt = Date.now();
    await a.client.enqueueMany(
      'p',
      Array.from({ length: 20 }, () => ({ type: 'other', queue: 'other' })),
    );
    await until('the other queue ran', async () => starts.filter((s) => s.node === 'other').length === 20, 5000, 10);
    t.log(`other queue: 20 jobs in ${Date.now() - enqueuedAt} ms`);
    t.is(starts.filter((s) => s.node === 'a').length, 2, 'the limited queue started 2 in its minute');
    const [stat] = await a.stats();
    t.like(stat!.queues.limited!.rateLimit, { limit: 2, tokensLeft: 0 });
    t.true(stat!.queues.limited!.rateLimit!.held > 0, 'the jobs the limit holds back are counted');
  } finally {
    await c.close();
  }
});

test('the limit holds across a Global leader change: the leader node stops mid-run', async (t) => {
  const c = await cluster('rate_failover');
  try {
    const { starts, job } = recorder();
    const nodes: Record<string, PartitaNode> = {};
    // 5 slots each: both nodes run jobs before the stop.
    for (const id of ['a', 'b']) {
      nodes[id] = await c.start({
        partitions: limitedQueue(5, { limit: LIMIT, periodMs: PERIOD_MS }),
        jobs: [job(id)],
        nodeId: id,
        engine: { pollMs: 50 },
      });
    }
    const leaderOf = async () =>
      (await c.db.pool.query(`SELECT holder FROM "${c.db.schema}".leases WHERE name = 'global:p'`)).rows[0]?.holder as string | undefined;
    const leader = await until('a leader', leaderOf);
    const follower = leader === 'a' ? 'b' : 'a';
    await nodes[follower]!.client.enqueueMany(
      'p',
      Array.from({ length: 40 }, () => ({ type: 'tick', queue: 'limited' })),
    );
    await until('a window and a half under way', async () => starts.length >= 15, 10_000, 10);
    await nodes[leader]!.stop({ graceMs: 1000 });
    const beforeStop = starts.length;
    await until('the other node leads', async () => (await leaderOf()) === follower, 10_000, 50);
    await finished(c, 40);

    t.log(`leader ${leader} stopped after ${beforeStop} starts (${starts.filter((s) => s.node === leader).length} of them on it)`);
    t.true(starts.filter((s) => s.node === leader).length > 0, 'the leader ran jobs before it stopped');
    await assertWithinLimit(t, c, starts, LIMIT);
    t.is(starts.length, 40);
  } finally {
    await c.close();
  }
});

test("limited per key: a customer at its limit waits, another customer's jobs start at once, each within its own limit", async (t) => {
  const c = await cluster('rate_key');
  try {
    const { starts, job } = recorder();
    const perKey = { limit: 3, periodMs: PERIOD_MS, key: 'customer' };
    const a = await c.start({ partitions: limitedQueue(4, perKey), jobs: [job('a')], nodeId: 'a', engine: { pollMs: 50 } });
    await c.start({ partitions: limitedQueue(4, perKey), jobs: [job('b')], nodeId: 'b', engine: { pollMs: 50 } });
    // Customer A's backlog is first in claim order; B's jobs come after it, and jobs with no
    // customer share one bucket of their own.
    await a.client.enqueueMany(
      'p',
      Array.from({ length: 12 }, () => ({ type: 'tick', queue: 'limited', payload: { customer: 'A' } })),
    );
    await until('A at its limit', async () => starts.filter((s) => s.key === 'A').length >= 3, 5000, 5);
    const enqueuedAt = Date.now();
    await a.client.enqueueMany('p', [
      ...Array.from({ length: 3 }, () => ({ type: 'tick', queue: 'limited', payload: { customer: 'B' } })),
      ...Array.from({ length: 4 }, () => ({ type: 'tick', queue: 'limited', payload: {} })),
    ]);
    await until('B started', async () => starts.filter((s) => s.key === 'B').length >= 3, 5000, 5);
    const bTook = Date.now() - enqueuedAt;
    await finished(c, 19);

    const byKey = (key: string | undefined) => starts.filter((s) => s.key === key).map((s) => s.at);
    for (const key of ['A', 'B', '']) await assertWithinLimit(t, c, starts, 3, key);
    t.log(`B's 3 jobs started ${bTook} ms after they were enqueued, behind A's backlog`);
    // A next gets tokens a period after its first three: B must not wait for that.
    t.true(bTook < 800, `B waited ${bTook} ms`);
    // A's 12 jobs at 3 a second: the last starts at least three periods after the first.
    const a12 = byKey('A');
    t.true(Math.max(...a12) - Math.min(...a12) >= 3 * PERIOD_MS - PERFORM_SLACK_MS, 'A was held to its limit');
    const [stat] = await a.stats();
    t.like(stat!.queues.limited!.rateLimit, { limit: 3, key: 'customer' });
    const buckets = await c.db.pool.query(`SELECT key FROM "${c.db.schema}".rate_buckets WHERE queue = 'limited' ORDER BY key`);
    t.deepEqual(
      buckets.rows.map((r) => r.key),
      ['', 'A', 'B'],
    );
  } finally {
    await c.close();
  }
});

test('startNode refuses a bad rate limit before it connects, naming the key', async (t) => {
  const err = await t.throwsAsync(
    startNode({
      postgres: 'postgres://127.0.0.1:1/none',
      partitions: { p: { queues: { q: { concurrency: 2, rateLimit: { limit: 10, periodMs: 0, key: 'customer id' } } } } },
    }),
    { instanceOf: ConfigError },
  );
  t.deepEqual(
    (err as ConfigError).problems.map((p) => p.path),
    ['partitions.p.queues.q.rateLimit.periodMs', 'partitions.p.queues.q.rateLimit.key'],
  );
  t.regex(err!.message, /periodMs: expected an integer from 10 to 86400000 ms/);
});
