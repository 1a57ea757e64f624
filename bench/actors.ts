/**
 * Throughput of @partita/actors: one JSON line per measurement.
 *   npx tsx bench/actors.ts
 * Each measurement runs once to warm up (JIT), then once measured. Bounded to a few seconds in total.
 */
import { createSystem, type ActorRef, type ActorSystem } from '@partita/actors';

interface Result {
  bench: 'actors';
  op: string;
  perSecond: number;
  n: number;
  ms: number;
}

function report(op: string, n: number, ms: number): void {
  const line: Result = { bench: 'actors', op, perSecond: Math.round((n / ms) * 1000), n, ms: Math.round(ms) };
  process.stdout.write(JSON.stringify(line) + '\n');
}

async function measure(op: string, n: number, run: (n: number) => Promise<void>): Promise<void> {
  await run(Math.max(1, Math.floor(n / 10)));
  const started = performance.now();
  await run(n);
  report(op, n, performance.now() - started);
}

function counter(): { system: ActorSystem; ref: ActorRef<number, number> } {
  const system = createSystem();
  let total = 0;
  const ref = system.spawn({
    handle(x: number) {
      total += x;
      return total;
    },
  });
  return { system, ref };
}

async function casts(n: number): Promise<void> {
  const { system, ref } = counter();
  for (let i = 0; i < n; i++) ref.cast(1);
  // A call queued behind the casts resolves once every cast has been handled.
  const total = await ref.call(0, { timeoutMs: Infinity });
  if (total !== n) throw new Error(`expected ${n} handled casts, got ${total}`);
  await system.shutdown();
}

async function sequentialCalls(n: number): Promise<void> {
  const { system, ref } = counter();
  for (let i = 0; i < n; i++) await ref.call(1);
  await system.shutdown();
}

async function concurrentCalls(n: number, callers: number): Promise<void> {
  const { system, ref } = counter();
  const per = Math.floor(n / callers);
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (let i = 0; i < per; i++) await ref.call(1);
    }),
  );
  await system.shutdown();
}

async function asyncHandlerCalls(n: number, callers: number): Promise<void> {
  const system = createSystem();
  let total = 0;
  const ref = system.spawn({
    async handle(x: number) {
      await null;
      total += x;
      return total;
    },
  });
  const per = Math.floor(n / callers);
  await Promise.all(
    Array.from({ length: callers }, async () => {
      for (let i = 0; i < per; i++) await ref.call(1);
    }),
  );
  await system.shutdown();
}

/** The WorkerSupervisor pattern: one temporary child per job, started, run, stopped. */
async function temporaryWorkers(n: number, concurrency: number): Promise<void> {
  const system = createSystem();
  const sup = await system.supervise({ strategy: 'one_for_one', children: [] });
  let next = 0;
  await Promise.all(
    Array.from({ length: concurrency }, async () => {
      while (next < n) {
        const id = `job-${next++}`;
        const worker = await sup.startChild({ id, restart: 'temporary', start: () => ({ handle: (x: number) => x * 2 }) });
        await worker.call(21);
        await sup.terminateChild(id);
      }
    }),
  );
  await system.shutdown();
}

await measure('cast', 2_000_000, casts);
await measure('call-sequential', 300_000, sequentialCalls);
await measure('call-100-concurrent', 1_000_000, (n) => concurrentCalls(n, 100));
await measure('call-100-concurrent-async-handler', 500_000, (n) => asyncHandlerCalls(n, 100));
await measure('worker-start-call-terminate', 30_000, (n) => temporaryWorkers(n, 50));
