/**
 * The graph executor: what happens to a workflow when one of its activities is entered or
 * finishes. Everything here runs inside one job-store transaction (a step's continuation, a pub, a
 * hook): the workflow's row is locked first, its data, semaphore and activity records are written
 * with the next steps' jobs and hook registrations, and all of it commits with the step's
 * completion or not at all. So a transition happens exactly once, whichever node runs it.
 *
 * Synchronous activities (trigger, hook pass-through, cycle, signal, interrupt, await:false) finish
 * in the same transaction that enters them; a worker is a job of its `topic` type; a sleep is a
 * scheduled job; a hook waits in wf_hooks; an await waits for its child to finish, whose last
 * transaction completes the parent's activity too.
 */
import { randomUUID } from 'node:crypto';
import { uuidv7, type Logger } from '@partita/core';
import { encodeColumnsJsonArrays, isTransientDbError, textArray, type ColumnType, type NewJob } from '@partita/postgres';
import { canonical, compileDefinition } from './compile.js';
import type { Db } from './db.js';
import { DuplicateWorkflowError, FAILED, fanOutItemsError, INTERRUPTED, PENDING, WorkflowNotFoundError } from './errors.js';
import { evaluateMapping, mappingReads, type ActivityData, type MapExpr, type MappingContext, type MappingReads } from './mapping.js';
import type { CompiledActivity, CompiledApp, CompiledCondition, CompiledGraph, CompiledHookRule } from './model.js';
import { attemptsRemain, executorRetries, retryDelayMs, stepAttempts } from './retry.js';

/** A durable sleep: a job scheduled at the wake time, whose completion finishes the hook activity. */
export const SLEEP_TYPE = 'partita.wf.sleep';
/** Publishes a workflow's output or emitted data on the bus, after the transition that made it committed. */
export const EMIT_TYPE = 'partita.wf.emit';
/**
 * The mark of a step's job (a worker's, a sleep's): the name of the plugin's continuation, which
 * alone sees these jobs' outcomes, so other jobs on the node keep the plain write.
 */
export const STEP_CONTINUATION = 'workflows.transition';
/**
 * Interrupts the running children of a fan-out whose child failed, in transactions of its own after
 * the failure committed: the failing child's transaction holds the parent's lock, and locking the
 * siblings there (which concurrent transitions lock before the parent) could deadlock; a fan-out's
 * thousands of siblings would also make that transaction long.
 */
export const STOP_CHILDREN_TYPE = 'partita.wf.stop-children';
export interface StopChildrenPayload {
  app: string;
  workflow: string;
  activity: string;
  dimension: string;
  reason: string;
}
/** Children a stop-children transaction interrupts at most. */
export const STOP_CHILDREN_BATCH = 1000;
/** Queue of the executor's own jobs and the default queue of worker activities. */
export const DEFAULT_QUEUE = 'default';
/** Children a fan-out stages before writing them (one statement per table per batch). */
const FANOUT_BATCH = 1000;
/** Seconds a finished workflow (and a kept early signal) stays when its graph gives no `expire`. */
export const DEFAULT_EXPIRE_S = 3600;
/** The semaphore of a workflow row written before its first transition staged its state. */
const OPEN_PLACEHOLDER = 1;

export interface EmitPayload {
  app: string;
  /** Topic the message is published under (`partita.<cluster>.wf.<app>.<topic>`). */
  topic: string;
  id: string;
  /** 'output': the workflow finished (status 0, failed or interrupted); 'emit': an activity's interim data. */
  kind: 'output' | 'emit';
  status: number;
  data: unknown;
}

/** An EMIT_TYPE job: the events of one transaction in one partition, published in order. */
export type EmitJobPayload = { events: EmitPayload[] } | EmitPayload;

export interface WorkflowRow {
  id: string;
  app_id: string;
  version: string;
  topic: string;
  partition: string;
  status: string | number;
  data: Record<string, unknown>;
  search: Record<string, unknown>;
  parent_id: string | null;
  parent_activity: string | null;
  parent_dimension: string | null;
  /** A fan-out child: its position in the parent's array. */
  parent_index?: number | null;
  /**
   * The partition its row and records are in (YYYY-MM-DD, the UTC day it started, or 'infinity'):
   * set on rows read from Postgres, absent on one this transaction started (today's).
   */
  start_day?: string;
}

export interface ActivityRecord {
  activity: string;
  dimension: string;
  type: string;
  state: 'pending' | 'running' | 'waiting' | 'done' | 'failed';
  job_id: string | null;
  input: unknown;
  output: unknown;
  hook: unknown;
  attempts: number;
  errors: unknown[];
  /** A fan-out await: its children still running (the fan-in counter). */
  children_open?: number | null;
}

/** Compiled apps by their stored definition's JSON, shared by every Versions of the process. */
const compiledByDefinition = new Map<string, CompiledApp>();
/** Definitions kept compiled at most (the oldest goes first): tests deploy an app per schema. */
const COMPILED_KEPT = 64;

/**
 * The same stored definition compiles to the same app, so a node and the app handles of its process
 * (each with its own Versions) compile it once: a compile took ~0.7 s on a loaded machine (schema
 * checks), and a node's first step of a version waited for it while its batch held the writer.
 */
function compileStored(definition: unknown): CompiledApp {
  // Keys sorted as a compiled app's `merged` has them (jsonb gives them back in its own order), so
  // the app this process deployed is found too (rememberCompiled).
  const json = JSON.stringify(canonical(definition));
  let app = compiledByDefinition.get(json);
  if (!app) {
    app = compileDefinition(definition);
    keepCompiled(json, app);
  }
  return app;
}

function keepCompiled(json: string, app: CompiledApp): void {
  if (compiledByDefinition.size >= COMPILED_KEPT) compiledByDefinition.delete(compiledByDefinition.keys().next().value!);
  compiledByDefinition.set(json, app);
}

/**
 * An app this process compiled to deploy: the definition stored is its `merged` JSON, so its node
 * and app handles find it compiled, rather than compiling it again at its first pub or step (Ajv's
 * schema compiles: ~0.6 s of a loaded machine inside the first transition's batch).
 */
export function rememberCompiled(app: CompiledApp): void {
  const json = JSON.stringify(app.merged);
  if (!compiledByDefinition.has(json)) keepCompiled(json, app);
}

/** Compiled app versions by id+version: immutable once deployed, so cached for the process's life. */
export class Versions {
  private readonly apps = new Map<string, Promise<CompiledApp>>();
  /** The apps loaded, by app id then version: read without a wait (or a key string) by every transition. */
  private readonly loaded = new Map<string, Map<string, CompiledApp>>();

  constructor(private readonly load: (appId: string, version: string) => Promise<unknown | undefined>) {}

  /** The app version if it is loaded and compiled already. */
  ready(appId: string, version: string): CompiledApp | undefined {
    return this.loaded.get(appId)?.get(version);
  }

  get(appId: string, version: string): Promise<CompiledApp> {
    const key = `${appId}\u0000${version}`;
    let app = this.apps.get(key);
    if (!app) {
      app = this.load(appId, version).then((definition) => {
        if (definition === undefined) throw new WorkflowNotFoundError(`app ${appId} version ${version}`);
        const compiled = compileStored(definition);
        let versions = this.loaded.get(appId);
        if (!versions) this.loaded.set(appId, (versions = new Map()));
        versions.set(version, compiled);
        return compiled;
      });
      app.catch(() => this.apps.delete(key));
      this.apps.set(key, app);
    }
    return app;
  }
}

export function graphOf(app: CompiledApp, topic: string): CompiledGraph | undefined {
  return app.graphs.find((g) => g.subscribes === topic);
}

/** What one transaction did that must be acted on after it commits. */
export interface Effects {
  /** partition\0queue of jobs enqueued, to wake idle engines. */
  wakes: Set<string>;
  /** Jobs of interrupted workflows to cancel. */
  cancels: string[];
  /** Events to publish once the transaction committed, in order (a Scope with `publishAfterCommit`). */
  events: EmitPayload[];
}

export interface Scope {
  db: Db;
  versions: Versions;
  logger: Logger;
  effects: Effects;
  /**
   * The caller publishes the events of the transaction itself once it committed (tx.afterCommit on a
   * node with a bus): no emit job, whose enqueue, hand-off, run and completion stood between a
   * workflow's last transition and its pubsub caller. As with the job, a rolled-back transition
   * publishes nothing; a node that dies between the commit and the publication loses the message (NATS
   * core delivers at most once anyway), and pubsub then reads the outcome from Postgres.
   */
  publishAfterCommit?: boolean;
}

export function newEffects(): Effects {
  return { wakes: new Set(), cancels: [], events: [] };
}

/**
 * What a transaction has changed but not written yet, and the workflows it has locked. The writes of
 * every transition of a batch go out together at the end (one statement per table, not one per step);
 * a workflow loaded twice in one transaction (a parent whose children finish in the same batch) is the
 * same Run, so the second transition sees the first's changes though they are not written yet.
 */
interface Pending {
  runs: Map<string, Run>;
  /** Workflows started in this transaction and not written yet (their state comes from `workflows`). */
  inserts: Map<string, WorkflowRow>;
  /**
   * Activity records to write, by workflow+activity+dimension; `entered`: entered in this transaction;
   * `mode`: how its Run knows the stored record (see Run.modeOf).
   */
  activities: Map<string, StagedRecord>;
  /** Workflow rows to write, by id: the last state staged wins. */
  workflows: Map<string, StagedWorkflow>;
  /** Jobs to enqueue; a step's job is linked to its activity record, which gets the job's id. */
  jobs: { job: NewJob; step?: ActivityRecord }[];
  /** Outputs of fan-out children that ended, for their parent's fan-in. */
  fanin: FaninRow[];
  /** Events to publish after the commit, by partition: one emit job each per flush. */
  emits: Map<string, EmitPayload[]>;
  /** Workflows this transaction inserted, and which of their records it has written (workflow\0activity\0dimension). */
  created: Set<string>;
  /** Workflows whose row a flush of this transaction has written already: no longer as loaded. */
  rewritten: Set<string>;
  written: Set<string>;
}

interface FaninRow {
  workflow_id: string;
  activity: string;
  dimension: string;
  idx: number;
  child_id: string;
  output: unknown;
}

export interface StagedWorkflow {
  id: string;
  status: number;
  data: Record<string, unknown>;
  expire: number;
  ended?: boolean;
  output?: unknown;
}

/**
 * A record staged: changed in place until it is written (Run.flush), then completed by flushPending and
 * sent as it is. Made with every field (undefined ones too): one shape for the writer's getters.
 */
export type StagedRecord = { workflowId: string; record: ActivityRecord; entered: boolean; mode?: RecordMode; day?: string };

/**
 * transition_write's record columns ($1-$15, in order). Empty fields go as NULL, which the statement
 * reads as their defaults. The jsonb ones go as one JSON array each (transitionWriteParams).
 */
