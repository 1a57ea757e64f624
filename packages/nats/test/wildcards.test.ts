/**
 * Wildcard semantics checked against the real nats-server, exhaustively over a small alphabet:
 * every pattern of up to 4 tokens from {a, b, *, >} against every subject of up to 4 tokens from
 * {a, b}. The expected answer comes from the server itself; matchSubject and both buses must agree.
 */
import test from 'ava';
import { connect } from '@nats-io/transport-node';
import { natsUrl } from '../../../test/helpers/index.js';
import { InProcessBus, connectNatsBus, isValidPattern, matchSubject, type BusBase } from '../src/index.js';
import { eventually, randomCluster } from './support.js';

function words(alphabet: string[], maxLen: number): string[][] {
  const out: string[][] = [];
  let layer: string[][] = [[]];
  for (let len = 1; len <= maxLen; len++) {
    layer = layer.flatMap((w) => alphabet.map((a) => [...w, a]));
    out.push(...layer);
  }
  return out;
}

const SUBJECTS = words(['a', 'b'], 4).map((w) => w.join('.'));
const PATTERNS = words(['a', 'b', '*', '>'], 4)
  .map((w) => w.join('.'))
  .filter(isValidPattern);

type Truth = Map<string, Set<string>>;

async function serverTruth(prefix: string): Promise<Truth> {
  const nc = await connect({ servers: await natsUrl() });
  try {
    const truth: Truth = new Map(PATTERNS.map((p) => [p, new Set<string>()]));
    let total = 0;
    for (const p of PATTERNS) {
      nc.subscribe(`${prefix}.${p}`, {
        callback: (_err, msg) => {
          truth.get(p)!.add(msg.subject.slice(prefix.length + 1));
          total++;
        },
      });
    }
    await nc.flush();
    for (const s of SUBJECTS) nc.publish(`${prefix}.${s}`);
    await nc.flush();
    // count what the server must deliver by brute force over its answers: wait until stable
    let last = -1;
    await eventually(
      async () => {
        const stable = total === last;
        last = total;
        return stable && total > 0;
      },
      'server deliveries to settle',
      5000,
      100,
    );
    return truth;
  } finally {
    await nc.close();
  }
}

async function busTruth(bus: BusBase, pub: BusBase, prefix: string): Promise<Truth> {
  const truth: Truth = new Map(PATTERNS.map((p) => [p, new Set<string>()]));
  for (const p of PATTERNS) {
    await bus.subscribe(`${prefix}.${p}`, (_d, info) => void truth.get(p)!.add(info.subject.slice(prefix.length + 1)));
  }
  let fence = false;
  await bus.subscribe(`${prefix}-fence`, () => void (fence = true));
  for (const s of SUBJECTS) pub.publish(`${prefix}.${s}`, 'w', null);
  pub.publish(`${prefix}-fence`, 'f', null);
  await eventually(() => fence, 'the fence', 5000);
  return truth;
}

function compare(
  t: import('ava').ExecutionContext,
  expected: Truth,
  actual: Truth | ((p: string, s: string) => boolean),
  label: string,
): void {
  let mismatches = 0;
  for (const p of PATTERNS) {
    for (const s of SUBJECTS) {
      const want = expected.get(p)!.has(s);
      const got = typeof actual === 'function' ? actual(p, s) : actual.get(p)!.has(s);
      if (want !== got && mismatches++ < 10) t.log(`${label}: pattern ${p} subject ${s}: nats says ${want}, got ${got}`);
    }
  }
  t.is(mismatches, 0, `${label} disagrees with nats-server`);
}

test(`wildcards: ${PATTERNS.length} patterns × ${SUBJECTS.length} subjects — matchSubject, InProcessBus and NatsBus agree with nats-server`, async (t) => {
  t.timeout(30_000);
  const cluster = randomCluster();
  const prefix = `partita.${cluster}.wc`;
  const truth = await serverTruth(prefix);
  const matches = [...truth.values()].reduce((n, s) => n + s.size, 0);
  t.true(matches > 500, `the server matched ${matches} pairs`);

  compare(t, truth, (p, s) => matchSubject(p, s), 'matchSubject');

  const inproc = new InProcessBus({ cluster });
  t.teardown(() => inproc.close());
  compare(t, truth, await busTruth(inproc, inproc, `${prefix}i`), 'InProcessBus');

  const url = await natsUrl();
  const [sub, pub] = [await connectNatsBus({ servers: url, cluster }), await connectNatsBus({ servers: url, cluster })];
  t.teardown(() => Promise.all([sub.close(), pub.close()]).then(() => undefined));
  compare(t, truth, await busTruth(sub, pub, `${prefix}n`), 'NatsBus');
});
