export { defineJob, backoffDelay, type JobDefinition, type JobDefinitionInput, type JobContext, type ResolvedJobDefinition } from './define.js';
export { startNode, type PartitaNode, type NodeOptions, type PartitionOptions } from './node.js';
export type { EngineStats } from './engine.js';
