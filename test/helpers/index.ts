export {
  postgresUrl,
  natsUrl,
  freshSchema,
  testServices,
  redact,
  type TestSchema,
  type ResolvedService,
  type ServiceSource,
} from './services.js';
export { startNats, startPostgres, spawnNode, type TestNats, type TestPostgres, type SpawnedNode } from './processes.js';
export { stopSharedServices } from './shared.js';
export { capturingLogger, type LogRecord } from './logs.js';
export { freePort, holdTableLock, probeNats, probePostgres, servicesDir, sleep, tempDataDir, until } from './util.js';
