/**
 * 10,000 random and mutated messages at a subscribed subject: nothing throws, nothing crashes,
 * the bus still delivers, and the counters add up.
 */
import test from 'ava';
import fc from 'fast-check';
import { connect } from '@nats-io/transport-node';
import { WIRE_VERSION, encode, pack } from '@partita/core';
import { natsUrl } from '../../../test/helpers/index.js';
import { InProcessBus, connectNatsBus, subjects, type BusBase } from '../src/index.js';
import { captureLogger, eventually, inboundDrops, randomCluster } from './support.js';

const TOTAL = 10_000;
const MAX_BYTES = 900 * 1024; // under the 1 MiB NATS max_payload

/** Small seeded PRNG (mulberry32) so a failure can be reproduced with the printed seed. */
function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function corpus(seed: number): Uint8Array[] {
  const r = rng(seed);
  const int = (n: number) => Math.floor(r() * n);
  const bytes = (n: number) => {
    const b = new Uint8Array(n);
    for (let i = 0; i < n; i++) b[i] = int(256);
    return b;
  };
  // Valid envelopes to mutate, with structured data from fast-check.
  const datas = fc.sample(fc.anything({ maxDepth: 4, withDate: true, withMap: false, withSet: false, withTypedArray: true }), {
    numRuns: 200,
    seed,
  });
  // Plain Uint8Array copies: msgpackr returns Node Buffers, whose slice() is a view, not a copy.
  const valid = datas.map((d, i) => {
    try {
      return new Uint8Array(encode(['wake', 'throttle', 'job.completed', 'x'][i % 4]!, d));
    } catch {
      return new Uint8Array(encode('wake', { i }));
    }
  });
  const wrongTypes = fc.sample(
    fc.record({ v: fc.anything({ maxDepth: 2 }), k: fc.anything({ maxDepth: 2 }), d: fc.anything({ maxDepth: 2 }) }, { requiredKeys: [] }),
    { numRuns: 300, seed: seed + 1 },
  );

  const out: Uint8Array[] = [];
  // A few huge or deep ones.
  const deep = new Uint8Array(200_000).fill(0x91); // 200k nested one-element arrays, never terminated
  out.push(deep);
  const deepValid = new Uint8Array(50_001).fill(0x91);
  deepValid[50_000] = 0xc0; // terminated: a legal but absurdly deep array
  out.push(deepValid);
  out.push(pack({ v: WIRE_VERSION, k: 'deep', d: JSON.parse('['.repeat(500) + ']'.repeat(500)) }));
  out.push(
    encode(
      'big',
      Array.from({ length: 100_000 }, (_, i) => i),
    ),
  );
  out.push(encode('big', 'x'.repeat(MAX_BYTES - 100)));
  out.push(encode('big', Object.fromEntries(Array.from({ length: 20_000 }, (_, i) => [`k${i}`, i]))));
  out.push(bytes(MAX_BYTES));
  out.push(new Uint8Array([0xdd, 0xff, 0xff, 0xff, 0xff])); // array32 claiming 4 billion items
  out.push(new Uint8Array([0xdb, 0x7f, 0xff, 0xff, 0xff, 0x41])); // str32 claiming 2 GB
  out.push(new Uint8Array([0xdf, 0xff, 0xff, 0xff, 0xff])); // map32 claiming 4 billion pairs

  while (out.length < TOTAL) {
    const pick = int(8);
    const base = valid[int(valid.length)]!;
    switch (pick) {
      case 0: // random bytes, mostly small
        out.push(bytes(r() < 0.95 ? int(64) : int(8192)));
        break;
      case 1: {
        // truncated valid envelope
        out.push(base.slice(0, int(base.length)));
        break;
      }
      case 2: {
        // bit flips
        const m = base.slice();
        const flips = 1 + int(8);
        for (let i = 0; i < flips && m.length; i++) m[int(m.length)]! ^= 1 << int(8);
        out.push(m);
        break;
      }
      case 3: {
        // wrong types for fields (some of these happen to be valid envelopes)
        try {
          out.push(pack(wrongTypes[int(wrongTypes.length)]));
        } catch {
          out.push(bytes(3));
        }
        break;
      }
      case 4: // version from the future
        out.push(pack({ v: WIRE_VERSION + 1 + int(1000), k: 'wake', d: int(100) }));
        break;
      case 5: {
        // valid envelope with random bytes appended or prepended
        const junk = bytes(1 + int(16));
        const m = new Uint8Array(base.length + junk.length);
        if (r() < 0.5) {
          m.set(base);
          m.set(junk, base.length);
        } else {
          m.set(junk);
          m.set(base, junk.length);
        }
        out.push(m);
        break;
      }
      case 6: // plain msgpack values that are not envelopes
        out.push(pack(datas[int(datas.length)] ?? null));
        break;
      default: // valid envelope as is
        out.push(base);
    }
  }
  return out;
}

