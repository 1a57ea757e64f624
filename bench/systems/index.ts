import { graphile } from './graphile.js';
import { partita } from './partita.js';
import type { SystemFactory } from './types.js';

/** Systems under test, in run order. Ratios are always partita / graphile. */
export const systems: readonly SystemFactory[] = [partita, graphile];

export type { BenchJob, BenchSystem, JobRef, LatencyChannel, SystemContext, SystemFactory } from './types.js';
