/**
 * Health and metrics for a node started by the CLI. When the runtime's startNode already serves
 * them (it exposes `node.http`), that server is used; otherwise the CLI starts one from the
 * node's public surface (its store pool, bus, engines).
 */
import type { Logger, PartitaConfig } from '@partita/core';
import type { PartitaNode } from '@partita/runtime';

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
  const store = node.client.store;
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