const RECORD_COLUMNS: [ColumnType, (r: StagedRecord) => unknown][] = [
  ['text', (r) => r.workflowId],
  ['text', (r) => r.record.activity],
  ['text', (r) => r.record.dimension],
  ['text', (r) => r.record.type],
  ['text', (r) => r.record.state],
  ['text', (r) => r.record.job_id],
  ['jsonb', (r) => r.record.input],
  ['jsonb', (r) => r.record.output],
  ['jsonb', (r) => r.record.hook],
  ['int4', (r) => r.record.attempts || undefined],
  ['jsonb', (r) => (r.record.errors && r.record.errors.length > 0 ? r.record.errors : undefined)],
  ['int4', (r) => r.record.children_open],
  ['int4', (r) => (r.entered ? 1 : undefined)],
  ['text', (r) => r.mode],
  ['date', (r) => r.day],
];

/**
 * transition_write's parameters: the records' columns, the workflows (JSON: undefined fields left out,
 * read as NULL), the fan-in outputs (JSON).
 */
export function transitionWriteParams(
  records: readonly StagedRecord[],
  workflows: readonly (StagedWorkflow & { start_day?: string })[],
  fanin: string | null,
): unknown[] {
  return [...encodeColumnsJsonArrays(records, RECORD_COLUMNS), workflows.length > 0 ? JSON.stringify(workflows) : null, fanin];
}

/** workflows_insert's columns ($1-$13, in order): a started workflow with its state after its first transitions. The jsonb ones go as one JSON array each. */
type InsertRow = Omit<WorkflowRow, 'start_day'> & { expire: number };
const INSERT_COLUMNS: [ColumnType, (w: InsertRow) => unknown][] = [
  ['text', (w) => w.id],
  ['text', (w) => w.app_id],
  ['text', (w) => w.version],
  ['text', (w) => w.topic],
  ['text', (w) => w.partition],
  ['int8', (w) => w.status],
  ['jsonb', (w) => w.data],
  ['jsonb', (w) => w.search],
  ['text', (w) => w.parent_id],
  ['text', (w) => w.parent_activity],
  ['text', (w) => w.parent_dimension],
  ['int4', (w) => w.parent_index],
  ['int4', (w) => w.expire],
];

const pendingByScope = new WeakMap<Scope, Pending>();

function pendingOf(s: Scope): Pending {
  let p = pendingByScope.get(s);
  if (!p) {
    p = {
      runs: new Map(),
      inserts: new Map(),
      activities: new Map(),
      workflows: new Map(),
      jobs: [],
      fanin: [],
      emits: new Map(),
      created: new Set(),
      rewritten: new Set(),
      written: new Set(),
    };
    pendingByScope.set(s, p);
  }
  return p;
}

/**
 * A statement that reads or references workflow rows: the workflows this transaction started are
 * written first (a hook registration, a child listing and the like need their rows).
 */
async function runNow<R = any>(s: Scope, op: Parameters<Db['run']>[0], params: unknown[]): Promise<R[]> {
  if (pendingByScope.get(s)?.inserts.size) await flushPending(s);
  return s.db.run<R>(op, params);
}

/**
 * Writes what the transaction's transitions staged: the jobs (one enqueue), the
 * activity records and the workflow rows (one statement each). Called at the end of every entry point
 * with `publish` (the staged events become emit jobs then), and before a statement that must see the
 * staged rows (an interrupt's status check, its steps).
 */
export async function flushPending(s: Scope, publish = false): Promise<void> {
  const p = pendingByScope.get(s);
  if (!p) return;
  // The insert, the enqueue and the write go out together (the transaction's connection pipelines
  // them) and are awaited in order below: the records name their steps' jobs by ids made here,
  // not by the enqueue's answer.
  let inserted: Promise<unknown> | undefined;
  let enqueued: Promise<unknown> | undefined;
  if (p.inserts.size > 0) {
    // Stored with the state their first transitions left them in: no update of a row just inserted.
    // One written while its transitions still run (a statement that needs its row, a fan-out's batch)
    // has no staged state yet: it goes in with its Run's current one, so it is not stored as finished.
    const rows = [...p.inserts.values()].map((w) => {
      const state = p.workflows.get(w.id);
      p.workflows.delete(w.id);
      const run = p.runs.get(w.id);
      // No state staged yet: written mid-transition (a statement needed its row, a fan-out's batch), so
      // still open; its state follows in this transaction's write. Stored as finished, it would get an
      // expiry (and an expiry partition) while it runs.
      // Every field named (not `...w`): a spread's copy grew a property store for `expire`.
      const row: InsertRow = {
        id: w.id,
        app_id: w.app_id,
        version: w.version,
        topic: w.topic,
        partition: w.partition,
        status: state?.status ?? run?.status ?? OPEN_PLACEHOLDER,
        data: state?.data ?? run?.data ?? {},
        search: w.search,
        parent_id: w.parent_id,
        parent_activity: w.parent_activity,
        parent_dimension: w.parent_dimension,
        parent_index: w.parent_index,
        expire: state?.expire ?? DEFAULT_EXPIRE_S,
      };
      return row;
    });
    p.inserts.clear();
    for (const w of rows) p.created.add(w.id);
    // One workflow: its id is taken. Several (pubs written together): the caller retries them one by one.
    const taken = (err: unknown) =>
      (err as { code?: string }).code === '23505' && rows.length === 1 ? new DuplicateWorkflowError(rows[0]!.id) : err;
    // At an entry point's end nothing waits for its answer: its failure (a taken id) fails the
    // COMMIT sent behind the write, which then need not wait for it (a round trip of every pub).
    if (publish && s.db.runLast)
      s.db.runLast('workflows_insert', encodeColumnsJsonArrays(rows, INSERT_COLUMNS), taken).catch(() => undefined);
    else
      inserted = s.db.run('workflows_insert', encodeColumnsJsonArrays(rows, INSERT_COLUMNS)).catch((err: unknown) => {
        throw taken(err);
      });
  }
  // At the end of an entry point (`publish`), one emit job per partition for all the events the
  // transaction staged (a fan-in's batch of children ends with thousands of outputs): one job to
  // claim, run and record instead of one per event. Flushes in between keep them staged.
  if (publish && s.publishAfterCommit) {
    for (const events of p.emits.values()) s.effects.events.push(...events);
    p.emits.clear();
  } else if (publish) {
    for (const [partition, events] of p.emits) {
      for (const chunk of emitChunks(events)) {
        const payload: EmitJobPayload = { events: chunk };
        p.jobs.push({ job: { partition, type: EMIT_TYPE, queue: DEFAULT_QUEUE, payload } });
      }
    }
    p.emits.clear();
  }
  const jobs = p.jobs.splice(0);
  // The partition of a workflow's rows: its row's, read when it was loaded; absent for one this
  // transaction started (null: today's, which its insert took).
  const dayOf = (workflowId: string) => p.runs.get(workflowId)?.row.start_day;
  if (jobs.length > 0) {
    for (const j of jobs) j.job.id ??= uuidv7();
    enqueued = s.db.enqueue(jobs.map((j) => j.job));
    for (const j of jobs) {
      s.effects.wakes.add(wakeKeyOf(j.job.partition, j.job.queue ?? DEFAULT_QUEUE));
      // The step's link: its record holds the job's id (the continuation finds the record by it),
      // written below with the record, which its step staged.
      if (j.step) j.step.job_id = j.job.id!;
    }
  }
  let records: StagedRecord[] = [];
  if (p.activities.size > 0) {
    records = new Array<StagedRecord>(p.activities.size);
    let i = 0;
    // Keys then values, not entries: an entry is an array per record.
    for (const k of p.activities.keys()) {
      const staged = p.activities.get(k)!;
      // A new workflow's record written for the first time cannot conflict: a plain insert (its day: today's).
      const fresh = p.created.has(staged.workflowId) && !p.written.has(k);
      if (fresh) {
        p.written.add(k);
        staged.mode = 'i';
      } else staged.day = dayOf(staged.workflowId);
      // Not staged any more once cleared below: completed in place rather than copied.
      records[i++] = staged;
    }
    p.activities.clear();
  }
  const fanin = p.fanin.length > 0 ? JSON.stringify(p.fanin.splice(0)) : null;
  let workflows: (StagedWorkflow & { start_day?: string })[] = [];
  if (p.workflows.size > 0) {
    workflows = [...p.workflows.values()].map((w) => ({ ...w, start_day: dayOf(w.id) }));
    for (const w of workflows) p.rewritten.add(w.id);
    p.workflows.clear();
  }
  // The records, workflow rows and fan-in outputs in one statement: one round trip per transaction.
  let written: Promise<unknown> | undefined;
  if (records.length > 0 || workflows.length > 0 || fanin) {
    const params = transitionWriteParams(records, workflows, fanin);
    // The entry point's last write: the COMMIT goes on the wire behind it rather than after its
    // answer (a round trip of every transition and pub). The statements before it are still awaited:
    // an enqueue may send more statements once it is answered, and those must precede the COMMIT.
    if (publish && s.db.runLast) {
      s.db.runLast('transition_write', params).catch(() => undefined);
      await inOrder(inserted, enqueued);
      return;
    }
    written = s.db.run('transition_write', params);
  }
  await inOrder(inserted, enqueued, written);
}

/** Effects.wakes keys by partition then queue: the same few are added for every job (a string built and hashed each time). */
const wakeKeys = new Map<string, Map<string, string>>();
const WAKE_KEYS_KEPT = 1000;

function wakeKeyOf(partition: string, queue: string): string {
  let byQueue = wakeKeys.get(partition);
  if (!byQueue) {
    // Bounded: partitions are the caller's to name.
    if (wakeKeys.size >= WAKE_KEYS_KEPT) wakeKeys.clear();
    wakeKeys.set(partition, (byQueue = new Map()));
  }
  let k = byQueue.get(queue);
  if (k === undefined) {
    if (byQueue.size >= WAKE_KEYS_KEPT) byQueue.clear();
    byQueue.set(queue, (k = `${partition}\u0000${queue}`));
  }
  return k;
}

/**
 * Statements sent together, awaited in the order they run: the first that failed is the error (those
 * after it fail only because the transaction is aborted, and their error would hide its code).
 */
async function inOrder(...sent: (Promise<unknown> | undefined)[]): Promise<void> {
  for (const p of sent) p?.catch(() => undefined);
  for (const p of sent) await p;
}

/**
 * The pass a dimension lies in: a hook answer's pass (`<dimension>,<n>`) lies in its hook's; a cycle's
 * pass (`/<n>`) and the first ('') in none but the first.
 */
function outerPass(dimension: string): string {
  const comma = dimension.lastIndexOf(',');
  return comma < 0 ? '' : dimension.slice(0, comma);
}

/** A record's key in a Run: the activity id alone in the first pass (no string built per record and lookup), else id\0dimension. */
const key = (activity: string, dimension: string) => (dimension === '' ? activity : `${activity}\u0000${dimension}`);
const num = (v: string | number) => (typeof v === 'number' ? v : Number(v));

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (typeof a === 'number' || typeof b === 'number') return String(a) === String(b) && a !== null && b !== null;
  return JSON.stringify(a) === JSON.stringify(b);
}

/** Does a transition's (or hook rule's) condition hold? `code` is the leg's response code (200 unless an activity answered 202). */
export function conditionHolds(c: CompiledCondition | undefined, ctx: MappingContext, code = 200): boolean {
  if (!c) return code === 200;
  if ((c.code ?? 200) !== code) return false;
  if (c.match.length === 0) return true;
  const results = c.match.map((m) => jsonEqual(evaluateMapping(m.expected, ctx), evaluateMapping(m.actual, ctx)));
  return c.gate === 'or' ? results.some(Boolean) : results.every(Boolean);
}

