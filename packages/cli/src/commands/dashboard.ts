/** `partita dashboard`: serve the web dashboard alone, against a cluster, until SIGTERM/SIGINT. */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { createLogger } from '@partita/core';
import { COMMON_OPTIONS, CONNECTION_OPTIONS, duration, flag, int, str } from '../args.js';
import { positionals, type Command } from '../command.js';
import { openClient, resolveConnection } from '../connection.js';
import { EXIT, UsageError } from '../errors.js';
import { printJson, println } from '../io.js';

/**
 * Every query a page of the standalone dashboard makes is cut off in Postgres after this long: the
 * dashboard reads over its own pool whose connections carry it. The client's pool, which its actions
 * use (retry, cancel, bulk, pause …), has none, so an action that waits on a lock is not cut.
 */
const STATEMENT_TIMEOUT_MS = 5000;

export const dashboard: Command = {
  name: 'dashboard',
  summary: 'Serve the web dashboard (jobs, queues, nodes) against a cluster.',
  description: `Serves the dashboard on its own HTTP server until SIGTERM or SIGINT, over a client of the
cluster (the usual connection options). With NATS it updates live from the cluster's job events;
without, its pages poll. Each query a page makes has a statement timeout (--statement-timeout,
default ${STATEMENT_TIMEOUT_MS} ms); actions have none.
A node can serve it too: dashboardPlugin() with http.dashboard: /ui in the node's config.`,
  options: {
    port: { type: 'string', arg: 'PORT', help: 'TCP port (default 9470; 0 picks a free one)' },
    host: { type: 'string', arg: 'ADDRESS', help: 'address to listen on (default 127.0.0.1)' },
    'read-only': { type: 'boolean', help: 'pages only: every action is refused' },
    'statement-timeout': {
      type: 'string',
      arg: 'DURATION',
      help: `Postgres statement_timeout of the pages' queries (default ${STATEMENT_TIMEOUT_MS / 1000}s)`,
    },
    ...CONNECTION_OPTIONS,
    ...COMMON_OPTIONS,
  },
  examples: ['partita dashboard -c config/partita.yaml', 'partita dashboard --postgres postgres://localhost/app --port 8080 --read-only'],
  async run(ctx) {
    positionals(ctx, []);
    const port = int(str(ctx.values, 'port'), '--port', 'dashboard', { min: 0, max: 65_535 }) ?? 9470;
    const host = str(ctx.values, 'host') ?? '127.0.0.1';
    const level = (ctx.io.env.PARTITA_LOG_LEVEL as 'info' | undefined) ?? 'info';
    const logger = createLogger({ level, name: 'partita-dashboard' });
    const statementTimeoutMs = duration(str(ctx.values, 'statement-timeout'), '--statement-timeout', 'dashboard') ?? STATEMENT_TIMEOUT_MS;
    if (statementTimeoutMs < 1) throw new UsageError('--statement-timeout must be at least 1ms', 'dashboard');
    const conn = await resolveConnection(ctx.values, ctx.io, 'dashboard');
    const client = await openClient(conn, logger);
    const { dashboard: createHandler } = await import('@partita/dashboard');
    const handler = createHandler({ client, readOnly: flag(ctx.values, 'read-only'), logger, statementTimeoutMs });
    const server = http.createServer((req, res) => handler(req, res));
    try {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => resolve());
      });
    } catch (err) {
      await handler.close();
      await client.close();
      throw err;
    }
    const bound = (server.address() as AddressInfo).port;
    const url = `http://${host === '0.0.0.0' ? '127.0.0.1' : host}:${bound}/`;
    if (ctx.json) printJson(ctx.io, { url });
    else println(ctx.io, `dashboard listening on ${url}`);
    const signal = await new Promise<NodeJS.Signals>((resolve) => {
      process.once('SIGINT', () => resolve('SIGINT'));
      process.once('SIGTERM', () => resolve('SIGTERM'));
    });
    logger.info({ signal }, 'dashboard stopping');
    await handler.close();
    server.closeAllConnections();
    await new Promise((resolve) => server.close(resolve));
    await client.close();
    return EXIT.OK;
  },
};
