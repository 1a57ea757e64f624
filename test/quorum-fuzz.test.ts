/**
 * A node keeps processing while 10,000 random and mutated messages land on every subject of its
 * cluster (`partita.<cluster>.>`): undecodable bytes, envelopes of unknown kinds, known kinds with
 * garbage payloads, requests expecting replies. The bus drops and counts what it cannot decode;
 * the quorum member drops payloads of the wrong shape; no engine crashes, nothing stops.
 */
import test from 'ava';
import { randomBytes } from 'node:crypto';
import { connect as natsConnect } from '@nats-io/transport-node';
import { encode, pack } from '@partita/core';
import { defineJob, startNode } from '@partita/runtime';
import { subjects } from '@partita/nats';
import { freshSchema, natsUrl, tempDataDir } from './helpers/index.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** A small deterministic PRNG, so a failure can be replayed from the logged seed. */
function prng(seed: number) {
  let s = seed >>> 0 || 1;
  const next = () => {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    return (s >>> 0) / 0x1_0000_0000;
  };
  return {
    next,
    int: (n: number) => Math.floor(next() * n),
    pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!,
  };
}

function randomValue(r: ReturnType<typeof prng>, depth = 0): unknown {
  switch (r.int(depth > 2 ? 6 : 9)) {
    case 0:
      return null;
    case 1:
      return r.int(2) === 0;
    case 2:
      return r.int(2000) - 1000;
    case 3:
      return r.next() * 1e9;
    case 4:
      return randomBytes(r.int(12)).toString('base64');
    case 5:
      return r.pick(['', 'p', 'default', 'billing', '*', '>', 'a.b', '-1', 'x'.repeat(300)]);
    case 6:
      return Array.from({ length: r.int(4) }, () => randomValue(r, depth + 1));
    case 7: {
      const o: Record<string, unknown> = {};
      for (const k of ['ids', 'partition', 'paused', 'throttles', 'ms', 'queue', 'node', 'epoch', 'seq', 'id', 'kind', 'x']) {
        if (r.int(3) === 0) o[k] = randomValue(r, depth + 1);
      }
      return o;
    }
    default:
      return {
        partition: r.pick(['p', 'q', 5]),
        paused: [randomValue(r, depth + 1)],
        throttles: [{ ms: randomValue(r, depth + 1), queue: randomValue(r, depth + 1) }],
      };
  }
}

