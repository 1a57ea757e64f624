import { performance } from 'node:perf_hooks';
import { ratio, sleep, summarize } from '../lib/stats.js';
import { warmUp } from './drain.js';
import type { LatencyChannel } from '../systems/types.js';
import type { Workload, WorkloadContext } from './types.js';

const PUSH_WARMUP = 20;
/** Targets for Partita's separate client over NATS (a real deployment: enqueue in one process, work in another). */
export const NATS_CLIENT_P50_MS = 2;
export const NATS_CLIENT_P99_MS = 10;
const POLL_WARMUP = 2;

interface ChannelResult {
  channel: string;
  wake: 'push' | 'poll';
  note: string;
  samples: number;
  latency: ReturnType<typeof summarize>;
  enqueueCall: ReturnType<typeof summarize>;
  truncated: boolean;
}

/** Gap before each enqueue: a short random pause for push channels (the worker is idle again), a random phase of the poll interval for polling ones. */
function gapMs(channel: LatencyChannel, pollMs: number): number {
  return channel.wake === 'push' ? 10 + Math.random() * 20 : Math.random() * pollMs;
}

async function sampleChannel(ctx: WorkloadContext, channel: LatencyChannel, seqBase: number): Promise<ChannelResult> {
  const { options, probe } = ctx;
  const perSampleTimeout = Math.max(5_000, 5 * options.pollMs);
  const warm = channel.wake === 'push' ? PUSH_WARMUP : POLL_WARMUP;
  const budgetEnd = performance.now() + options.latencyBudgetS * 1000;
  const latencies: number[] = [];
  const calls: number[] = [];
  let truncated = false;
  for (let i = 0; i < warm + options.samples; i++) {
    if (i >= warm && performance.now() > budgetEnd) {
      truncated = true;
      break;
    }
    await sleep(gapMs(channel, options.pollMs));
    const seq = seqBase + i;
    const started = probe.expect(seq, perSampleTimeout);
    const t0 = performance.now();
    await channel.enqueue({ payload: { seq } });
    const t1 = performance.now();
    const at = await started;
    if (at === undefined) throw new Error(`${channel.name}: job ${i} did not start within ${perSampleTimeout} ms`);
    if (i >= warm) {
      latencies.push(at - t0);
      calls.push(t1 - t0);
    }
  }
  return {
    channel: channel.name,
    wake: channel.wake,
    note: channel.note,
    samples: latencies.length,
    latency: summarize(latencies),
    enqueueCall: summarize(calls),
    truncated,
  };
}

export const latency: Workload = {
  name: 'latency',
  description: 'one idle worker (concurrency 1): sequential enqueue → handler-start samples, p50/p99',
  async run(ctx) {
    const byChannel = new Map<string, ChannelResult>();
    for (const factory of ctx.systems) {
      const out = await ctx.withSystem(factory, 'latency', async (system) => {
        await warmUp(ctx, system, ctx.options.warmup > 0 ? Math.min(ctx.options.warmup, 200) : 0, ctx.options.batch, 1);
        await system.startWorkers({ concurrency: 1 });
        try {
          const results: ChannelResult[] = [];
          let seqBase = 0;
          for (const channel of system.latencyChannels()) {
            ctx.log(`latency: ${system.name} via ${channel.name} (${channel.wake})…`);
            results.push(await sampleChannel(ctx, channel, seqBase));
            seqBase += 1_000_000;
          }
          return { results, info: system.info() };
        } finally {
          await system.stopWorkers();
        }
      });
      if (!out) continue;
      for (const r of out.results) {
        byChannel.set(`${factory.name}/${r.channel}`, r);
        ctx.emit({
          workload: 'latency',
          system: factory.name,
          channel: r.channel,
          wake: r.wake,
          samples: r.samples,
          p50Ms: r.latency.p50,
          p99Ms: r.latency.p99,
          p90Ms: r.latency.p90,
          meanMs: r.latency.mean,
          minMs: r.latency.min,
          maxMs: r.latency.max,
          enqueueCallP50Ms: r.enqueueCall.p50,
          ...(r.truncated ? { truncated: `latency budget of ${ctx.options.latencyBudgetS} s reached` } : {}),
          note: r.note,
          info: out.info,
        });
      }
    }
    const pc = byChannel.get('partita/client');
    if (ctx.systems.some((s) => s.name === 'partita')) {
      const targets = [
        { name: `latency: partita separate client (NATS) p50 ≤ ${NATS_CLIENT_P50_MS} ms`, value: pc?.latency.p50, max: NATS_CLIENT_P50_MS },
        { name: `latency: partita separate client (NATS) p99 ≤ ${NATS_CLIENT_P99_MS} ms`, value: pc?.latency.p99, max: NATS_CLIENT_P99_MS },
      ];
      for (const t of targets) {
        if (!pc) ctx.target(t.name, false, 'no result (see the error line)');
        else if (pc.wake !== 'push')
          ctx.target(t.name, null, `not measured: Partita ran without NATS (--nats ${ctx.options.nats}); polling gave ${t.value} ms`);
        else ctx.target(t.name, t.value! <= t.max, `${t.value} ms over ${pc.samples} samples${pc.truncated ? ' (budget reached)' : ''}`);
      }
    }
    const g = [...byChannel.entries()].find(([k]) => k.startsWith('graphile/'))?.[1];
    if (g) {
      const r: Record<string, { p50: number | null; p99: number | null }> = {};
      for (const [key, p] of byChannel) {
        if (!key.startsWith('partita/')) continue;
        r[p.channel] = { p50: ratio(p.latency.p50, g.latency.p50), p99: ratio(p.latency.p99, g.latency.p99) };
      }
      if (Object.keys(r).length)
        ctx.emit({ workload: 'latency', ratio: r, versus: `graphile/${g.channel}`, note: 'partita / graphile; below 1 is faster' });
    }
  },
};
