import { parseArgs } from 'node:util';

/** Everything a bench run can be told on the command line; the defaults are the spec. */
export interface BenchOptions {
  /** Workloads to run, in registry order (default: every registered workload). */
  only: string[] | undefined;
  /** Systems to run (default: every registered system). */
  systems: string[] | undefined;
  /** Jobs per throughput / depth run. */
  jobs: number;
  /** Measured enqueue+drain runs per system for throughput and depth; the median is reported. */
  repeat: number;
  /** Jobs per enqueue batch. */
  batch: number;
  /** Jobs run at once by each system's workers. */
  concurrency: number;
  /** Sequential enqueue→start samples per latency channel. */
  samples: number;
  /** Wall-clock budget per latency channel, seconds (a polling channel stops early and says so). */
  latencyBudgetS: number;
  /** Jobs already queued (not runnable by the draining workers) for the depth run. */
  backlog: number;
  /** Jobs run (and discarded) before any timing, per system and workload. */
  warmup: number;
  /** Postgres pool size for each pool of either system. */
  pool: number;
  /** Poll interval of either system's workers, ms. */
  pollMs: number;
  /** A drain that takes longer is stopped and reported as timed out (its rate still computed); also the budget for repeats. Seconds. */
  drainTimeoutS: number;
  /** graphile-worker's completeJobBatchDelay / failJobBatchDelay (≥ 0 batches; only 0.17+). */
  graphileBatchDelayMs: number;
  /** graphile-worker's localQueue size (only 0.17+). */
  graphileLocalQueue: number;
  /** Where the depth backlog lives for graphile-worker: another task identifier, or run_at in the future. */
  graphileBacklog: 'task' | 'future';
  /** Write bench/results/<timestamp>.jsonl. */
  writeFile: boolean;
  /** EXPLAIN ANALYZE each system's claim query in the depth run (printed to stderr). */
  explain: boolean;
  /** Time every statement the systems send during each measured drain (printed to stderr). */
  queryStats: boolean;
  /** Full-size drains run and discarded before the measured ones, per system (0: the warm-up only). */
  warmupRuns: number;
  /** Write a V8 CPU profile of this process for each measured drain into this directory. */
  cpuProfile: string | undefined;
  /** Allocation sites of the measured run (V8's sampling heap profiler), top N to stderr (0: off). */
  heapProfile: number;
  /**
   * NATS for Partita's node and its separate client: a server URL, 'off' (no NATS: in-process bus,
   * the separate client is found by polling), or 'auto' (PARTITA_BENCH_NATS_URL, else the test
   * helper's discovery, else off).
   */
  nats: string;
}

export const DEFAULTS: BenchOptions = {
  only: undefined,
  systems: undefined,
  jobs: 20_000,
  repeat: 3,
  batch: 1_000,
  concurrency: 32,
  samples: 200,
  latencyBudgetS: 60,
  backlog: 1_000_000,
  warmup: 2_000,
  pool: 10,
  pollMs: 1_000,
  drainTimeoutS: 60,
  graphileBatchDelayMs: 0,
  graphileLocalQueue: 500,
  graphileBacklog: 'task',
  writeFile: true,
  explain: false,
  queryStats: false,
  cpuProfile: undefined,
  heapProfile: 0,
  warmupRuns: 0,
  nats: 'auto',
};

export const USAGE = `Usage: npm run bench -w bench -- [options]

  --only <w1,w2>            workloads to run (default: all registered)
  --systems <s1,s2>         systems to run (default: all registered)
  --jobs <n>                jobs per throughput/depth run (${DEFAULTS.jobs})
  --repeat <n>              measured runs per system for throughput/depth, median reported (${DEFAULTS.repeat})
  --batch <n>               jobs per enqueue batch (${DEFAULTS.batch})
  --concurrency <n>         jobs run at once (${DEFAULTS.concurrency})
  --samples <n>             latency samples per channel (${DEFAULTS.samples})
  --latency-budget <s>      max seconds per latency channel (${DEFAULTS.latencyBudgetS})
  --backlog <n>             pre-queued jobs for the depth run (${DEFAULTS.backlog})
  --warmup <n>              warm-up jobs, untimed (${DEFAULTS.warmup})
  --warmup-runs <n>         full-size drains run and discarded before the measured ones (${DEFAULTS.warmupRuns}):
                            steady state, once the process has run a few hundred thousand jobs
  --pool <n>                Postgres pool size of every pool (${DEFAULTS.pool})
  --poll-ms <n>             worker poll interval, ms (${DEFAULTS.pollMs})
  --drain-timeout <s>       give up on a drain after this many seconds (${DEFAULTS.drainTimeoutS})
  --graphile-batch-delay <ms>   completeJobBatchDelay/failJobBatchDelay (${DEFAULTS.graphileBatchDelayMs}; -1 disables)
  --graphile-local-queue <n>    localQueue size (${DEFAULTS.graphileLocalQueue}; 0 disables)
  --graphile-backlog <task|future>  depth backlog as another task identifier, or scheduled far ahead (${DEFAULTS.graphileBacklog})
  --nats <url|off|auto>     NATS for Partita's node and separate client (${DEFAULTS.nats}: PARTITA_BENCH_NATS_URL,
                            else the test helper's discovery, else off)
  --explain                 EXPLAIN ANALYZE the claim queries in the depth run (stderr)
  --query-stats             time every statement of each measured drain, per statement (stderr)
  --cpu-profile <dir>       write a .cpuprofile of this process per measured drain (workers' start → all finished)
  --heap-profile <n>        workflow workloads: the n functions that allocated most in the measured run, bytes per unit (stderr)
  --no-file                 do not write bench/results/<timestamp>.jsonl
  --help

Postgres: PARTITA_BENCH_POSTGRES_URL, else the test helper's discovery, else postgres://postgres@127.0.0.1:5432/test.
NATS (Partita only; graphile-worker uses LISTEN/NOTIFY): --nats, else PARTITA_BENCH_NATS_URL, else the test
helper's discovery (PARTITA_TEST_NATS_URL, nats://127.0.0.1:4222, a spawned nats-server), else none.
`;

