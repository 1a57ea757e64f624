export * from './errors.js';
export { createLogger, childLogger, silentLogger, type Logger } from './logger.js';
export { encode, decode, pack, unpack, WIRE_VERSION, type Envelope } from './codec.js';
export { uuidv4, uuidv7, isUuid } from './ids.js';
export { toJsonStrict } from './json.js';
export { isPromiseLike } from './promise.js';
export { COUNT_REUSE_FACTOR, ReusedRead, type ReusedReadOptions } from './reuse.js';
export * from './jobs.js';
export { parseKeyTemplate, evaluateKeyTemplate, keyFromRule, type KeyRule, type KeyKind, type KeyContext } from './key-template.js';
export * from './config/index.js';
// Shared with other packages' YAML loaders (workflow apps), so every file:line in the project is found the same way.
export {
  parseYaml,
  YamlPositions,
  type PathSegment,
  type YamlParseResult,
  type YamlSyntaxProblem,
  type ParseYamlOptions,
} from './config/yaml.js';
export { closest } from './config/suggest.js';
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
