export { compileApp, compileDefinition, writeCompiled, compiledFileName, canonical, type CompileOptions } from './compile.js';
export {
  evaluateMapping,
  parseMapping,
  type MapExpr,
  type PathExpr,
  type PathRoot,
  type PipeExpr,
  type PipeRow,
  type MappingContext,
  type ActivityData,
  type ParsedMapping,
  type MappingProblem,
} from './mapping.js';
export { PIPE_FUNCTIONS, PIPE_FUNCTION_NAMES } from './functions.js';
export { loadApp, isInlineYaml, SourceMap, type LoadedApp } from './source.js';
export { WorkflowDefinitionError, MappingEvaluationError, formatIssue, type WorkflowIssue } from './errors.js';
export * from './model.js';
export {
  UnknownTopicError,
  VersionConflictError,
  DuplicateWorkflowError,
  WorkflowNotFoundError,
  WorkflowFailedError,
  FanOutItemsError,
  PENDING,
  INTERRUPTED,
  FAILED,
} from './errors.js';
export {
  app,
  WorkflowApp,
  type AppOptions,
  type PubOptions,
  type HookOptions,
  type HookStatus,
  type WorkflowEvent,
  type WorkflowState,
  type ActivityTimeline,
  type ListWorkflowsOptions,
  type WorkflowSummary,
  type WorkflowStatusName,
  WORKFLOW_STATUS_NAMES,
} from './app.js';
export { workflowsPlugin, type DurableTransitions, type WorkflowsPluginOptions } from './plugin.js';
export {
  SLEEP_TYPE,
  EMIT_TYPE,
  INTERRUPT_CODE,
  REENTER_CODE,
  Versions,
  graphOf,
  type EmitPayload,
  type EmitJobPayload,
  type InterruptOptions,
} from './executor.js';
export { eventSubject } from './subjects.js';
export * from './activation/index.js';
export {
  defineFlow,
  Flow,
  compileFlow,
  jobTypeOf,
  jobQueueOf,
  FlowDefinitionError,
  FlowNotStartedError,
  flowsPlugin,
  sweepKeys,
  FLOWS_PLUGIN,
  lookupRows,
  lookupValue,
  type FlowOptions,
  type FlowJob,
  type FlowJobStatus,
  type FlowWorkerJob,
  type FlowChildJob,
  type FlowEvent,
  type StartAllOptions,
  type FlowQueueOptions,
  type CompiledFlow,
  type FlowsPluginOptions,
} from './flows/index.js';
