export { defineJob, backoffDelay, DEFAULT_BACKOFF, type JobDefinition, type JobDefinitionInput, type JobContext } from './define.js';
export { startNode, ENGINE_DEFAULTS, type NodeOptions, type PartitaNode, type PartitionOptions, type EngineOptionsInput } from './node.js';
export type { EngineStats } from './engine.js';
