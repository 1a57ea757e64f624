export {
  defineFlow,
  Flow,
  type FlowOptions,
  type FlowJob,
  type FlowJobStatus,
  type FlowWorkerJob,
  type FlowChildJob,
  type FlowEvent,
  type StartAllOptions,
} from './flow.js';
export { compileFlow, jobTypeOf, jobQueueOf, type FlowQueueOptions, type CompiledFlow } from './compile.js';
export { FlowDefinitionError, FlowNotStartedError } from './errors.js';
export { flowsPlugin, sweepKeys, FLOWS_PLUGIN, type FlowsPluginOptions } from './plugin.js';
export { lookupRows, lookupValue } from './lookup.js';
