export {
  defineJob,
  backoffDelay,
  type JobDefinition,
  type JobDefinitionInput,
  type JobContext,
  type HookContext,
  type ResolvedJobDefinition,
  type Continuation,
  type ContinuationPrepare,
  type ContinuationTx,
  type FinishedJob,
  type OutcomeContinuation,
} from './define.js';
export { startNode, type PartitaNode, type NodeOptions, type PartitionOptions } from './node.js';
export { importJobs as loadJobsModule } from './options.js';
export type { EngineStats } from './engine/messages.js';
export {
  startHttpServer,
  nodeHealth,
  type HttpServer,
  type HttpServerOptions,
  type HealthReport,
  type NodeHealthSources,
  type Route,
  type RouteHandler,
  type RouteRequest,
  type HttpMethod,
} from './http.js';
export { definePlugin, type NodePlugin, type PluginContext, type PluginConfigProblem } from './plugin.js';
export { AsyncResourceStack } from './resource-stack.js';
export {
  createMetrics,
  liveJobCounts,
  type Metrics,
  type MetricsOptions,
  type MetricsSources,
  type JobCount,
  type FinishedState,
} from './metrics.js';
export { importUserModule, describeImportError } from './modules.js';
export type { SignalHandling } from './signals.js';
export type { Persister, GlobalSnapshot } from './global/types.js';
export {
  LeaderSeat,
  type LeaderSeatOptions,
  type LeaderSeatMsg,
  type LeaderSeatStatus,
  type LeaderChange,
  type LeaderChild,
  type HeldLease,
} from './leadership/leader-seat.js';
export type { PersisterModuleContext } from './global/persisters.js';
