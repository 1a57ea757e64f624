import { depth } from './depth.js';
import { latency } from './latency.js';
import { throughput } from './throughput.js';
import type { Workload } from './types.js';

/**
 * Every workload, in run order (depth uses throughput's result as its baseline when both run).
 * A new workload is a file in this directory and one entry here.
 */
export const workloads: readonly Workload[] = [throughput, latency, depth];

export type { Workload, WorkloadContext, ResultLine } from './types.js';
