/**
 * The dashboard on a node: `dashboardPlugin()` mounts the handler on the node's HTTP server at
 * `http.dashboard` (e.g. `/ui`), over the node's own client. Its config section
 * (`plugins.dashboard: { readOnly: true }`) sets readOnly when the code does not.
 */
import { childLogger } from '@partita/core';
import { definePlugin, type NodePlugin, type PluginConfigProblem } from '@partita/runtime';
import { dashboard, type DashboardHandler, type DashboardOptions } from './dashboard.js';

export interface DashboardPluginOptions {
  readOnly?: boolean;
  authorize?: DashboardOptions['authorize'];
  /** Where to mount it when the config's `http.dashboard` does not say (default `/ui`). */
  path?: string;
  queryTimeoutMs?: number;
  /** Postgres's statement_timeout on the dashboard's reads (default: queryTimeoutMs). */
  statementTimeoutMs?: number;
  maxBulk?: number;
  estimateDepthAbove?: number;
}

interface DashboardSection {
  readOnly?: boolean;
}

export function dashboardPlugin(options: DashboardPluginOptions = {}): NodePlugin<DashboardSection | undefined> {
  let handler: DashboardHandler | undefined;
  return definePlugin<DashboardSection | undefined>({
    name: 'dashboard',
    configSchema(section): PluginConfigProblem[] {
      if (section === undefined) return [];
      if (typeof section !== 'object' || section === null || Array.isArray(section))
        return [{ message: 'expected a mapping such as { readOnly: true }' }];
      const problems: PluginConfigProblem[] = [];
      for (const [key, value] of Object.entries(section)) {
        if (key !== 'readOnly') problems.push({ path: key, message: 'unknown setting; the dashboard takes readOnly' });
        else if (typeof value !== 'boolean') problems.push({ path: key, message: `expected true or false, got ${JSON.stringify(value)}` });
      }
      return problems;
    },
    routes(ctx) {
      const mount = mountPath(ctx.config.http?.dashboard ?? options.path ?? '/ui');
      handler = dashboard({
        client: ctx.client,
        basePath: mount,
        readOnly: options.readOnly ?? ctx.pluginConfig?.readOnly ?? false,
        logger: childLogger(ctx.logger, { actor: 'dashboard' }),
        ...(options.authorize ? { authorize: options.authorize } : {}),
        ...(options.queryTimeoutMs !== undefined ? { queryTimeoutMs: options.queryTimeoutMs } : {}),
        ...(options.statementTimeoutMs !== undefined ? { statementTimeoutMs: options.statementTimeoutMs } : {}),
        ...(options.maxBulk !== undefined ? { maxBulk: options.maxBulk } : {}),
        ...(options.estimateDepthAbove !== undefined ? { estimateDepthAbove: options.estimateDepthAbove } : {}),
      });
      const h = handler;
      return [{ method: ['GET', 'HEAD', 'POST'], path: `${mount}/*`, handler: (req, res) => h(req, res) }];
    },
    start() {
      return () => handler?.close();
    },
  });
}

/** `/ui`, `ui/` and `/ui/` all mount at `/ui`. */
function mountPath(path: string): string {
  const p = '/' + path.replace(/^\/+|\/+$/g, '');
  return p === '/' ? '' : p;
}