/**
 * What transition_write knows of a record: `i` not stored (a plain insert: an upsert's speculative
 * insertion costs a confirmation WAL record more), `u` stored, undefined not known (both upserted:
 * the statement's generic plan must reach them by key, see transition_write.sql).
 */
type RecordMode = 'u' | 'i';

/** One workflow inside one transaction: its row (locked) and activity records, changed in memory and written by flush(). */
class Run {
  private readonly records = new Map<string, ActivityRecord>();
  /**
   * The records changed since the last flush(), by key: CHANGED, ENTERED (entered in this transaction),
   * UNSTORED (new since the workflow was loaded, and not staged yet: not known stored). One map, not a
   * set each (and a set of every stored key): a Run is made per workflow per step, and its sets were
   * the largest allocation of a step's load. Made when a record changes, dropped when they are staged
   * (a Map's clear() allocates a new table; most Runs are staged once).
   */
  private changes: Map<string, number> | undefined;
  status: number;
  data: Record<string, unknown>;
  /** Its data was patched (job maps) since it was loaded: its row is written even if the semaphore is back where it was. */
  private dataChanged = false;
  private wasOpen: boolean;
  private interruptedHere = false;
  /**
   * Its stored records are known (those loaded, and those staged since: not UNSTORED): open when loaded (its lock keeps others from writing
   * them), or started in this transaction. Stays so when it finishes here: its last transition's
   * records are still plain updates and inserts, not upserts.
   */
  private readonly known: boolean;

  constructor(
    private readonly s: Scope,
    readonly row: WorkflowRow,
    readonly app: CompiledApp,
    readonly graph: CompiledGraph,
    records: readonly ActivityRecord[],
    /** The dimensions whose records were loaded; undefined: all of them. */
    private loadedDimensions?: ReadonlySet<string>,
  ) {
    for (const r of records) this.records.set(key(r.activity, r.dimension), r);
    this.status = num(row.status);
    // Counted on: the records of a workflow open when loaded, or started here (no stored row: no start_day);
    // a finished one is rarely written again, so its writes are upserts.
    this.known = this.status > 0 || (records.length === 0 && row.start_day === undefined);
    // Patched in place (job.maps): the row is this Run's own (read for it, or made for it), so not copied.
    this.data = row.data ?? {};
    this.wasOpen = this.status > 0 || records.length === 0;
  }

  get open(): boolean {
    return this.status > 0 && !this.interruptedHere;
  }

  /** Are the records of `dimension`, and of the passes it lies in, in memory? */
  holds(dimension: string): boolean {
    if (!this.loadedDimensions) return true;
    for (let d = dimension; d !== ''; d = outerPass(d)) if (!this.loadedDimensions.has(d)) return false;
    return true;
  }

  /** Loads the records of a dimension this Run was loaded without (another pass of a cycle, a hook's answer), with its outer passes'. */
  async holdDimension(dimension: string): Promise<void> {
    if (this.holds(dimension)) return;
    const missing: string[] = [];
    for (let d = dimension; d !== ''; d = outerPass(d)) if (!this.loadedDimensions!.has(d)) missing.push(d);
    // A new set: the one it was loaded with may be shared (FIRST_PASS).
    this.loadedDimensions = new Set([...this.loadedDimensions!, ...missing]);
    const records = await this.s.db.run<ActivityRecord>('activities_of_dimensions', [[this.row.id], missing, [this.row.start_day]]);
    for (const r of records) {
      const k = key(r.activity, r.dimension);
      if (this.records.has(k)) continue;
      this.records.set(k, r);
    }
  }

  /**
   * Its row stays as stored: loaded (locked), not started or written by this transaction, still open,
   * and its semaphore and data as the row holds them.
   */
  private unchanged(p: Pending): boolean {
    const id = this.row.id;
    if (p.inserts.has(id) || p.created.has(id) || p.rewritten.has(id)) return false;
    // Open only: a finished row written again keeps its old behaviour (its finish and expiry set again).
    return this.status > 0 && this.status === num(this.row.status) && !this.dataChanged;
  }

  /**
   * How a record is written (RecordMode): known only for a workflow open when loaded (then the records
   * of a loaded dimension are all in memory) or started here.
   */
  private modeOf(r: ActivityRecord, flags: number): RecordMode | undefined {
    if (!this.known) return undefined;
    if ((flags & UNSTORED) === 0) return 'u';
    return !this.loadedDimensions || this.loadedDimensions.has(r.dimension) ? 'i' : undefined;
  }

  /** How many records (passes) an activity has, those of dimensions not in memory counted in Postgres. */
  private async passesOf(activity: string): Promise<number> {
    let passes = 0;
    const inMemory = new Set<string>();
    for (const r of this.records.values()) {
      inMemory.add(r.dimension);
      if (r.activity === activity) passes += 1;
    }
    if (!this.loadedDimensions) return passes;
    const [row] = await this.s.db.run<{ n: number }>('activity_passes', [this.row.id, activity, [...inMemory]]);
    return passes + (row?.n ?? 0);
  }

  record(activity: string, dimension: string): ActivityRecord | undefined {
    return this.records.get(key(activity, dimension));
  }

  /** An activity's record in the passes `dimension` lies in (a hook answer's pass lies in its hook's), else of the first. */
  private outer(activity: string, dimension: string): ActivityRecord | undefined {
    for (let d = outerPass(dimension); d !== ''; d = outerPass(d)) {
      const r = this.records.get(key(activity, d));
      if (r) return r;
    }
    return this.records.get(activity);
  }

  /**
   * The mapping context seen from `dimension`, of what `reads` names only (a mapping reads nothing
   * else): each activity's record of that pass, else of the first. Built per entry and completion,
   * it was a view of every record of the workflow and a third of a step's allocations.
   */
  context(dimension: string, reads: MappingReads, self?: ActivityRecord): MappingContext {
    let activities: Record<string, ActivityData> | undefined;
    if (reads.activities.length > 0) {
      activities = {};
      for (const id of reads.activities) {
        const r = this.records.get(key(id, dimension)) ?? (dimension === '' ? undefined : this.outer(id, dimension));
        if (r) activities[id] = view(r);
      }
    }
    return {
      activities,
      self: reads.self && self ? view(self) : undefined,
      job: reads.job ? this.jobView() : undefined,
      app: reads.app ? { id: this.app.id, version: this.app.version, settings: this.app.settings } : undefined,
    };
  }

  /** `$job` of the mapping context: the workflow's data and metadata, its semaphore as it is now. */
  private jobView(): MappingContext['job'] {
    return {
      data: this.data,
      metadata: { jid: this.row.id, app: this.row.app_id, vrs: this.row.version, tpc: this.row.topic, js: this.status },
    };
  }

  private put(r: ActivityRecord, entered: boolean): void {
    const k = key(r.activity, r.dimension);
    const changes = (this.changes ??= new Map());
    const flags = changes.get(k);
    // A key not in memory is a record not stored (of a loaded dimension: every stored one is in memory).
    const unstored = flags === undefined ? (this.records.has(k) ? 0 : UNSTORED) : flags & UNSTORED;
    changes.set(k, (flags ?? 0) | CHANGED | unstored | (entered ? ENTERED : 0));
    this.records.set(k, r);
  }

  /**
   * Enters an activity: opens it (the semaphore counts it) and starts what it does. A promise only
   * when that waits (a statement, a child): a worker's or a trigger's entry runs through without one
   * (an async function's frame and promise per entry and completion were a tenth of a step's
   * allocations).
   */
  enter(id: string, dimension: string, triggerData?: unknown): Promise<void> | undefined {
    // Interrupted or failed by an earlier activity of this transaction: nothing more starts.
    if (this.status < 0) return undefined;
    const act = this.graph.activities[id];
    if (!act) throw new Error(`activity ${id} is not in graph ${this.graph.subscribes}`);
    if (act.parents.length > 1) {
      // A join: entered once per pass, when the last of its parents that ran in this pass is done.
      if (this.record(id, dimension)) return undefined;
      const ran = act.parents.map((p) => this.record(p, dimension)).filter((r) => r !== undefined);
      if (ran.some((r) => r.state !== 'done')) return undefined;
    }
    this.status += 1;
    const rec: ActivityRecord = {
      activity: id,
      dimension,
      type: act.type,
      state: 'running',
      job_id: null,
      input: null,
      output: null,
      hook: null,
      attempts: 0,
      errors: NO_ERRORS,
    };
    const reads = readsOf(act);
    // Before the record is put: an entry's mappings see the activity's earlier pass, not this one.
    const ctx = reads.enter.any ? this.context(dimension, reads.enter) : NO_CONTEXT;
    // A fan-out maps its input once per element (with $item), when it starts each child.
    const input = act.input?.maps && !act.items ? evaluateMapping(act.input.maps, ctx) : undefined;
    if (input !== undefined) rec.input = { data: input };
    this.put(rec, true);
    switch (act.type) {
      case 'trigger':
        rec.input = { data: triggerData ?? {} };
        return this.complete(act, rec, { output: triggerData ?? {} });
      case 'worker':
        this.step(this.workerJob(act, input), rec);
        return undefined;
      default:
        return this.enterWaiting(act, rec, ctx, input);
    }
  }

  /** enter() of the activities that may wait: hooks, awaits, cycles, signals, interrupts. */
  private async enterWaiting(act: CompiledActivity, rec: ActivityRecord, ctx: MappingContext, input: unknown): Promise<void> {
    const { id } = act;
    const { dimension } = rec;
    switch (act.type) {
      case 'hook': {
        if (act.sleep !== undefined) {
          const seconds = Number(evaluateMapping(act.sleep, ctx));
          const ms = Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : 0;
          rec.state = 'waiting';
          this.step(
            {
              partition: this.row.partition,
              type: SLEEP_TYPE,
              queue: DEFAULT_QUEUE,
              payload: { workflow: this.row.id, activity: id, dimension },
              ...(ms > 0 ? { runAt: new Date(Date.now() + ms) } : {}),
            },
            rec,
          );
          return;
        }
        if (act.hookTopics.length > 0) return this.wait(act, rec);
        return this.complete(act, rec, { output: {} });
      }
      case 'await':
        return act.items ? this.startFanOut(act, rec, ctx) : this.startChild(act, rec, input);
      case 'cycle': {
        await this.complete(act, rec, { output: {} });
        const target = act.ancestor!;
        return this.enter(target, `/${await this.passesOf(target)}`);
      }
      case 'signal': {
        const data = act.signal?.maps ? evaluateMapping(act.signal.maps, ctx) : (input ?? {});
        if (act.subtype === 'all') {
          const r = evaluateMapping(act.resolver!.maps!, ctx) as { key_name?: unknown; key_value?: unknown } | undefined;
          const reached = await deliverHookAllStaged(
            this.s,
            this.row.app_id,
            act.topic!,
            data,
            { [String(r?.key_name)]: r?.key_value },
            hookAnswer(act.status, act.code),
          );
          return this.complete(act, rec, { output: { ids: reached.filter((id) => id !== this.row.id) } });
        }
        const found = await deliverHookStaged(this.s, this.app, act.topic!, data, {
          keep: false,
          except: this.row.id,
          answer: hookAnswer(act.status, act.code),
        });
        return this.complete(act, rec, { output: { id: found ?? null } });
      }
      case 'interrupt': {
        const target = act.target ? evaluateMapping(act.target, ctx) : undefined;
        const reason = act.reason ? evaluateMapping(act.reason, ctx) : undefined;
        const how = { descend: act.descend ?? false, throw: act.throw ?? true, code: act.code ?? INTERRUPT_CODE };
        if (target === undefined || target === this.row.id) {
          rec.state = 'done';
          this.status -= 1;
          await this.interruptSelf({ reason: typeof reason === 'string' ? reason : 'interrupted by its own interrupt activity', ...how });
          return;
        }
        const done = await interruptStaged(this.s, String(target), {
          reason: typeof reason === 'string' ? reason : `interrupted by ${this.row.id}`,
          ...how,
        });
        return this.complete(act, rec, { output: { interrupted: done } });
      }
    }
  }

