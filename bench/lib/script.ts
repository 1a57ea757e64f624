/** What the standalone bench scripts (node-drain.ts, depth-cost.ts) share: flags, the tree they measure, their cluster. */
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

/** `--name value` from the command line, or `fallback`. */
export function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 && process.argv[i + 1] !== undefined ? process.argv[i + 1]! : fallback;
}

/** The tree whose built packages a script measures: `--root`, else this bench's own checkout. */
export const ROOT = resolve(arg('root', new URL('../..', import.meta.url).pathname));

/** A package of that tree, from its build (`packages/<pkg>/dist`), so one script measures any worktree. */
export const loadPackage = (pkg: string) => import(pathToFileURL(join(ROOT, 'packages', pkg, 'dist', 'index.js')).href);

/**
 * The no-op job the scripts drain, counting its starts: `untilStarted(n)` resolves once n more have
 * started (a drain's end, before its outcomes are written).
 */
export function countingNoop<J>(defineJob: (def: { type: string; queue: string; perform: () => Promise<undefined> }) => J) {
  let started = 0;
  let target = Infinity;
  let reached: (() => void) | undefined;
  const job = defineJob({
    type: 'noop',
    queue: 'default',
    perform: async () => {
      if (++started >= target) reached?.();
      return undefined;
    },
  });
  const untilStarted = (n: number) => {
    started = 0;
    target = n;
    return new Promise<void>((r) => (reached = r));
  };
  return { job, untilStarted };
}

/**
 * The options of the scripts' `bench` cluster over one schema: its client's (`client`) and a node's
 * (`node(queues)`), no NATS, silent, the node's `default` queue stopped at start so that a drain's
 * enqueue is in place before any claim (`node.startQueues` begins the drain).
 */
export function benchCluster(o: { core: { silentLogger(): unknown }; url: string; schema: string; dataDir: string; job: unknown }) {
  const client = {
    postgres: { connectionString: o.url, max: 10 },
    schema: o.schema,
    nats: false as const,
    cluster: 'bench',
    jobs: [o.job],
    logger: o.core.silentLogger(),
  };
  const node = (queues: Record<string, { concurrency: number }>) => ({
    ...client,
    dataDir: o.dataDir,
    partitions: { bench: { queues } },
    engine: { pollMs: 1000 },
    stoppedQueues: { bench: ['default'] },
  });
  return { client, node };
}
