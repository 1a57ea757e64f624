export * from './errors.js';
export { createLogger, childLogger, silentLogger, type Logger } from './logger.js';
export { encode, decode, pack, unpack, WIRE_VERSION, type Envelope } from './codec.js';
export { uuidv7, isUuid } from './ids.js';
export { toJsonStrict } from './json.js';
export { isPromiseLike } from './promise.js';
export * from './jobs.js';
export { parseKeyTemplate, evaluateKeyTemplate, keyFromRule, type KeyRule, type KeyKind, type KeyContext } from './key-template.js';
export * from './config/index.js';
export {
  TRACEPARENT_KEY,
  loadTracing,
  tracingActive,
  withoutTraceContext,
  lookupWithTraceContext,
  traceEnqueue,
  traceClaim,
  startPerformSpan,
  traceComplete,
  type TracedJob,
  type PerformSpan,
  type CompleteSpan,
} from './tracing.js';