  /**
   * Stages a step's job, marked with the plugin's continuation and linked to the activity (whose
   * record gets the job's id when it is enqueued, with the batch): its completion comes back through
   * the continuation.
   */
  private step(job: NewJob, rec: ActivityRecord): void {
    job.continuation = STEP_CONTINUATION;
    pendingOf(this.s).jobs.push({ job, step: rec });
  }

  /** A hook activity starts waiting: registers for its topics, and takes a signal that came early. */
  private async wait(act: CompiledActivity, rec: ActivityRecord): Promise<void> {
    rec.state = 'waiting';
    for (const topic of act.hookTopics) {
      const direct = topicNamesWorkflow(this.graph, topic);
      await runNow(this.s, 'topic_lock', [this.row.app_id, topic, direct ? this.row.id : null]);
      await runNow(this.s, 'hook_register', [this.row.app_id, topic, this.row.id, act.id, rec.dimension]);
    }
    const signals = await runNow<{ id: string; topic: string; data: unknown; status: string | null; code: number | null }>(
      this.s,
      'signals_pending',
      [this.row.app_id, act.hookTopics, this.row.id],
    );
    for (const signal of signals) {
      const rules = this.graph.hooks.filter((h) => h.topic === signal.topic && h.to === act.id);
      if (!rules.some((rule) => this.ruleMatches(rule, rec, signal.data))) continue;
      await runNow(this.s, 'signal_take', [signal.id]);
      await this.answer(act, rec, signal.data, hookAnswer(signal.status, signal.code));
      // Answered with 202 it still waits, and takes the next kept signal that matches.
      if (rec.state !== 'waiting' || this.status < 0) return;
    }
  }

  ruleMatches(rule: CompiledHookRule, rec: ActivityRecord, data: unknown): boolean {
    if (!rule.conditions || rule.conditions.match.length === 0) return conditionHolds(rule.conditions, NO_CONTEXT);
    return conditionHolds(rule.conditions, this.context(rec.dimension, ruleReads(rule), { ...rec, hook: { data } }));
  }

  private async startChild(act: CompiledActivity, rec: ActivityRecord, input: unknown): Promise<void> {
    const graph = graphOf(this.app, act.topic!)!;
    const childId = `${this.row.id}-${act.id}${rec.dimension.replace(/\//g, '-')}-${randomUUID().slice(0, 8)}`;
    const fireAndForget = act.await === false;
    const started = await startStaged(this.s, {
      app: this.app,
      graph,
      id: childId,
      data: input ?? {},
      search: {},
      partition: this.row.partition,
      ...(fireAndForget ? {} : { parent: { id: this.row.id, activity: act.id, dimension: rec.dimension } }),
    });
    rec.job_id = childId;
    if (fireAndForget) return this.complete(act, rec, { output: { id: childId } });
    rec.state = 'waiting';
    // A child that ended in the transaction that started it could not reach this record (not written
    // yet): its outcome is taken here.
    const child = started.outcome();
    if (child.status === 0) return this.complete(act, rec, { output: child.output });
    if (child.status === FAILED) return this.fail(rec, child.output, 1);
    if (child.status === INTERRUPTED && child.interruption) {
      if (child.interruption.throw) return this.fail(rec, interruptError(childId, child.interruption), 1);
      return this.complete(act, rec, { output: interruptedOutput(child.interruption) });
    }
  }

  /**
   * An await with `items`: one child per element, started in this transaction and written in batches;
   * the activity waits with a count of open children that each child's end decrements (childEnded).
   */
  private async startFanOut(act: CompiledActivity, rec: ActivityRecord, ctx: MappingContext): Promise<void> {
    const items = evaluateMapping(act.items!, ctx);
    if (!Array.isArray(items)) return this.fail(rec, fanOutItemsError(this.graph.subscribes, act, items), 1);
    const fireAndForget = act.await === false;
    const base = `${this.row.id}-${act.id}${rec.dimension.replace(/\//g, '-')}`;
    const ids = items.map((_, i) => `${base}-${i}`);
    rec.input = { data: { count: items.length } };
    if (items.length === 0) return this.complete(act, rec, { output: fireAndForget ? { ids } : { items: [], ids } });
    const graph = graphOf(this.app, act.topic!)!;
    if (!fireAndForget) {
      // Waiting before the first child starts: a child that ends in this transaction counts itself in.
      rec.state = 'waiting';
      rec.children_open = items.length;
    }
    for (let i = 0; i < items.length; i++) {
      // A child that failed at once failed this workflow: the rest are not started.
      if (this.status < 0 || (!fireAndForget && rec.state !== 'waiting')) return;
      const data = act.input?.maps ? evaluateMapping(act.input.maps, { ...ctx, item: items[i], index: i }) : items[i];
      await startStaged(this.s, {
        app: this.app,
        graph,
        id: ids[i]!,
        data: data ?? {},
        search: {},
        partition: this.row.partition,
        ...(fireAndForget ? {} : { parent: { id: this.row.id, activity: act.id, dimension: rec.dimension, index: i } }),
      });
      // Batches keep each statement's JSON and the memory they are built in bounded.
      if ((i + 1) % FANOUT_BATCH === 0 && i + 1 < items.length) await flushPending(this.s);
    }
    if (fireAndForget) return this.complete(act, rec, { output: { ids } });
  }

  /**
   * A fan-out child ended (or was interrupted without throw): its output is kept for the fan-in and the
   * open count goes down; the child that brings it to 0 completes the activity with every output in
   * element order. The parent's row is locked, so concurrent ends count one at a time.
   */
  async childEnded(act: CompiledActivity, rec: ActivityRecord, child: { id: string; index: number }, output: unknown): Promise<void> {
    const p = pendingOf(this.s);
    p.fanin.push({ workflow_id: this.row.id, activity: act.id, dimension: rec.dimension, idx: child.index, child_id: child.id, output });
    rec.children_open = (rec.children_open ?? 1) - 1;
    this.put(rec, false);
    if (rec.children_open > 0) return;
    await flushPending(this.s);
    const rows = await this.s.db.run<{ idx: number; child_id: string; output: unknown }>('fanin_take', [
      this.row.id,
      act.id,
      rec.dimension,
    ]);
    rows.sort((a, b) => a.idx - b.idx);
    await this.complete(act, rec, { output: { items: rows.map((r) => r.output), ids: rows.map((r) => r.child_id) } });
  }

  /**
   * A fan-out child failed (or was interrupted with throw): the activity fails, and a job interrupts
   * its other children after this transaction (STOP_CHILDREN_TYPE).
   */
  async fanOutFailed(act: CompiledActivity, rec: ActivityRecord, failedChild: string, error: unknown): Promise<void> {
    this.fail(rec, error, 1);
    rec.children_open = null;
    const payload: StopChildrenPayload = {
      app: this.row.app_id,
      workflow: this.row.id,
      activity: act.id,
      dimension: rec.dimension,
      reason: `child ${failedChild} of fan-out ${act.id} failed`,
    };
    pendingOf(this.s).jobs.push({ job: { partition: this.row.partition, type: STOP_CHILDREN_TYPE, queue: DEFAULT_QUEUE, payload } });
    await this.flush();
  }

  /** Where the workflow stands after flush(): its status, output when it ended, how it was interrupted. */
  outcome(): { status: number; output: unknown; interruption?: Required<InterruptOptions> } {
    return {
      status: this.status,
      output: this.status === 0 ? this.data : this.failedWith,
      ...(this.interruption ? { interruption: this.interruption } : {}),
    };
  }

  /** An activity finished: its record, the workflow data (job.maps), the semaphore, then its transitions. */
  complete(
    act: CompiledActivity,
    rec: ActivityRecord,
    outcome: { output?: unknown; hook?: unknown; code?: number },
  ): Promise<void> | undefined {
    rec.state = 'done';
    if (outcome.output !== undefined) rec.output = { data: outcome.output };
    if (outcome.hook !== undefined) rec.hook = { data: outcome.hook };
    this.put(rec, false);
    return this.answered(act, rec, outcome.code ?? 200, true);
  }

  /**
   * A waiting hook activity is answered (hook(), a signal activity, a signal kept for it): a 202
   * answers and keeps it waiting, the transitions that name 202 entered in a pass of this answer's
   * own (`<its dimension>,<n>`, where the hook's record of that answer is, so their mappings read this
   * answer's data); an error that no transition routes (none names its code) fails it, and so its
   * workflow; anything else completes it.
   */
  answer(act: CompiledActivity, rec: ActivityRecord, data: unknown, answer: HookAnswer): Promise<void> | undefined {
    if (answer.code === REENTER_CODE) {
      rec.attempts += 1;
      rec.hook = { data };
      rec.output = { data };
      this.put(rec, false);
      const answered: ActivityRecord = { ...rec, dimension: `${rec.dimension},${rec.attempts}`, state: 'done', errors: NO_ERRORS };
      this.put(answered, true);
      return this.answered(act, answered, REENTER_CODE, false);
    }
    const releasing = runNow(this.s, 'hook_release', [this.row.id, act.id, rec.dimension]);
    if (answer.error && !act.transitions.some((t) => t.conditions?.code === answer.code))
      return releasing.then(() => {
        rec.hook = { data };
        this.fail(rec, { code: answer.code, data }, 1);
      });
    // A hook's data is also its output (`{review.output.data.approved}` in a transition reads it).
    return releasing.then(() => this.complete(act, rec, { hook: data, output: data, code: answer.code }));
  }

  /**
   * After an activity's record took its outcome: the workflow data (job.maps), the semaphore (when it
   * `closes` the activity), the emit, then its transitions for `code`.
   */
  private answered(act: CompiledActivity, rec: ActivityRecord, code: number, closes: boolean): Promise<void> | undefined {
    const reads = readsOf(act).complete;
    // Built only for a job.maps or a transition's match, of what they read.
    const ctx = act.job?.maps || reads.conditional ? this.context(rec.dimension, reads, rec) : NO_CONTEXT;
    if (act.job?.maps) {
      const patch = evaluateMapping(act.job.maps, ctx);
      if (patch && typeof patch === 'object')
        for (const [k, v] of Object.entries(patch as Record<string, unknown>))
          if (v !== undefined) {
            this.data[k] = v;
            this.dataChanged = true;
          }
    }
    if (closes) this.status -= 1;
    if (act.emit) emit(this.s, this.row, this.graph.publishes ?? this.graph.subscribes, 'emit', this.status, this.data);
    // The records are as they were (job.data is this.data, patched in place): only the semaphore moved,
    // so the context is not built again. Taken before the first transition enters anything.
    const after: MappingContext = reads.conditional && reads.job ? { ...ctx, job: this.jobView() } : ctx;
    return this.transition(act, rec.dimension, after, code, 0);
  }