test('a node survives 10,000 random messages on partita.<cluster>.> while processing jobs', async (t) => {
  const db = await freshSchema('qfuzz');
  const cluster = `fz${randomBytes(3).toString('hex')}`;
  const url = await natsUrl();
  const node = await startNode({
    dataDir: tempDataDir('fuzz'),
    postgres: db.url,
    schema: db.schema,
    nats: url,
    cluster,
    nodeId: 'fuzzed',
    partitions: { p: { queues: { default: { concurrency: 8 } } } },
    engine: { pollMs: 200 },
    log: { level: 'silent' },
    jobs: [defineJob({ type: 'work', perform: async (n: number) => (await sleep(1), n * 2) })],
  });
  const nc = await natsConnect({ servers: url });
  t.teardown(async () => {
    await nc.close().catch(() => undefined);
    await node.stop({ graceMs: 500 });
    await db.drop();
  });

  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 1_000_000);
  t.log(`seed ${seed} (FUZZ_SEED=${seed} replays it)`);
  const r = prng(seed);
  const base = `partita.${cluster}`;
  const known = [
    subjects.wake(cluster, 'p', 'default'),
    subjects.wake(cluster, 'p', 'nope'),
    subjects.event(cluster, 'p', 'default', 'work', 'completed'),
    subjects.rollCall(cluster),
    subjects.throttle(cluster),
    subjects.pause(cluster, 'p'),
    subjects.cancel(cluster, 'p'),
    subjects.global(cluster, 'p'),
    subjects.node(cluster, 'fuzzed'),
    subjects.idle(cluster, 'p', 'default'),
    subjects.quorum(cluster, 'x'),
  ];
  // Global's request kinds too, except pause/resume/throttle: a well-formed one is a legitimate command.
  const globalOps = [
    'cancelJob',
    'isCancelled',
    'queueKeyTaken',
    'releaseQueueKey',
    'executionKeyHeld',
    'releaseExecutionKey',
    'pausedQueues',
    'control',
    'snapshot',
  ];
  const kinds = [
    'wake',
    'control',
    'cancel',
    'rollcall',
    'quorum',
    'handoff',
    'idle',
    'job.completed',
    '$reply',
    '$error',
    'nonsense',
    ...globalOps,
  ];
  // Structure-aware: well-formed control/cancel envelopes whose payloads are subtly wrong.
  const nearlyControl = () =>
    encode('control', {
      partition: r.pick(['p', 'p', 'q', 5]),
      paused: r.pick([[], [7], 'default', null, [null]]),
      throttles: r.pick([
        [],
        [null],
        [5],
        [{ ms: 'soon' }],
        [{ ms: Number.NaN }],
        [{ ms: 1.5 }],
        [{ ms: -7 }],
        [{ ms: 10, queue: 3 }],
        [{}],
        null,
        'x',
      ]),
      ...(r.int(2) ? { epoch: r.pick([1, 'x', null]) } : {}),
    });
  const nearlyCancel = () =>
    encode('cancel', { ids: r.pick([null, 'x', [1, 2], [null], [{}], Array.from({ length: 3 }, () => randomBytes(8).toString('hex'))]) });
  let targeted: string | undefined;
  const message = (): Uint8Array => {
    targeted = undefined;
    switch (r.int(8)) {
      case 6:
        return ((targeted = subjects.pause(cluster, 'p')), nearlyControl());
      case 7:
        return ((targeted = subjects.cancel(cluster, 'p')), nearlyCancel());
      case 0:
        return randomBytes(r.int(64));
      case 1: {
        const ok = encode(r.pick(kinds), randomValue(r));
        const cut = ok.slice(0, Math.max(1, r.int(ok.length)));
        return cut;
      }
      case 2: {
        const bytes = encode(r.pick(kinds), randomValue(r));
        for (let i = 0; i < 3; i++) bytes[r.int(bytes.length)] = r.int(256);
        return bytes;
      }
      case 3:
        return pack({ v: r.pick([1, 2, 99, -1, 'x']), k: r.pick(kinds), d: randomValue(r) });
      default:
        return encode(r.pick(kinds), randomValue(r));
    }
  };
  const subject = () => {
    if (targeted) return targeted;
    const roll = r.int(4);
    if (roll === 0)
      return `${base}.${Array.from({ length: 1 + r.int(5) }, () => r.pick(['wake', 'event', 'p', 'default', 'x', 'rollcall', 'cancel', 'pause', 'throttle', 'global', 'quorum', 'node'])).join('.')}`;
    return r.pick(known);
  };

  const total = 400;
  const { ids } = await node.client.enqueueMany(
    'p',
    Array.from({ length: total }, (_, i) => ({ type: 'work', payload: i })),
  );
  const before = node.bus.stats();
  const engine = node.system.whereis('engine:p');
  for (let i = 0; i < 10_000; i++) {
    const bytes = message();
    nc.publish(subject(), bytes, r.int(10) === 0 ? { reply: `_INBOX.fuzz.${i}` } : undefined);
    if (i % 500 === 0) await nc.flush();
  }
  await nc.flush();
  // More work after the storm, and the first batch: everything completes.
  const more = await node.client.enqueueMany(
    'p',
    Array.from({ length: 100 }, (_, i) => ({ type: 'work', payload: total + i })),
  );
  const all = [...ids, ...more.ids];
  const results = await Promise.all(all.map((id) => node.client.result(id, { timeoutMs: 60_000 })));
  t.deepEqual(
    results,
    all.map((_, i) => i * 2),
  );

  const after = node.bus.stats();
  const dropped = (s: typeof after) => s.dropped.malformed + s.dropped.version + s.dropped.unknownKind;
  t.log(
    `bus: received +${after.received - before.received}, dropped +${dropped(after) - dropped(before)}, handler errors +${after.handlerErrors - before.handlerErrors}`,
  );
  t.true(dropped(after) - dropped(before) > 1000, 'the bus dropped and counted the garbage');
  // The node still answers and its engine is in its normal state: no garbage control was applied.
  const [me] = await node.client.rollCall({ delayMs: 10_000, max: 1 });
  t.is(me?.id, 'fuzzed');
  const [stats] = await node.stats();
  t.deepEqual(
    { paused: stats!.paused, throttleMs: stats!.throttleMs, draining: stats!.draining },
    { paused: [], throttleMs: 0, draining: false },
  );
  t.true(node.bus.connected);
  t.is(node.system.whereis('engine:p'), engine, 'the engine never crashed (a restart would abort its running jobs)');
});
