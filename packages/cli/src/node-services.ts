/**
 * Health and metrics for a node started by the CLI. When the runtime's startNode already serves
 * them (it exposes `node.http`), that server is used; otherwise the CLI starts one from the
 * node's public surface (its store pool, bus, engines).
 */
import type { Logger, PartitaConfig } from '@partita/core';
import type { PartitaNode } from '@partita/runtime';
import { clientStore } from '@partita/client/internal';

export interface NodeHttp {
  url: string;
  port: number;
  /** True when this module started it (and must close it). */
  owned: boolean;
  close(): Promise<void>;
}

export async function startNodeHttp(
  node: PartitaNode,
  config: PartitaConfig,
  partitions: string[],
  logger: Logger,
  state: { stopping: boolean },
): Promise<NodeHttp | undefined> {
  const builtIn = (node as unknown as { http?: { url?: string; port?: number } }).http;
  if (builtIn && typeof builtIn.port === 'number') {
    return { url: builtIn.url ?? `http://127.0.0.1:${builtIn.port}`, port: builtIn.port, owned: false, close: async () => undefined };
  }
  if (!config.http) return undefined;
  const { createMetrics, liveJobCounts, nodeHealth, startHttpServer } = await import('@partita/runtime');
  // The node's own store: this assembles the node's HTTP server, which is the node's business, not a client's.
  const store = clientStore(node.client);
  const metrics = createMetrics({
    labels: { cluster: config.cluster },
    jobCounts: liveJobCounts(store),
    engines: () => node.stats(),
    bus: node.bus,
  });
  const server = await startHttpServer({
    port: config.http.port,
    host: config.http.host,
    metrics: metrics.registry,
    logger,
    health: nodeHealth({
      db: store.pool,
      bus: node.bus,
      partitions: () => Object.fromEntries(partitions.map((p) => [p, node.system.whereis(`engine:${p}`)?.alive === true ? true : 'engine not running'])),
      stopping: () => state.stopping,
    }),
  });
  return { url: server.url, port: server.port, owned: true, close: () => server.close() };
}

/**
 * Under npm (`npx partita start`, `npm run …`) the node's parent is npm's `sh -c`: npm passes a
 * SIGTERM on to that shell, which dies of it without passing it on, and the node would run on as an
 * orphan with its database. So when started by npm, the parent's exit counts as a SIGTERM (a graceful
 * stop through the same handler). A node started directly (`node_modules/.bin/partita`, systemd,
 * a container) is not affected.
 */
export function stopWhenLauncherExits(logger: Logger, env: NodeJS.ProcessEnv = process.env): () => void {
  if (!env.npm_command) return () => undefined;
  const parent = process.ppid;
  const timer = setInterval(() => {
    if (process.ppid === parent) return;
    clearInterval(timer);
    logger.warn({ parent }, 'the npm process that started this node is gone (npm does not pass signals through its shell): stopping as on SIGTERM');
    process.kill(process.pid, 'SIGTERM');
  }, 500);
  timer.unref();
  return () => clearInterval(timer);
}