async function fuzz(
  t: import('ava').ExecutionContext,
  bus: BusBase,
  send: (subject: string, bytes: Uint8Array) => Promise<void>,
  cluster: string,
  lines: { level: string; fields: Record<string, unknown> }[],
) {
  const seed = Number(process.env.FUZZ_SEED ?? Date.now() % 2 ** 31);
  t.log(`seed ${seed} (FUZZ_SEED=${seed} to reproduce)`);
  const subject = subjects.quorum(cluster, 'fuzz');
  let calls = 0;
  let sentinel = false;
  await bus.subscribe(subject, (d: unknown, info) => {
    calls++;
    if (info.kind === 'sentinel' && (d as { ok?: unknown })?.ok === 'yes') sentinel = true;
  });
  const messages = corpus(seed);
  t.is(messages.length, TOTAL);
  for (const m of messages) await send(subject, m);
  bus.publish(subject, 'sentinel', { ok: 'yes' });
  await eventually(() => sentinel && bus.stats().received >= TOTAL + 1, 'the sentinel after the fuzz messages', 15_000);
  const s = bus.stats();
  t.is(s.received, TOTAL + 1, 'every message arrived');
  t.is(s.received, s.delivered + inboundDrops(bus), 'received = delivered + dropped');
  t.is(calls, s.delivered, 'every delivered message reached the handler once');
  t.true(s.dropped.malformed > TOTAL / 4, `many malformed (${s.dropped.malformed})`);
  t.true(s.dropped.version > 0, `some newer versions (${s.dropped.version})`);
  t.true(s.delivered > TOTAL / 10, `the valid ones delivered (${s.delivered})`);
  t.true(bus.connected);
  const warns = lines.filter((l) => l.level === 'warn');
  t.true(warns.length <= 4, `warnings stay rate-limited (${warns.length})`);
  t.is(lines.filter((l) => l.level === 'error' || l.level === 'fatal').length, 0);
  // and the bus still works both ways afterwards
  await bus.subscribe(subjects.global(cluster, 'after'), (x: number) => x + 1);
  t.is(await bus.request(subjects.global(cluster, 'after'), 'op', 1, { timeoutMs: 2000 }), 2);
}

test('fuzz over real NATS: 10,000 random and mutated messages are counted and dropped, the bus goes on', async (t) => {
  t.timeout(30_000);
  const url = await natsUrl();
  const cluster = randomCluster();
  const { logger, lines } = captureLogger();
  const bus = await connectNatsBus({ servers: url, cluster, logger });
  const raw = await connect({ servers: url });
  t.teardown(async () => {
    await bus.close();
    await raw.close();
  });
  let n = 0;
  await fuzz(
    t,
    bus,
    async (subject, bytes) => {
      raw.publish(subject, bytes);
      if (++n % 500 === 0 || bytes.length > 64 * 1024) await raw.flush();
    },
    cluster,
    lines,
  );
  await raw.flush();
});

test('fuzz in-process: the same corpus through the in-process bus', async (t) => {
  t.timeout(30_000);
  const cluster = randomCluster();
  const { logger, lines } = captureLogger();
  const bus = new InProcessBus({ cluster, logger });
  t.teardown(() => bus.close());
  await fuzz(t, bus, async (subject, bytes) => bus.publishRaw(subject, bytes), cluster, lines);
});
