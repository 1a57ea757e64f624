/**
 * Stops the shared fallback PostgreSQL and nats-server the tests started (they stay up between runs)
 * and removes their data:  npx tsx test/helpers/stop-services.ts
 */
import { stopSharedServices } from './shared.js';
import { servicesDir } from './util.js';

const done = await stopSharedServices();
process.stdout.write(`${servicesDir()}:\n${done.map((l) => `  ${l}\n`).join('')}`);
