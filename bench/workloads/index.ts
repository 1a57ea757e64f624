import { cluster } from './cluster.js';
import { depth } from './depth.js';
import { flowThroughput } from './flow-throughput.js';
import { hotkey } from './hotkey.js';
import { keys } from './keys.js';
import { latency } from './latency.js';
import { throughput } from './throughput.js';
import type { Workload } from './types.js';
import { workflowFanout } from './workflow-fanout.js';
import { workflowHook } from './workflow-hook.js';
import { workflowLatency } from './workflow-latency.js';
import { workflowThroughput } from './workflow-throughput.js';

/**
 * Every workload, in run order (keys and depth use throughput's result as their baseline when it ran).
 * A new workload is a file in this directory and one entry here.
 */
export const workloads: readonly Workload[] = [
  throughput,
  latency,
  keys,
  depth,
  hotkey,
  cluster,
  workflowThroughput,
  workflowLatency,
  workflowHook,
  workflowFanout,
  flowThroughput,
];

export type { Workload, WorkloadContext, ResultLine } from './types.js';