function positiveInt(name: string, raw: string | undefined, fallback: number, min = 1): number {
  if (raw === undefined) return fallback;
  const n = Number(raw.replace(/_/g, ''));
  if (!Number.isInteger(n) || n < min) throw new Error(`--${name} must be an integer ≥ ${min} (got "${raw}")`);
  return n;
}

function list(raw: string | undefined): string[] | undefined {
  if (raw === undefined) return undefined;
  const items = raw
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return items.length ? items : undefined;
}

/** Parses argv; throws with a message naming the flag on anything it does not understand. */
export function parseOptions(argv: string[]): BenchOptions | 'help' {
  const { values } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: false,
    options: {
      only: { type: 'string' },
      systems: { type: 'string' },
      jobs: { type: 'string' },
      repeat: { type: 'string' },
      batch: { type: 'string' },
      concurrency: { type: 'string' },
      samples: { type: 'string' },
      'latency-budget': { type: 'string' },
      backlog: { type: 'string' },
      warmup: { type: 'string' },
      'warmup-runs': { type: 'string' },
      pool: { type: 'string' },
      'poll-ms': { type: 'string' },
      'drain-timeout': { type: 'string' },
      'graphile-batch-delay': { type: 'string' },
      'graphile-local-queue': { type: 'string' },
      'graphile-backlog': { type: 'string' },
      explain: { type: 'boolean' },
      'query-stats': { type: 'boolean' },
      'cpu-profile': { type: 'string' },
      'heap-profile': { type: 'string' },
      'no-file': { type: 'boolean' },
      nats: { type: 'string' },
      help: { type: 'boolean', short: 'h' },
    },
  });
  if (values.help) return 'help';
  const graphileBacklog = values['graphile-backlog'] ?? DEFAULTS.graphileBacklog;
  if (graphileBacklog !== 'task' && graphileBacklog !== 'future')
    throw new Error(`--graphile-backlog must be "task" or "future" (got "${graphileBacklog}")`);
  const nats = values.nats?.trim() || DEFAULTS.nats;
  if (nats !== 'off' && nats !== 'auto' && !/^(nats|tls|ws|wss):\/\/\S+$/i.test(nats))
    throw new Error(`--nats must be a nats:// URL, "off" or "auto" (got "${nats}")`);
  return {
    only: list(values.only),
    systems: list(values.systems),
    jobs: positiveInt('jobs', values.jobs, DEFAULTS.jobs),
    repeat: positiveInt('repeat', values.repeat, DEFAULTS.repeat),
    batch: positiveInt('batch', values.batch, DEFAULTS.batch),
    concurrency: positiveInt('concurrency', values.concurrency, DEFAULTS.concurrency),
    samples: positiveInt('samples', values.samples, DEFAULTS.samples),
    latencyBudgetS: positiveInt('latency-budget', values['latency-budget'], DEFAULTS.latencyBudgetS),
    backlog: positiveInt('backlog', values.backlog, DEFAULTS.backlog, 0),
    warmup: positiveInt('warmup', values.warmup, DEFAULTS.warmup, 0),
    warmupRuns: positiveInt('warmup-runs', values['warmup-runs'], DEFAULTS.warmupRuns, 0),
    pool: positiveInt('pool', values.pool, DEFAULTS.pool),
    pollMs: positiveInt('poll-ms', values['poll-ms'], DEFAULTS.pollMs),
    drainTimeoutS: positiveInt('drain-timeout', values['drain-timeout'], DEFAULTS.drainTimeoutS),
    graphileBatchDelayMs: positiveInt('graphile-batch-delay', values['graphile-batch-delay'], DEFAULTS.graphileBatchDelayMs, -1),
    graphileLocalQueue: positiveInt('graphile-local-queue', values['graphile-local-queue'], DEFAULTS.graphileLocalQueue, 0),
    graphileBacklog,
    writeFile: !values['no-file'],
    explain: values.explain ?? false,
    queryStats: values['query-stats'] ?? false,
    cpuProfile: values['cpu-profile'],
    heapProfile: values['heap-profile'] === undefined ? 0 : Number(values['heap-profile']),
    nats,
  };
}