  /**
   * Enters the targets of `act`'s transitions from the `from`th on whose conditions hold, one after
   * the other; a promise from the first entry that waits on.
   */
  private transition(
    act: CompiledActivity,
    dimension: string,
    after: MappingContext,
    code: number,
    from: number,
  ): Promise<void> | undefined {
    const transitions = act.transitions;
    for (let i = from; i < transitions.length; i++) {
      if (this.status < 0) return undefined;
      const t = transitions[i]!;
      if (!conditionHolds(t.conditions, after, code)) continue;
      const entering = this.enter(t.to, dimension);
      if (entering) return entering.then(() => this.transition(act, dimension, after, code, i + 1));
    }
    return undefined;
  }

  /** A worker's attempt failed and the activity's retry allows another: its job is scheduled after `delayMs`. */
  retryStep(act: CompiledActivity, rec: ActivityRecord, error: unknown, delayMs: number): void {
    rec.errors = [...(rec.errors ?? []), error];
    const input = (rec.input as { data?: unknown } | null)?.data;
    this.step({ ...this.workerJob(act, input), runAt: new Date(Date.now() + delayMs) }, rec);
    this.put(rec, false);
  }

  /** A worker activity's step: a job of its topic in the workflow's partition (absent fields: the enqueue's defaults). */
  private workerJob(act: CompiledActivity, input: unknown): NewJob {
    return {
      partition: this.row.partition,
      type: act.topic!,
      queue: act.queue ?? DEFAULT_QUEUE,
      payload: input ?? {},
      continuation: STEP_CONTINUATION,
      maxAttempts: stepAttempts(act.retry).maxAttempts,
      timeoutMs: act.timeout ? Math.round(act.timeout * 1000) : undefined,
    };
  }

  /** A step's job failed for good: the activity records it and the workflow stops (status FAILED). */
  fail(rec: ActivityRecord, error: unknown, attempts: number): void {
    rec.state = 'failed';
    rec.attempts = attempts;
    rec.errors = [...(rec.errors ?? []), error];
    this.put(rec, false);
    this.status = FAILED;
    this.failedWith = { activity: rec.activity, error };
  }

  private failedWith: unknown;
  /** Interrupted by a statement of its own (interruptWorkflow): its row is final, nothing more is staged for it. */
  private final = false;

  interruptedElsewhere(): void {
    this.interruptedHere = true;
    this.status = INTERRUPTED;
    this.final = true;
    this.changes = undefined;
  }

  /** How this workflow interrupted itself: its parent's await hears it when the workflow is flushed. */
  private interruption: Required<InterruptOptions> | undefined;

  private async interruptSelf(how: Required<InterruptOptions>): Promise<void> {
    this.interruptedHere = true;
    this.status = INTERRUPTED;
    this.interruption = how;
    this.failedWith = interruptedOutput(how);
    await runNow(this.s, 'hooks_release_workflow', [this.row.id]);
    if (how.descend) {
      // This workflow is not written as interrupted yet: its children must not report to it as to an awaiting parent.
      for (const child of await runNow<{ id: string }>(this.s, 'workflow_children_open', [this.row.id]))
        await interruptStaged(this.s, child.id, { ...how, descend: true }, false);
    }
  }

  /**
   * A step's job succeeded after its workflow ended (interrupted, or failed by another branch): nothing
   * transitions, but the step ran, and its record is the only trace of that (a step's success leaves
   * no jobs_history row: the workflows continuation's recordsSuccess). So the record says done, with
   * the output, and the workflow's row is left as it ended.
   */
  recordAfterEnd(rec: ActivityRecord, output: unknown): void {
    rec.state = 'done';
    rec.output = { data: output };
    this.put(rec, false);
    this.stageChanges(pendingOf(this.s));
  }

  /** Stages the records changed since the last call for transition_write. */
  private stageChanges(p: Pending): void {
    // Staged: stored once written (a record staged again is written as first decided, below).
    const changes = this.changes;
    this.changes = undefined;
    if (!changes) return;
    // Keys then values, not entries: an entry is an array per record.
    for (const k of changes.keys()) {
      const flags = changes.get(k)!;
      const at = `${this.row.id}\u0000${k}`;
      const staged = p.activities.get(at);
      const record = this.records.get(k)!;
      // Staged before and not written yet: written as first decided (an insert stays one).
      if (staged) {
        staged.record = record;
        if (flags & ENTERED) staged.entered = true;
      } else
        p.activities.set(at, {
          workflowId: this.row.id,
          record,
          entered: (flags & ENTERED) !== 0,
          mode: this.modeOf(record, flags),
          day: undefined,
        });
    }
  }

  /**
   * Stages what changed (written by flushPending with the rest of the transaction); a workflow that
   * just finished publishes its output and completes its parent's await. A promise only when that
   * waits (a statement, the parent's transition): a step's flush runs through without one (an async
   * function's frame and promise per flush).
   */
  flush(): Promise<void> | undefined {
    if (this.final) return undefined;
    const p = pendingOf(this.s);
    this.stageChanges(p);
    const finished = this.wasOpen && this.status <= 0;
    // Staged again in this transaction (another child of this parent finished too): finished once.
    this.wasOpen = this.status > 0;
    const expire = this.graph.expire ?? DEFAULT_EXPIRE_S;
    const ended = this.status === INTERRUPTED || this.status === FAILED;
    if (ended && p.inserts.has(this.row.id)) {
      // Ended in the transaction that started it: inserted first, then finished with its output.
      p.workflows.set(this.row.id, { id: this.row.id, status: this.status, data: this.data, expire: -1 });
      return this.finishInserted(expire, finished);
    }
    if (ended)
      p.workflows.set(this.row.id, {
        id: this.row.id,
        status: this.status,
        data: this.data,
        expire,
        ended: true,
        output: this.failedWith ?? null,
      });
    else if (this.unchanged(p))
      // Neither its semaphore nor its data moved (a step of a chain, which enters the next): its row,
      // locked, stays as stored, not rewritten (a heap tuple and its WAL per step). What an earlier
      // transition of this transaction staged for it is dropped: the stored row is that state again.
      p.workflows.delete(this.row.id);
    else p.workflows.set(this.row.id, { id: this.row.id, status: this.status, data: this.data, expire });
    return finished ? this.finished() : undefined;
  }

  /** flush() of a workflow that ended in the transaction that started it: inserted first, then finished with its output. */
  private async finishInserted(expire: number, finished: boolean): Promise<void> {
    await flushPending(this.s);
    await runNow(this.s, 'workflow_finish', [this.row.id, this.failedWith ?? null, expire]);
    if (finished) await this.finished();
  }

  /** flush() of a workflow that just finished: its output is published, its parent's await hears of it. */
  private finished(): Promise<void> | undefined {
    const output = this.status === 0 ? this.data : this.failedWith;
    emit(this.s, this.row, this.graph.publishes ?? this.graph.subscribes, 'output', this.status, output);
    if (this.row.parent_id && this.status === 0) return completeAwait(this.s, this.row, this.data);
    if (this.row.parent_id && this.status === FAILED) return failAwait(this.s, this.row, this.failedWith);
    if (this.status === INTERRUPTED && this.interruption) return tellParentOfInterrupt(this.s, this.row, this.interruption);
    return undefined;
  }
}

/** Run.changes flags. */
const CHANGED = 1;
const ENTERED = 2;
const UNSTORED = 4;

/** The dimensions of a workflow loaded for steps of its first pass: shared, so never changed (Run.holdDimension copies it). */
const FIRST_PASS: ReadonlySet<string> = new Set(['']);
/** An entered record's errors until it has one (a new array is made when one is added, never pushed to). */
const NO_ERRORS: unknown[] = [];
/** The context of mappings that read nothing of it (literals, functions). */
const NO_CONTEXT: MappingContext = Object.freeze({});

/**
 * What an activity's mappings read of the context (mappingReads): at its entry (input, items, sleep,
 * signal, resolver, interrupt target and reason) and at its completion (job.maps and its
 * transitions' matches; `conditional`: some transition has a match). `any`: something at all.
 * Worked out once per compiled activity (graphs are immutable).
 */
interface ActivityReads {
  enter: MappingReads & { any: boolean };
  complete: MappingReads & { conditional: boolean };
}
const readsByActivity = new WeakMap<CompiledActivity, ActivityReads>();
function readsOf(act: CompiledActivity): ActivityReads {
  let reads = readsByActivity.get(act);
  if (!reads) {
    const enter = mappingReads([act.input?.maps, act.items, act.sleep, act.signal?.maps, act.resolver?.maps, act.target, act.reason]);
    const matches = act.transitions.flatMap((t) => (t.conditions?.match ?? []).flatMap((m) => [m.expected, m.actual]));
    reads = {
      enter: { ...enter, any: enter.activities.length > 0 || enter.self || enter.job || enter.app },
      complete: { ...mappingReads([act.job?.maps, ...matches]), conditional: matches.length > 0 },
    };
    readsByActivity.set(act, reads);
  }
  return reads;
}
const readsByRule = new WeakMap<CompiledHookRule, MappingReads>();
function ruleReads(rule: CompiledHookRule): MappingReads {
  let reads = readsByRule.get(rule);
  if (!reads) readsByRule.set(rule, (reads = mappingReads((rule.conditions?.match ?? []).flatMap((m) => [m.expected, m.actual]))));
  return reads;
}

function view(r: ActivityRecord): ActivityData {
  const out: ActivityData = {};
  if (r.input) out.input = r.input as ActivityData['input'] & object;
  if (r.output) out.output = r.output as ActivityData['output'] & object;
  if (r.hook) out.hook = r.hook as ActivityData['hook'] & object;
  return out;
}

/** JSON bytes of events one emit job carries at most (a single larger workflow's events go alone). */
export const EMIT_JOB_BYTES = 256 * 1024;

/**
 * A transaction's events in emit jobs under the job payload limit: a big batch's outputs together
 * were seen at 1.7 MB, refused by the enqueue, which rolled back every transition of the batch. The
 * events of one workflow stay in one job, in order (its emits before its output); each job is
 * published in order, and jobs of one transaction may run side by side.
 */
export function emitChunks(events: EmitPayload[], maxBytes = EMIT_JOB_BYTES): EmitPayload[][] {
  const byWorkflow = new Map<string, { events: EmitPayload[]; bytes: number }>();
  for (const e of events) {
    const bytes = JSON.stringify(e).length;
    const g = byWorkflow.get(e.id);
    if (g) {
      g.events.push(e);
      g.bytes += bytes;
    } else byWorkflow.set(e.id, { events: [e], bytes });
  }
  const chunks: EmitPayload[][] = [];
  let current: EmitPayload[] = [];
  let size = 0;
  for (const g of byWorkflow.values()) {
    if (current.length > 0 && size + g.bytes > maxBytes) {
      chunks.push(current);
      current = [];
      size = 0;
    }
    current.push(...g.events);
    size += g.bytes;
  }
  if (current.length > 0) chunks.push(current);
  return chunks;
}

