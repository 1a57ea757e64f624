import http from 'node:http';
import type { AddressInfo } from 'node:net';
import type { DashboardHandler } from '@partita/dashboard';

/**
 * `listener` on a node:http server of its own (127.0.0.1, a free port): its origin, and `close`
 * (for t.teardown), which closes the dashboard handlers given (their live streams and event
 * subscription), then the server and its open connections.
 */
export async function listen(
  listener: http.RequestListener,
  handlers: DashboardHandler[],
): Promise<{ origin: string; close(): Promise<void> }> {
  const server = http.createServer(listener);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    origin: `http://127.0.0.1:${(server.address() as AddressInfo).port}`,
    async close() {
      for (const h of handlers) await h.close();
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}
