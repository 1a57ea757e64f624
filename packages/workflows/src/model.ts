/**
 * The compiled graph model: what the executor walks. Plain JSON throughout (mappings included), so
 * a compiled app can be stored with its version and rebuilt from the merged JSON on any node.
 */
import type { MapExpr } from './mapping.js';

export const ACTIVITY_TYPES = ['trigger', 'worker', 'await', 'hook', 'signal', 'cycle', 'interrupt'] as const;
export type ActivityType = (typeof ACTIVITY_TYPES)[number];

/** `{ match: [{ expected, actual }], gate, code }` of a transition or a hook rule. */
export interface CompiledCondition {
  gate: 'and' | 'or';
  match: { expected: MapExpr; actual: MapExpr }[];
  /** Leg-2 response code this edge is taken on (200 by default; 202 for an activity answering again). */
  code?: number;
}

export interface CompiledTransition {
  to: string;
  conditions?: CompiledCondition;
}

/** A `hooks:` rule: a `hook(topic, data)` re-enters activity `to` of the workflow its match selects. */
export interface CompiledHookRule {
  topic: string;
  to: string;
  conditions?: CompiledCondition;
}

export interface RetryPolicy {
  maximumAttempts?: number;
  backoffCoefficient?: number;
  /** Seconds. */
  maximumInterval?: number;
}

export interface CompiledActivity {
  id: string;
  type: ActivityType;
  title?: string;
  /** worker: the job type; await: the child graph's `subscribes`; signal: the hook topic signalled; interrupt: the target's topic. */
  topic?: string;
  /** worker: the job queue (default `default`). */
  queue?: string;
  retry?: RetryPolicy;
  /** Seconds before a worker step times out, when given. */
  timeout?: number;
  /** await: false = start the child and go on with its id. */
  await?: boolean;
  /**
   * await: a fan-out. The mapping yields an array at run time; one child starts per element (its
   * input: `input.maps` with `{$item}`/`{$index}`, else the element), and the activity completes
   * when the last one ends with `{ items, ids }` in element order.
   */
  items?: MapExpr;
  emit: boolean;
  /** `cycle: true`: a cycle activity may return here. */
  cycle: boolean;
  /** cycle: the ancestor it returns to. */
  ancestor?: string;
  /** hook: a durable sleep of this many seconds (a mapping, so it may come from data). */
  sleep?: MapExpr;
  /** hook: the hook topics whose rules target this activity (it waits for them). */
  hookTopics: string[];
  /** Inbound edges (activities with a transition to this one), sorted. */
  parents: string[];
  /** Outbound edge targets in declaration order. */
  children: string[];
  transitions: CompiledTransition[];
  /** Every activity upstream of this one (transitively), sorted. */
  ancestors: string[];
  input?: { schema?: unknown; maps?: MapExpr };
  output?: { schema?: unknown; maps?: MapExpr };
  /** Writes to the workflow's data (HotMesh's `job.maps`). */
  job?: { maps?: MapExpr };
  hook?: { schema?: unknown };
  /** trigger: `stats.id` (the workflow id), `stats.key` and the like. */
  stats?: Record<string, MapExpr>;
  /** signal */
  subtype?: 'one' | 'all';
  signal?: { schema?: unknown; maps?: MapExpr };
  resolver?: { schema?: unknown; maps?: MapExpr };
  status?: string;
  code?: number;
  scrub?: boolean;
  /** interrupt */
  target?: MapExpr;
  reason?: MapExpr;
  throw?: boolean;
  descend?: boolean;
}

export interface CompiledGraph {
  subscribes: string;
  publishes?: string;
  /** Seconds a finished workflow is kept. */
  expire?: number;
  persistent: boolean;
  input?: { schema?: unknown };
  output?: { schema?: unknown };
  /** Id of the trigger activity. */
  trigger: string;
  activities: Record<string, CompiledActivity>;
  /** Activity ids from the trigger in breadth-first order (parents before children). */
  order: string[];
  /** Sorted by topic; rules of one topic in the order written. */
  hooks: CompiledHookRule[];
  /** Activities marked `cycle: true`, each with the cycle activities that return to it. */
  cycleTargets: Record<string, string[]>;
}

export interface CompiledApp {
  id: string;
  version: string;
  settings: Record<string, unknown>;
  graphs: CompiledGraph[];
  /** The whole app after `$ref` merge, keys sorted: what is written beside the source and stored. */
  merged: unknown;
  /** sha256 of the canonical merged JSON: equal for equal content, whatever the key order or files. */
  hash: string;
  /** The app file, when compiled from a path. */
  source?: string;
  /** Things that compile but are very likely mistakes (same shape as errors). */
  warnings: import('./errors.js').WorkflowIssue[];
}