/** Stages the job that publishes `data` after the transaction commits. */
function emit(s: Scope, row: WorkflowRow, topic: string, kind: EmitPayload['kind'], status: number, data: unknown): void {
  const payload: EmitPayload = { app: row.app_id, topic, id: row.id, kind, status, data };
  const emits = pendingOf(s).emits;
  const list = emits.get(row.partition);
  if (list) list.push(payload);
  else emits.set(row.partition, [payload]);
}

/**
 * Locks a workflow and loads what a transition needs (once per transaction); undefined when it is gone.
 * With a dimension, only the records of that pass and the first are read (as for a batch of steps).
 */
async function load(s: Scope, id: string, dimension?: string): Promise<Run | undefined> {
  const runs = pendingOf(s).runs;
  const held = runs.get(id);
  if (held) {
    if (dimension !== undefined) await held.holdDimension(dimension);
    return held;
  }
  if (dimension !== undefined) {
    await loadMany(s, [{ workflow: id, dimension }]);
    return runs.get(id);
  }
  const [row] = await s.db.run<WorkflowRow>('workflows_lock', [[id]]);
  if (!row) return undefined;
  const records = await s.db.run<ActivityRecord>('activities_of', [id]);
  const run = await runOf(s, row, records);
  runs.set(id, run);
  return run;
}

/**
 * Locks and loads many workflows in two round trips (those not loaded in this transaction yet), with
 * the records of the first pass ('') and of the steps' passes only. `locked`: rows the caller locked
 * already (steps_take_lock), so only the records are read.
 */
async function loadMany(s: Scope, steps: { workflow: string; dimension: string }[], locked?: WorkflowRow[]): Promise<void> {
  const runs = pendingOf(s).runs;
  const missing = [...new Set(steps.map((st) => st.workflow))].filter((id) => !runs.has(id));
  if (missing.length === 0) return;
  const wanted = new Set(missing);
  const rows = locked ? locked.filter((r) => wanted.has(r.id)) : await s.db.run<WorkflowRow>('workflows_lock', [missing]);
  if (rows.length === 0) return;
  const dimensions = [...new Set(['', ...steps.map((st) => st.dimension)])];
  const days = [...new Set(rows.map((r) => r.start_day))];
  const records = await s.db.run<ActivityRecord & { workflow_id: string }>('activities_of_dimensions', [
    rows.map((r) => r.id),
    dimensions,
    days,
  ]);
  const byWorkflow = new Map<string, ActivityRecord[]>();
  for (const r of records) {
    let list = byWorkflow.get(r.workflow_id);
    if (!list) byWorkflow.set(r.workflow_id, (list = []));
    list.push(r);
  }
  for (const row of rows) runs.set(row.id, await runOf(s, row, byWorkflow.get(row.id) ?? [], new Set(dimensions)));
}

/** runOf without a wait, when the workflow's app version is compiled already (every step's but the first of a version). */
function runReady(s: Scope, row: WorkflowRow, records: readonly ActivityRecord[], loadedDimensions?: ReadonlySet<string>): Run | undefined {
  const app = s.versions.ready(row.app_id, row.version);
  return app ? runWith(s, app, row, records, loadedDimensions) : undefined;
}

async function runOf(s: Scope, row: WorkflowRow, records: readonly ActivityRecord[], loadedDimensions?: ReadonlySet<string>): Promise<Run> {
  return runWith(s, await s.versions.get(row.app_id, row.version), row, records, loadedDimensions);
}

/** The Run of `row` on its compiled app version. */
function runWith(
  s: Scope,
  app: CompiledApp,
  row: WorkflowRow,
  records: readonly ActivityRecord[],
  loadedDimensions?: ReadonlySet<string>,
): Run {
  const graph = graphOf(app, row.topic);
  if (!graph) throw new WorkflowNotFoundError(`graph ${row.topic} of app ${row.app_id} version ${row.version}`);
  return new Run(s, row, app, graph, records, loadedDimensions);
}

export interface StartOptions {
  app: CompiledApp;
  graph: CompiledGraph;
  id: string;
  data: unknown;
  search: Record<string, unknown>;
  partition: string;
  /** `index`: a fan-out child's position in its parent's array. */
  parent?: { id: string; activity: string; dimension: string; index?: number };
}

/** Starts several workflows in the caller's transaction, written together. */
export async function startWorkflows(s: Scope, starts: StartOptions[]): Promise<void> {
  for (const o of starts) await startStaged(s, o);
  await flushPending(s, true);
}

/**
 * Creates a workflow and runs its trigger (and every activity that finishes at once), staged; its Run,
 * whose outcome() says where it stands then (a child can end in the transaction that starts it, before
 * its parent's await waits).
 */
async function startStaged(s: Scope, o: StartOptions): Promise<Run> {
  const row: WorkflowRow = {
    id: o.id,
    app_id: o.app.id,
    version: o.app.version,
    topic: o.graph.subscribes,
    partition: o.partition,
    status: 0,
    data: {},
    search: o.search,
    parent_id: o.parent?.id ?? null,
    parent_activity: o.parent?.activity ?? null,
    parent_dimension: o.parent?.dimension ?? null,
    parent_index: o.parent?.index ?? null,
  };
  const run = new Run(s, row, o.app, o.graph, []);
  const p = pendingOf(s);
  if (p.runs.has(o.id) || p.inserts.has(o.id)) throw new DuplicateWorkflowError(o.id);
  p.inserts.set(o.id, row);
  p.runs.set(o.id, run);
  const entering = run.enter(o.graph.trigger, '', o.data);
  if (entering) await entering;
  await run.flush();
  return run;
}

export interface StepOutcome {
  jobId: string;
  workflow: string;
  activity: string;
  dimension: string;
  state: 'completed' | 'failed' | 'cancelled';
  result?: unknown;
  error?: unknown;
  attempt: number;
}

/** A step job's final outcome, as the continuation that records it sees it. */
export interface StepJobOutcome {
  id: string;
  state: StepOutcome['state'];
  result?: unknown;
  error?: unknown;
  attempt: number;
}

/**
 * Steps' jobs ended (in the transaction that records them): each activity finishes and its workflow
 * moves on. The steps' workflows are locked in one statement, their records (each step's own among
 * them, found by its job id) read in the next, and everything the transitions write goes out together
 * at the end. Jobs that are no (longer a) step of any workflow are left alone.
 */
export async function finishStepJobs(s: Scope, jobs: StepJobOutcome[], ahead?: StepsTaken): Promise<void> {
  const { locking, taking } =
    ahead ??
    takeSteps(
      s.db,
      jobs.map((j) => j.id),
    );
  await inOrder(locking, taking);
  const lockedRows = await locking;
  const rows = await taking;
  const byId = new Map<string, StepJobOutcome>();
  for (const j of jobs) byId.set(j.id, j);
  // A step is the record holding its job's id while it runs (or, a sleep, waits): done or failed, its
  // transition happened. Records of jobs sent ahead whose outcome the store then refused are not
  // among the jobs: nothing was taken from them, they stay as they are. (Two arrays side by side,
  // not an object per step.)
  const stepRows: TakeRow[] = [];
  const stepJobs: StepJobOutcome[] = [];
  // Each workflow's records (the rows are the records: their extra workflow_id is never written,
  // flushPending lists the fields; a copy of each was a tenth of a step's allocations) and the passes
  // its steps were read for (and the first): those are the ones in memory. One map, not one for the
  // records and one for the passes; steps_take sends a workflow's records together, so each is a
  // slice of the rows (a list pushed to grew a backing store of 17 slots for its 2-4 records). The
  // map still gathers rows of one workflow that came apart.
  const taken = new Map<string, TakenWorkflow>();
  for (let i = 0; i < rows.length; ) {
    const id = rows[i]!.workflow_id;
    let end = i + 1;
    while (end < rows.length && rows[end]!.workflow_id === id) end++;
    const slice: ActivityRecord[] = rows.slice(i, end);
    let w = taken.get(id);
    if (!w) taken.set(id, (w = { records: slice, dimensions: undefined }));
    else w.records = w.records.concat(slice);
    for (; i < end; i++) {
      const r = rows[i]!;
      // The state first: most rows are records done before (a step's earlier activities), and a
      // lookup by a job id just read from Postgres hashes the id first.
      if ((r.state !== 'running' && r.state !== 'waiting') || r.job_id === null) continue;
      const job = byId.get(r.job_id);
      if (!job) continue;
      stepRows.push(r);
      stepJobs.push(job);
      const dims = w.dimensions;
      if (!dims) w.dimensions = r.dimension === '' ? FIRST_PASS : new Set(['', r.dimension]);
      else if (!dims.has(r.dimension)) w.dimensions = new Set(dims).add(r.dimension);
    }
  }
  if (stepRows.length === 0) return;
  // A workflow whose step was found but that steps_lock did not lock (none such is known) is loaded
  // by the generic path below, which locks it first.
  const runs = pendingOf(s).runs;
  for (const row of lockedRows) {
    const w = taken.get(row.id);
    const dims = w?.dimensions;
    if (!dims || runs.has(row.id)) continue;
    const own = w.records;
    runs.set(row.id, runReady(s, row, own, dims) ?? (await runOf(s, row, own, dims)));
  }
  for (let i = 0; i < stepRows.length; i++) {
    const finishing = finishStepStaged(s, stepRows[i]!, stepJobs[i]!);
    if (finishing) await finishing;
  }
  await flushPending(s, true);
}

type TakeRow = ActivityRecord & { workflow_id: string };

/** A workflow of finishStepJobs' rows: its records, and the passes of its steps (none: no step of the batch is its). */
interface TakenWorkflow {
  records: readonly ActivityRecord[];
  dimensions: ReadonlySet<string> | undefined;
}

/** The lock and take of finishStepJobs, on the wire (see takeSteps); its answers pending. */
export interface StepsTaken {
  locking: Promise<WorkflowRow[]>;
  taking: Promise<TakeRow[]>;
}

/**
 * Sends the steps' lock and take together (the transaction's connection pipelines): the lock, then
 * the records, read by a statement that starts once the locks are held. Neither writes, so both may
 * go out before the outcomes' answers, behind their statements (the continuation's prepare): a job
 * whose outcome the store refused is left out afterwards (finishStepJobs).
 */
export function takeSteps(db: Db, ids: string[]): StepsTaken {
  // One binary text[] for both statements (textArray).
  const param = textArray(ids);
  const locking = db.run<WorkflowRow>('steps_lock', [param]);
  const taking = db.run<TakeRow>('steps_take', [param]);
  locking.catch(() => undefined);
  taking.catch(() => undefined);
  return { locking, taking };
}

/**
 * The continuation's prepare: the steps' lock and take sent behind the outcomes' statements, unless
 * a job of the batch is a suspect (its transition threw: the batch then runs under savepoints, which
 * must take the steps inside them).
 */
export function takeStepsAhead(db: Db, jobs: { id: string }[]): StepsTaken | undefined {
  if (jobs.length === 0 || jobs.some((j) => suspects.has(j.id))) return undefined;
  return takeSteps(
    db,
    jobs.map((j) => j.id),
  );
}

/** A step's job ended: `st` its record as steps_take read it, `o` the job's outcome. */
function finishStepStaged(s: Scope, st: TakeRow, o: StepJobOutcome): Promise<void> | undefined {
  // Loaded by finishStepJobs with its pass's records: no (async) load.
  const held = pendingOf(s).runs.get(st.workflow_id);
  if (held?.holds(st.dimension)) return finishStepOn(held, st, o);
  return load(s, st.workflow_id, st.dimension).then((run) => finishStepOn(run, st, o));
}

