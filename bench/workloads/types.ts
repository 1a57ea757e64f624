import type pg from 'pg';
import type { BenchOptions } from '../lib/options.js';
import type { Probe } from '../lib/probe.js';
import type { BenchSystem, SystemFactory } from '../systems/types.js';

export type ResultLine = Record<string, unknown> & { workload: string };

export interface WorkloadContext {
  url: string;
  /** The NATS server Partita uses (node and separate client); undefined: none (see --nats). */
  nats: string | undefined;
  options: BenchOptions;
  /** The systems selected for this run, in registry order. */
  systems: readonly SystemFactory[];
  probe: Probe;
  /** The harness's own pool, for SQL outside the systems' APIs. Never inside a timed section. */
  admin: pg.Pool;
  log(msg: string): void;
  /** Prints one JSON line to stdout (and the results file) and keeps it for later workloads and the summary. */
  emit(line: ResultLine): void;
  /** Lines emitted so far, by `${workload}/${system}` (system lines only). */
  results: Map<string, ResultLine>;
  /** Records a spec target and whether this run met it (shown in the summary). */
  target(name: string, pass: boolean | null, detail: string): void;
  /**
   * Runs fn against a fresh instance of the system in a fresh schema (set up before, torn down and
   * dropped after, whatever happens). An error is reported as that system's result line.
   */
  withSystem<T>(factory: SystemFactory, workload: string, fn: (system: BenchSystem) => Promise<T>): Promise<T | undefined>;
}

/** One benchmark workload: a file in workloads/, listed in workloads/index.ts. */
export interface Workload {
  readonly name: string;
  readonly description: string;
  run(ctx: WorkloadContext): Promise<void>;
}