/**
 * finishStepStaged on the step's Run; a promise only while the transition or the staging waits (not an
 * async function: its frame and promise per step were a step's largest allocation left here).
 */
function finishStepOn(run: Run | undefined, st: TakeRow, o: StepJobOutcome): Promise<void> | undefined {
  if (!run) return undefined; // removed meanwhile (scrubbed, expired)
  const act = run.graph.activities[st.activity];
  const rec = run.record(st.activity, st.dimension);
  // Its record moved on in this transaction (finished, or another job of it staged): not this step's any more.
  if (!act || !rec || rec.job_id !== o.id || (rec.state !== 'running' && rec.state !== 'waiting')) return undefined;
  // Attempts count over the activity's jobs (one per attempt when the executor owns the retries).
  const attempt = rec.attempts + o.attempt;
  if (!run.open) {
    // Interrupted or failed meanwhile: the result has nowhere to go, but a success is kept in the record.
    // A failure or cancel keeps its job's history row, and the record stays as the workflow left it.
    if (o.state === 'completed' && act.type === 'worker') {
      rec.attempts = attempt;
      run.recordAfterEnd(rec, o.result ?? {});
    }
    return undefined;
  }
  rec.attempts = attempt;
  if (o.state === 'completed') {
    const completing = run.complete(act, rec, { output: act.type === 'worker' ? (o.result ?? {}) : {} });
    if (completing) return completing.then(() => run.flush());
  } else if (o.state === 'failed' && act.type === 'worker' && executorRetries(act.retry) && attemptsRemain(act.retry!, attempt))
    run.retryStep(act, rec, o.error ?? { message: 'step failed' }, retryDelayMs(act.retry!, attempt));
  else run.fail(rec, o.error ?? { message: `step ${o.state}` }, attempt);
  return run.flush();
}

/** The await of `child`'s parent (`child.parent_*`), loaded, if the parent is open and the await still waits. */
async function parentAwait(s: Scope, child: WorkflowRow): Promise<{ run: Run; act: CompiledActivity; rec: ActivityRecord } | undefined> {
  const dimension = child.parent_dimension ?? '';
  const run = await load(s, child.parent_id!, dimension);
  if (!run || !run.open) return undefined;
  const act = run.graph.activities[child.parent_activity!];
  const rec = run.record(child.parent_activity!, dimension);
  return act && rec && rec.state === 'waiting' ? { run, act, rec } : undefined;
}

/** A child workflow ended: the await of its parent completes, or counts it in when it fans out. */
async function completeAwait(s: Scope, child: WorkflowRow, output: unknown): Promise<void> {
  const waiting = await parentAwait(s, child);
  if (!waiting) return;
  const { run, act, rec } = waiting;
  if (act.items && child.parent_index !== null && child.parent_index !== undefined)
    await run.childEnded(act, rec, { id: child.id, index: child.parent_index }, output);
  else await run.complete(act, rec, { output });
  await run.flush();
}

/** A child workflow failed: the await of its parent fails (and, for a fan-out, its other children are interrupted). */
async function failAwait(s: Scope, child: WorkflowRow, error: unknown): Promise<void> {
  const waiting = await parentAwait(s, child);
  if (!waiting) return;
  const { run, act, rec } = waiting;
  if (act.items) return run.fanOutFailed(act, rec, child.id, error);
  run.fail(rec, error, 1);
  await run.flush();
}

/** The workflow id a rule's match names directly (`expected: {$job.metadata.jid}`, `actual` from the hook data), if it does. */
function ruleTarget(rule: CompiledHookRule, data: unknown): string | undefined {
  for (const m of rule.conditions?.match ?? []) {
    const pairs: [MapExpr, MapExpr][] = [
      [m.expected, m.actual],
      [m.actual, m.expected],
    ];
    for (const [a, b] of pairs) {
      if (a.kind === 'path' && a.root === '$job' && a.path.join('.') === 'metadata.jid' && onlyHookData(b)) {
        const v = evaluateMapping(b, { self: { hook: { data } } });
        return v === undefined || v === null ? undefined : String(v);
      }
    }
  }
  return undefined;
}

/** namesWorkflow of each hook topic of a compiled graph: graphs are immutable, so each is worked out once. */
const namesByGraph = new WeakMap<CompiledGraph, Map<string, boolean>>();
function topicNamesWorkflow(graph: CompiledGraph, topic: string): boolean {
  let byTopic = namesByGraph.get(graph);
  if (!byTopic) namesByGraph.set(graph, (byTopic = new Map()));
  let names = byTopic.get(topic);
  if (names === undefined) byTopic.set(topic, (names = namesWorkflow(graph.hooks.filter((h) => h.topic === topic))));
  return names;
}

/** Do all of a topic's rules select their workflow by id (`{$job.metadata.jid}` against the hook data)? */
function namesWorkflow(rules: CompiledHookRule[]): boolean {
  return (
    rules.length > 0 &&
    rules.every((r) =>
      (r.conditions?.match ?? []).some(
        (m) =>
          (isJid(m.expected) && onlyHookData(m.actual) && m.actual.kind !== 'literal') ||
          (isJid(m.actual) && onlyHookData(m.expected) && m.expected.kind !== 'literal'),
      ),
    )
  );
}

function isJid(e: MapExpr): boolean {
  return e.kind === 'path' && e.root === '$job' && e.path.join('.') === 'metadata.jid';
}

function onlyHookData(e: MapExpr): boolean {
  switch (e.kind) {
    case 'literal':
    case 'call':
      return true;
    case 'path':
      return e.root === '$self' && e.path[0] === 'hook';
    case 'array':
      return e.items.every(onlyHookData);
    case 'object':
      return e.entries.every(([, v]) => onlyHookData(v));
    case 'pipe':
      return e.rows.every((r) =>
        r.kind === 'cells' ? r.cells.every(onlyHookData) : r.kind === 'fn' ? r.params.every(onlyHookData) : onlyHookData(r.pipe),
      );
  }
}

/**
 * `hook(topic, data)`: finds the waiting activity the app's rules for `topic` select and finishes it
 * with the data. None waiting: the signal is kept (expire of the graph) for the activity that will.
 * Returns the workflow id it reached.
 */
export async function deliverHook(
  s: Scope,
  app: CompiledApp,
  topic: string,
  data: unknown,
  opts: { keep: boolean; except?: string; answer?: HookAnswer },
): Promise<string | undefined> {
  const reached = await deliverHookStaged(s, app, topic, data, opts);
  await flushPending(s, true);
  return reached;
}

async function deliverHookStaged(
  s: Scope,
  app: CompiledApp,
  topic: string,
  data: unknown,
  opts: { keep: boolean; except?: string; answer?: HookAnswer },
): Promise<string | undefined> {
  const graph = app.graphs.find((g) => g.hooks.some((h) => h.topic === topic));
  if (!graph) return undefined;
  const rules = graph.hooks.filter((h) => h.topic === topic);
  const direct = rules.map((r) => ruleTarget(r, data));
  const names = topicNamesWorkflow(graph, topic);
  const only = names && direct.every((d) => d !== undefined) && new Set(direct).size === 1 ? direct[0]! : null;
  await runNow(s, 'topic_lock', [app.id, topic, names ? (only ?? '') : null]);
  const waiting = await runNow<{ workflow_id: string; activity: string; dimension: string }>(s, 'hooks_waiting', [app.id, topic, only]);
  for (const w of waiting) {
    if (w.workflow_id === opts.except) continue;
    if (await reenter(s, w, topic, data, true, opts.answer)) return w.workflow_id;
  }
  if (opts.keep)
    await runNow(s, 'signal_keep', [
      app.id,
      topic,
      JSON.stringify(data ?? null),
      only,
      graph.expire ?? DEFAULT_EXPIRE_S,
      opts.answer?.error ? 'error' : null,
      opts.answer && opts.answer.code !== 200 ? opts.answer.code : null,
    ]);
  return undefined;
}

interface Waiting {
  workflow_id: string;
  activity: string;
  dimension: string;
}

/** Answers one waiting hook activity with `data` (when its rules match, if `checkRules`); false when it no longer waits. */
async function reenter(s: Scope, w: Waiting, topic: string, data: unknown, checkRules: boolean, answer = SUCCESS): Promise<boolean> {
  const run = await load(s, w.workflow_id, w.dimension);
  if (!run || !run.open) return false;
  const act = run.graph.activities[w.activity];
  const rec = run.record(w.activity, w.dimension);
  if (!act || !rec || rec.state !== 'waiting') return false;
  if (checkRules) {
    const rules = run.graph.hooks.filter((h) => h.topic === topic && h.to === w.activity);
    if (!rules.some((rule) => run.ruleMatches(rule, rec, data))) return false;
  }
  await run.answer(act, rec, data, answer);
  await run.flush();
  return true;
}

/** `hookAll`: re-enters every workflow of the app waiting on `topic` whose searchable fields contain `search`. */
export async function deliverHookAll(
  s: Scope,
  appId: string,
  topic: string,
  data: unknown,
  search: Record<string, unknown>,
): Promise<string[]> {
  const reached = await deliverHookAllStaged(s, appId, topic, data, search);
  await flushPending(s, true);
  return reached;
}

async function deliverHookAllStaged(
  s: Scope,
  appId: string,
  topic: string,
  data: unknown,
  search: Record<string, unknown>,
  answer = SUCCESS,
): Promise<string[]> {
  await runNow(s, 'topic_lock', [appId, topic, null]);
  const waiting = await runNow<Waiting>(s, 'hooks_by_search', [appId, topic, JSON.stringify(search)]);
  const reached: string[] = [];
  for (const w of waiting) if (await reenter(s, w, topic, data, false, answer)) reached.push(w.workflow_id);
  return reached;
}

/** How a hook answers its waiting activity: the leg's response code, and whether it answers with an error. */
export interface HookAnswer {
  code: number;
  error: boolean;
}

/** The response code of an answer that keeps its hook waiting (HotMesh's 202: the activity answers again). */
export const REENTER_CODE = 202;

const SUCCESS: HookAnswer = { code: 200, error: false };

/**
 * A hook's `status` ('success', 'pending' or 'error', as HotMesh's stream statuses) and `code` as an
 * answer: pending is 202, an error 500, unless a code is given. Checked where they come in (hook(),
 * the app's YAML): here they are taken as they are.
 */
export function hookAnswer(status: string | null | undefined, code: number | null | undefined): HookAnswer {
  if (!status && !code) return SUCCESS;
  return { code: code ?? (status === 'pending' ? REENTER_CODE : status === 'error' ? 500 : 200), error: status === 'error' };
}

/** HotMesh's default code of an interruption (410 Gone). */
export const INTERRUPT_CODE = 410;

export interface InterruptOptions {
  reason?: string;
  /** Children (and theirs) too. */
  descend?: boolean;
  /**
   * true (default): a parent awaiting the workflow sees the interruption as the child's failure
   * (`{ code, message }`) and fails too; false: the parent's await completes with the interrupted
   * output and the parent goes on.
   */
  throw?: boolean;
  /** The error code the interruption carries (default 410). */
  code?: number;
}

function interruptedOutput(how: Required<InterruptOptions>): { interrupted: true; reason: string; code: number } {
  return { interrupted: true, reason: how.reason, code: how.code };
}

/** What a parent's await fails with when its child is interrupted with `throw`. */
function interruptError(childId: string, how: Required<InterruptOptions>) {
  return { code: how.code, message: how.reason, interrupted: true, workflow: childId };
}

/** An interrupted workflow's parent, if it awaits it: fails (throw) or goes on with the interrupted output. */
async function tellParentOfInterrupt(s: Scope, row: WorkflowRow, how: Required<InterruptOptions>): Promise<void> {
  if (!row.parent_id) return;
  if (how.throw) await failAwait(s, row, interruptError(row.id, how));
  else await completeAwait(s, row, interruptedOutput(how));
}

/** Interrupts a running (or pending) workflow and, with descend, its children; false when it had already finished. */
export async function interruptWorkflow(s: Scope, id: string, o: InterruptOptions): Promise<boolean> {
  const done = await interruptStaged(s, id, o);
  await flushPending(s, true);
  return done;
}

/** interruptWorkflow, its writes staged; `tellParent`: false when the parent is the one interrupting it (descend). */
async function interruptStaged(s: Scope, id: string, o: InterruptOptions, tellParent = true): Promise<boolean> {
  const run = await load(s, id);
  if (!run || !(run.open || run.status === PENDING)) return false;
  const how: Required<InterruptOptions> = {
    reason: o.reason ?? 'interrupted',
    descend: o.descend ?? false,
    throw: o.throw ?? true,
    code: o.code ?? INTERRUPT_CODE,
  };
  // The status check and the step list below read rows this transaction may have staged.
  await flushPending(s);
  const [done] = await runNow(s, 'workflow_interrupt', [id, how.reason, run.graph.expire ?? DEFAULT_EXPIRE_S, how.code]);
  if (!done) return false;
  run.interruptedElsewhere();
  await runNow(s, 'hooks_release_workflow', [id]);
  for (const step of await runNow<{ job_id: string }>(s, 'steps_of', [id])) s.effects.cancels.push(step.job_id);
  emit(s, run.row, run.graph.publishes ?? run.graph.subscribes, 'output', INTERRUPTED, interruptedOutput(how));
  if (tellParent) await tellParentOfInterrupt(s, run.row, how);
  if (how.descend) {
    for (const child of await runNow<{ id: string }>(s, 'workflow_children_open', [id])) await interruptStaged(s, child.id, how, false);
  }
  return true;
}

/**
 * Interrupts (with descend, without telling the parent, which failed) up to `limit` running children
 * of a fan-out; how many it interrupted, so the caller goes on while a batch was full.
 */
export async function stopFanOutChildren(s: Scope, p: StopChildrenPayload, limit = STOP_CHILDREN_BATCH): Promise<number> {
  const how: Required<InterruptOptions> = { reason: p.reason, descend: true, throw: true, code: INTERRUPT_CODE };
  const [parent] = await s.db.run<WorkflowRow>('workflow_get', [p.workflow, p.app]);
  if (!parent) return 0;
  // A fan-out's children run one graph of the parent's version: one expire, one output topic.
  const app = await s.versions.get(parent.app_id, parent.version);
  const act = graphOf(app, parent.topic)?.activities[p.activity];
  const graph = act?.topic ? graphOf(app, act.topic) : undefined;
  if (!graph)
    throw new WorkflowNotFoundError(`fan-out ${p.activity} of workflow ${p.workflow} (app ${parent.app_id} version ${parent.version})`);
  const stopped = await s.db.run<WorkflowRow>('fanout_children_interrupt', [
    p.workflow,
    p.activity,
    p.dimension,
    limit,
    how.reason,
    how.code,
    graph.expire ?? DEFAULT_EXPIRE_S,
  ]);
  if (stopped.length === 0) return 0;
  const ids = stopped.map((c) => c.id);
  await s.db.run('hooks_release_workflows', [ids]);
  for (const step of await s.db.run<{ job_id: string }>('steps_of_workflows', [ids])) s.effects.cancels.push(step.job_id);
  for (const c of stopped) emit(s, c, graph.publishes ?? graph.subscribes, 'output', INTERRUPTED, interruptedOutput(how));
  // Their own children (an await inside a child): one by one, as an interrupt with descend does.
  for (const g of await s.db.run<{ id: string }>('children_open_of', [ids])) await interruptStaged(s, g.id, how, false);
  await flushPending(s, true);
  return stopped.length;
}

/**
 * `pub` with `pending`: the workflow is stored with status -1 and its trigger input held (the
 * trigger's record, state 'pending'); nothing runs until `resume`. Not resumed within `pendingS`
 * seconds, it is removed with the expired workflows.
 */
export async function holdWorkflow(s: Scope, o: Omit<StartOptions, 'parent'> & { pendingS: number }): Promise<void> {
  await flushPending(s);
  try {
    await s.db.run('workflow_insert_pending', [o.id, o.app.id, o.app.version, o.graph.subscribes, o.partition, o.search, o.pendingS]);
  } catch (err) {
    if ((err as { code?: string }).code === '23505') throw new DuplicateWorkflowError(o.id);
    throw err;
  }
  const held: ActivityRecord = {
    activity: o.graph.trigger,
    dimension: '',
    type: 'trigger',
    state: 'pending',
    job_id: null,
    input: { data: o.data ?? {} },
    output: null,
    hook: null,
    attempts: 0,
    errors: [],
  };
  pendingOf(s).activities.set(`${o.id}\u0000${key(held.activity, '')}`, {
    workflowId: o.id,
    record: held,
    entered: false,
    mode: undefined,
    day: undefined,
  });
  await flushPending(s, true);
}

/** Starts a pending workflow on the version it was published on; false when it is not pending (started, ended, expired, unknown). */
export async function resumeWorkflow(s: Scope, appId: string, id: string): Promise<boolean> {
  const runs = pendingOf(s).runs;
  // Loaded earlier in this transaction (an interrupt, say): its state is the one that counts.
  if (runs.has(id) && runs.get(id)!.status !== PENDING) return false;
  const [row] = await runNow<WorkflowRow>(s, 'workflows_lock', [[id]]);
  if (!row || row.app_id !== appId || num(row.status) !== PENDING) return false;
  const [held] = await s.db.run<{ activity: string; input: { data?: unknown } | null }>('workflow_resume', [id, appId]);
  if (!held) return false;
  const run = await runOf(s, { ...row, status: 0 }, []);
  runs.set(id, run);
  await run.enter(run.graph.trigger, '', held.input?.data ?? {});
  await run.flush();
  await flushPending(s, true);
  return true;
}

/** Step jobs whose transition threw: when their batch is written again, it runs under savepoints. */
const suspects = new Set<string>();
const MAX_SUSPECTS = 10_000;

/**
 * finishStepJobs, and what keeps a transition that throws for good (a mapping that throws, a next
 * step aimed at a queue no node declares, a statement its data breaks) from leaving its workflow
 * running forever: without it the engine rolls the batch back, tries again, then records the step's
 * job alone without its continuation, and the workflow is never told. The first run takes no
 * savepoint (the common path pays nothing); a non-transient throw marks the batch's jobs and
 * rethrows, and the engine's retry of the batch then runs under a savepoint: the batch, then one job
 * at a time, and a job whose transition still throws ends its workflow as failed, the error naming
 * the activity whose transition failed. A transient error (connection, deadlock, serialization) is
 * rethrown: the engine's retry gets past it.
 */
export async function finishStepJobsOrFail(
  s: Scope,
  tx: { client: { query(text: string): Promise<unknown> } },
  jobs: StepJobOutcome[],
  ahead?: StepsTaken,
): Promise<void> {
  const attempt = async (batch: StepJobOutcome[], body: (scope: Scope) => Promise<void>): Promise<unknown> => {
    // Under a savepoint every statement is awaited: a failure must be heard before RELEASE is sent.
    const { runLast: _runLast, ...awaited } = s.db;
    const scope: Scope = { ...s, db: awaited, effects: newEffects() };
    await tx.client.query('SAVEPOINT wf_transition');
    try {
      await body(scope);
    } catch (err) {
      await tx.client.query('ROLLBACK TO SAVEPOINT wf_transition');
      if (isTransientDbError(err)) throw err;
      s.logger.warn({ err, jobs: batch.map((j) => j.id) }, 'a workflow transition threw');
      return err;
    }
    await tx.client.query('RELEASE SAVEPOINT wf_transition');
    for (const w of scope.effects.wakes) s.effects.wakes.add(w);
    s.effects.cancels.push(...scope.effects.cancels);
    s.effects.events.push(...scope.effects.events);
    return undefined;
  };
  if (!jobs.some((j) => suspects.has(j.id))) {
    const suspect = (err: unknown) => {
      if (isTransientDbError(err)) return;
      if (suspects.size > MAX_SUSPECTS) suspects.clear();
      for (const j of jobs) suspects.add(j.id);
    };
    // The last write's failure reaches the engine through the COMMIT, after this returned: the
    // batch is marked when it fails, before the engine writes it again.
    const runLast = s.db.runLast;
    const db: Db = runLast
      ? {
          ...s.db,
          runLast: (op, params, mapError) => {
            const answer = runLast(op, params, mapError);
            answer.catch(suspect);
            return answer;
          },
        }
      : s.db;
    try {
      await finishStepJobs({ ...s, db }, jobs, ahead);
      return;
    } catch (err) {
      suspect(err);
      throw err;
    }
  }
  for (const j of jobs) suspects.delete(j.id);
  const first = await attempt(jobs, (scope) => finishStepJobs(scope, jobs));
  if (first === undefined) return;
  for (const job of jobs) {
    const cause = jobs.length === 1 ? first : await attempt([job], (scope) => finishStepJobs(scope, [job]));
    if (cause === undefined) continue;
    const failed = await attempt([job], (scope) => failStepWorkflow(scope, job, cause));
    // Failing the workflow threw too (its row is unreadable): the error goes to the engine, which records the job alone.
    if (failed !== undefined) throw failed;
  }
}

/** Ends the workflow of a step whose transition threw as failed: the step's record keeps the error, the output names the activity. */
async function failStepWorkflow(s: Scope, job: StepJobOutcome, cause: unknown): Promise<void> {
  const [st] = await s.db.run<{ workflow_id: string; activity: string; dimension: string; workflow: WorkflowRow | null }>(
    'steps_take_lock',
    [[job.id]],
  );
  if (!st?.workflow) return;
  await loadMany(s, [{ workflow: st.workflow_id, dimension: st.dimension }], [st.workflow]);
  const run = await load(s, st.workflow_id, st.dimension);
  const rec = run?.record(st.activity, st.dimension);
  if (!run || !run.open || !rec) return;
  const message = cause instanceof Error ? cause.message : String(cause ?? 'unknown error');
  run.fail(
    rec,
    {
      name: 'TransitionError',
      message: `the transition after activity ${st.activity} failed: ${message}; fix the graph (or declare the queue it names) and start the workflow again`,
      activity: st.activity,
      ...(cause instanceof Error && cause.name !== 'Error' ? { cause: cause.name } : {}),
    },
    rec.attempts + job.attempt,
  );
  await run.flush();
  await flushPending(s, true);
}
