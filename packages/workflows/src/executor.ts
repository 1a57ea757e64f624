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
import type { Logger } from '@partita/core';
import type { NewJob } from '@partita/postgres';
import { compileDefinition } from './compile.js';
import type { Db } from './db.js';
import { FAILED, INTERRUPTED, WorkflowNotFoundError } from './errors.js';
import { evaluateMapping, type ActivityData, type MapExpr, type MappingContext } from './mapping.js';
import type { CompiledActivity, CompiledApp, CompiledCondition, CompiledGraph, CompiledHookRule } from './model.js';

/** A durable sleep: a job scheduled at the wake time, whose completion finishes the hook activity. */
export const SLEEP_TYPE = 'partita.wf.sleep';
/** Publishes a workflow's output or emitted data on the bus, after the transition that made it committed. */
export const EMIT_TYPE = 'partita.wf.emit';
/**
 * The mark of a step's job (a worker's, a sleep's): the name of the plugin's continuation, which
 * alone sees these jobs' outcomes, so other jobs on the node keep the plain write.
 */
export const STEP_CONTINUATION = 'workflows.transition';
/** Queue of the executor's own jobs and the default queue of worker activities. */
export const DEFAULT_QUEUE = 'default';
/** Seconds a finished workflow (and a kept early signal) stays when its graph gives no `expire`. */
export const DEFAULT_EXPIRE_S = 3600;

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
}

export interface ActivityRecord {
  activity: string;
  dimension: string;
  type: string;
  state: 'running' | 'waiting' | 'done' | 'failed';
  job_id: string | null;
  input: unknown;
  output: unknown;
  hook: unknown;
  attempts: number;
  errors: unknown[];
}

/** Compiled app versions by id+version: immutable once deployed, so cached for the process's life. */
export class Versions {
  private readonly apps = new Map<string, Promise<CompiledApp>>();

  constructor(private readonly load: (appId: string, version: string) => Promise<unknown | undefined>) {}

  get(appId: string, version: string): Promise<CompiledApp> {
    const key = `${appId}\u0000${version}`;
    let app = this.apps.get(key);
    if (!app) {
      app = this.load(appId, version).then((definition) => {
        if (definition === undefined) throw new WorkflowNotFoundError(`app ${appId} version ${version}`);
        return compileDefinition(definition);
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
}

export interface Scope {
  db: Db;
  versions: Versions;
  logger: Logger;
  effects: Effects;
}

export function newEffects(): Effects {
  return { wakes: new Set(), cancels: [] };
}

const key = (activity: string, dimension: string) => `${activity}\u0000${dimension}`;
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

/** One workflow inside one transaction: its row (locked) and activity records, changed in memory and written by flush(). */
class Run {
  private readonly records = new Map<string, ActivityRecord>();
  private readonly dirty = new Set<string>();
  private readonly enteredNow = new Set<string>();
  status: number;
  data: Record<string, unknown>;
  private readonly wasOpen: boolean;
  private interruptedHere = false;

  constructor(
    private readonly s: Scope,
    readonly row: WorkflowRow,
    readonly app: CompiledApp,
    readonly graph: CompiledGraph,
    records: ActivityRecord[],
  ) {
    for (const r of records) this.records.set(key(r.activity, r.dimension), r);
    this.status = num(row.status);
    this.data = { ...(row.data ?? {}) };
    this.wasOpen = this.status > 0 || records.length === 0;
  }

  get open(): boolean {
    return this.status > 0 && !this.interruptedHere;
  }

  record(activity: string, dimension: string): ActivityRecord | undefined {
    return this.records.get(key(activity, dimension));
  }

  /** The mapping context seen from `dimension`: each activity's record of that pass, else of the first. */
  context(dimension: string, self?: ActivityRecord): MappingContext {
    const activities: Record<string, ActivityData> = {};
    for (const r of this.records.values()) {
      if (r.dimension !== dimension && (r.dimension !== '' || this.records.has(key(r.activity, dimension)))) continue;
      activities[r.activity] = view(r);
    }
    return {
      activities,
      ...(self ? { self: view(self) } : {}),
      job: {
        data: this.data,
        metadata: { jid: this.row.id, app: this.row.app_id, vrs: this.row.version, tpc: this.row.topic, js: this.status },
      },
      app: { id: this.app.id, version: this.app.version, settings: this.app.settings },
    };
  }

  private put(r: ActivityRecord, entered: boolean): void {
    const k = key(r.activity, r.dimension);
    this.records.set(k, r);
    this.dirty.add(k);
    if (entered) this.enteredNow.add(k);
  }

  /** Enters an activity: opens it (the semaphore counts it) and starts what it does. */
  async enter(id: string, dimension: string, triggerData?: unknown): Promise<void> {
    // Interrupted or failed by an earlier activity of this transaction: nothing more starts.
    if (this.status < 0) return;
    const act = this.graph.activities[id];
    if (!act) throw new Error(`activity ${id} is not in graph ${this.graph.subscribes}`);
    if (act.parents.length > 1) {
      // A join: entered once per pass, when the last of its parents that ran in this pass is done.
      if (this.record(id, dimension)) return;
      const ran = act.parents.map((p) => this.record(p, dimension)).filter((r) => r !== undefined);
      if (ran.some((r) => r.state !== 'done')) return;
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
      errors: [],
    };
    const ctx = this.context(dimension);
    const input = act.input?.maps ? evaluateMapping(act.input.maps, ctx) : undefined;
    if (input !== undefined) rec.input = { data: input };
    this.put(rec, true);
    switch (act.type) {
      case 'trigger':
        rec.input = { data: triggerData ?? {} };
        return this.complete(act, rec, { output: triggerData ?? {} });
      case 'worker': {
        const job: NewJob = {
          partition: this.row.partition,
          type: act.topic!,
          queue: act.queue ?? DEFAULT_QUEUE,
          payload: input ?? {},
          ...(act.retry?.maximumAttempts ? { maxAttempts: act.retry.maximumAttempts } : {}),
          ...(act.timeout ? { timeoutMs: Math.round(act.timeout * 1000) } : {}),
        };
        rec.job_id = await this.step(job, rec);
        return;
      }
      case 'hook': {
        if (act.sleep !== undefined) {
          const seconds = Number(evaluateMapping(act.sleep, ctx));
          const ms = Number.isFinite(seconds) && seconds > 0 ? Math.round(seconds * 1000) : 0;
          rec.state = 'waiting';
          rec.job_id = await this.step(
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
        return this.startChild(act, rec, input);
      case 'cycle': {
        await this.complete(act, rec, { output: {} });
        const target = act.ancestor!;
        let pass = 0;
        for (const r of this.records.values()) if (r.activity === target) pass += 1;
        return this.enter(target, `/${pass}`);
      }
      case 'signal': {
        const data = act.signal?.maps ? evaluateMapping(act.signal.maps, ctx) : (input ?? {});
        if (act.subtype === 'all') {
          const r = evaluateMapping(act.resolver!.maps!, ctx) as { key_name?: unknown; key_value?: unknown } | undefined;
          const reached = await deliverHookAll(this.s, this.row.app_id, act.topic!, data, { [String(r?.key_name)]: r?.key_value });
          return this.complete(act, rec, { output: { ids: reached.filter((id) => id !== this.row.id) } });
        }
        const found = await deliverHook(this.s, this.app, act.topic!, data, {
          keep: false,
          except: this.row.id,
          ...(act.code ? { code: act.code } : {}),
        });
        return this.complete(act, rec, { output: { id: found ?? null } });
      }
      case 'interrupt': {
        const target = act.target ? evaluateMapping(act.target, ctx) : undefined;
        const reason = act.reason ? evaluateMapping(act.reason, ctx) : undefined;
        if (target === undefined || target === this.row.id) {
          rec.state = 'done';
          this.status -= 1;
          await this.interruptSelf(typeof reason === 'string' ? reason : 'interrupted by its own interrupt activity', act.descend ?? false);
          return;
        }
        const done = await interruptWorkflow(this.s, String(target), {
          reason: typeof reason === 'string' ? reason : `interrupted by ${this.row.id}`,
          descend: act.descend ?? false,
        });
        return this.complete(act, rec, { output: { interrupted: done } });
      }
    }
  }

  /** Enqueues a step's job and links it to the activity: its completion comes back through the continuation. */
  private async step(job: NewJob, rec: ActivityRecord): Promise<string> {
    job.continuation = STEP_CONTINUATION;
    const [outcome] = await this.s.db.enqueue([job]);
    const jobId = outcome!.id;
    await this.s.db.run('step_insert', [jobId, this.row.id, rec.activity, rec.dimension]);
    this.s.effects.wakes.add(`${job.partition}\u0000${job.queue ?? DEFAULT_QUEUE}`);
    return jobId;
  }

  /** A hook activity starts waiting: registers for its topics, and takes a signal that came early. */
  private async wait(act: CompiledActivity, rec: ActivityRecord): Promise<void> {
    rec.state = 'waiting';
    for (const topic of act.hookTopics) {
      const direct = namesWorkflow(this.graph.hooks.filter((h) => h.topic === topic));
      await this.s.db.run('topic_lock', [this.row.app_id, topic, direct ? this.row.id : null]);
      await this.s.db.run('hook_register', [this.row.app_id, topic, this.row.id, act.id, rec.dimension]);
    }
    const signals = await this.s.db.run<{ id: string; topic: string; data: unknown }>('signals_pending', [
      this.row.app_id,
      act.hookTopics,
      this.row.id,
    ]);
    for (const signal of signals) {
      const rules = this.graph.hooks.filter((h) => h.topic === signal.topic && h.to === act.id);
      if (!rules.some((rule) => this.ruleMatches(rule, rec, signal.data))) continue;
      await this.s.db.run('signal_take', [signal.id]);
      await this.s.db.run('hook_release', [this.row.id, act.id, rec.dimension]);
      return this.complete(act, rec, { hook: signal.data, output: signal.data });
    }
  }

  ruleMatches(rule: CompiledHookRule, rec: ActivityRecord, data: unknown): boolean {
    const self = { ...rec, hook: { data } };
    return conditionHolds(rule.conditions, this.context(rec.dimension, self));
  }

  private async startChild(act: CompiledActivity, rec: ActivityRecord, input: unknown): Promise<void> {
    const graph = graphOf(this.app, act.topic!)!;
    const childId = `${this.row.id}-${act.id}${rec.dimension.replace(/\//g, '-')}-${randomUUID().slice(0, 8)}`;
    const fireAndForget = act.await === false;
    await startWorkflow(this.s, {
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
  }

  /** An activity finished: its record, the workflow data (job.maps), the semaphore, then its transitions. */
  async complete(act: CompiledActivity, rec: ActivityRecord, outcome: { output?: unknown; hook?: unknown; code?: number }): Promise<void> {
    rec.state = 'done';
    if (outcome.output !== undefined) rec.output = { data: outcome.output };
    if (outcome.hook !== undefined) rec.hook = { data: outcome.hook };
    this.put(rec, false);
    const ctx = this.context(rec.dimension, rec);
    if (act.job?.maps) {
      const patch = evaluateMapping(act.job.maps, ctx);
      if (patch && typeof patch === 'object')
        for (const [k, v] of Object.entries(patch as Record<string, unknown>)) if (v !== undefined) this.data[k] = v;
    }
    this.status -= 1;
    if (act.emit) await emit(this.s, this.row, this.graph.publishes ?? this.graph.subscribes, 'emit', this.status, this.data);
    const after = this.context(rec.dimension, rec);
    for (const t of act.transitions) {
      if (this.status < 0) return;
      if (conditionHolds(t.conditions, after, outcome.code ?? 200)) await this.enter(t.to, rec.dimension);
    }
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

  private async interruptSelf(reason: string, descend: boolean): Promise<void> {
    this.interruptedHere = true;
    this.status = INTERRUPTED;
    this.failedWith = { interrupted: true, reason };
    await this.s.db.run('hooks_release_workflow', [this.row.id]);
    if (descend) {
      for (const child of await this.s.db.run<{ id: string }>('workflow_children', [this.row.id]))
        await interruptWorkflow(this.s, child.id, { reason, descend: true });
    }
  }

  /** Writes what changed; a workflow that just finished publishes its output and completes its parent's await. */
  async flush(): Promise<void> {
    for (const k of this.dirty) {
      const r = this.records.get(k)!;
      await this.s.db.run('activity_upsert', [
        this.row.id,
        r.activity,
        r.dimension,
        r.type,
        r.state,
        r.job_id,
        r.input,
        r.output,
        r.hook,
        r.attempts,
        JSON.stringify(r.errors ?? []),
        this.enteredNow.has(k),
      ]);
    }
    this.dirty.clear();
    this.enteredNow.clear();
    const finished = this.wasOpen && this.status <= 0;
    const expire = this.graph.expire ?? DEFAULT_EXPIRE_S;
    if (this.status === INTERRUPTED || this.status === FAILED) {
      await this.s.db.run('workflow_update', [this.row.id, this.status, this.data, -1]);
      await this.s.db.run('workflow_finish', [this.row.id, this.failedWith ?? null, expire]);
    } else await this.s.db.run('workflow_update', [this.row.id, this.status, this.data, expire]);
    if (!finished) return;
    const output = this.status === 0 ? this.data : this.failedWith;
    await emit(this.s, this.row, this.graph.publishes ?? this.graph.subscribes, 'output', this.status, output);
    if (this.row.parent_id && this.status === 0)
      await completeAwait(this.s, this.row.parent_id, this.row.parent_activity!, this.row.parent_dimension ?? '', this.data);
    else if (this.row.parent_id && this.status === FAILED)
      await failAwait(this.s, this.row.parent_id, this.row.parent_activity!, this.row.parent_dimension ?? '', this.failedWith);
  }
}

function view(r: ActivityRecord): ActivityData {
  const out: ActivityData = {};
  if (r.input) out.input = r.input as ActivityData['input'] & object;
  if (r.output) out.output = r.output as ActivityData['output'] & object;
  if (r.hook) out.hook = r.hook as ActivityData['hook'] & object;
  return out;
}

async function emit(s: Scope, row: WorkflowRow, topic: string, kind: EmitPayload['kind'], status: number, data: unknown): Promise<void> {
  const payload: EmitPayload = { app: row.app_id, topic, id: row.id, kind, status, data };
  await s.db.enqueue([{ partition: row.partition, type: EMIT_TYPE, queue: DEFAULT_QUEUE, payload }]);
  s.effects.wakes.add(`${row.partition}\u0000${DEFAULT_QUEUE}`);
}

/** Locks a workflow and loads what a transition needs; undefined when it is gone. */
async function load(s: Scope, id: string): Promise<Run | undefined> {
  const [row] = await s.db.run<WorkflowRow>('workflow_lock', [id]);
  if (!row) return undefined;
  const app = await s.versions.get(row.app_id, row.version);
  const graph = graphOf(app, row.topic);
  if (!graph) throw new WorkflowNotFoundError(`graph ${row.topic} of app ${row.app_id} version ${row.version}`);
  const records = await s.db.run<ActivityRecord>('activities_of', [id]);
  return new Run(s, row, app, graph, records);
}

export interface StartOptions {
  app: CompiledApp;
  graph: CompiledGraph;
  id: string;
  data: unknown;
  search: Record<string, unknown>;
  partition: string;
  parent?: { id: string; activity: string; dimension: string };
}

/** Creates a workflow and runs its trigger (and every activity that finishes at once) in the caller's transaction. */
export async function startWorkflow(s: Scope, o: StartOptions): Promise<void> {
  await s.db.run('workflow_insert', [
    o.id,
    o.app.id,
    o.app.version,
    o.graph.subscribes,
    o.partition,
    o.search,
    o.parent?.id ?? null,
    o.parent?.activity ?? null,
    o.parent?.dimension ?? null,
  ]);
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
  };
  const run = new Run(s, row, o.app, o.graph, []);
  await run.enter(o.graph.trigger, '', o.data);
  await run.flush();
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

/** A step's job ended (in the transaction that records it): the activity finishes and the workflow moves on. */
export async function finishStep(s: Scope, o: StepOutcome): Promise<void> {
  const run = await load(s, o.workflow);
  if (!run || !run.open) return; // interrupted, failed or removed meanwhile: the step's result has nowhere to go
  const act = run.graph.activities[o.activity];
  const rec = run.record(o.activity, o.dimension);
  if (!act || !rec || rec.state === 'done') return;
  rec.attempts = o.attempt;
  if (o.state === 'completed') await run.complete(act, rec, act.type === 'worker' ? { output: o.result ?? {} } : { output: {} });
  else run.fail(rec, o.error ?? { message: `step ${o.state}` }, o.attempt);
  await run.flush();
}

async function completeAwait(s: Scope, parentId: string, activity: string, dimension: string, output: unknown): Promise<void> {
  const run = await load(s, parentId);
  if (!run || !run.open) return;
  const act = run.graph.activities[activity];
  const rec = run.record(activity, dimension);
  if (!act || !rec || rec.state !== 'waiting') return;
  await run.complete(act, rec, { output });
  await run.flush();
}

async function failAwait(s: Scope, parentId: string, activity: string, dimension: string, error: unknown): Promise<void> {
  const run = await load(s, parentId);
  if (!run || !run.open) return;
  const rec = run.record(activity, dimension);
  if (!rec || rec.state !== 'waiting') return;
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
  opts: { keep: boolean; except?: string; code?: number },
): Promise<string | undefined> {
  const graph = app.graphs.find((g) => g.hooks.some((h) => h.topic === topic));
  if (!graph) return undefined;
  const rules = graph.hooks.filter((h) => h.topic === topic);
  const direct = rules.map((r) => ruleTarget(r, data));
  const only = namesWorkflow(rules) && direct.every((d) => d !== undefined) && new Set(direct).size === 1 ? direct[0]! : null;
  await s.db.run('topic_lock', [app.id, topic, namesWorkflow(rules) ? (only ?? '') : null]);
  const waiting = await s.db.run<{ workflow_id: string; activity: string; dimension: string }>('hooks_waiting', [app.id, topic, only]);
  for (const w of waiting) {
    if (w.workflow_id === opts.except) continue;
    if (await reenter(s, w, topic, data, true, opts.code)) return w.workflow_id;
  }
  if (opts.keep) await s.db.run('signal_keep', [app.id, topic, JSON.stringify(data ?? null), only, graph.expire ?? DEFAULT_EXPIRE_S]);
  return undefined;
}

interface Waiting {
  workflow_id: string;
  activity: string;
  dimension: string;
}

/** Finishes one waiting hook activity with `data` (when its rules match, if `checkRules`); false when it no longer waits. */
async function reenter(s: Scope, w: Waiting, topic: string, data: unknown, checkRules: boolean, code?: number): Promise<boolean> {
  const run = await load(s, w.workflow_id);
  if (!run || !run.open) return false;
  const act = run.graph.activities[w.activity];
  const rec = run.record(w.activity, w.dimension);
  if (!act || !rec || rec.state !== 'waiting') return false;
  if (checkRules) {
    const rules = run.graph.hooks.filter((h) => h.topic === topic && h.to === w.activity);
    if (!rules.some((rule) => run.ruleMatches(rule, rec, data))) return false;
  }
  await s.db.run('hook_release', [w.workflow_id, w.activity, w.dimension]);
  // A hook's data is also its output (`{review.output.data.approved}` in a transition reads it).
  await run.complete(act, rec, { hook: data, output: data, ...(code ? { code } : {}) });
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
  await s.db.run('topic_lock', [appId, topic, null]);
  const waiting = await s.db.run<Waiting>('hooks_by_search', [appId, topic, JSON.stringify(search)]);
  const reached: string[] = [];
  for (const w of waiting) if (await reenter(s, w, topic, data, false)) reached.push(w.workflow_id);
  return reached;
}

/** Interrupts a running workflow (and, with descend, its children); false when it had already finished. */
export async function interruptWorkflow(s: Scope, id: string, o: { reason?: string; descend?: boolean }): Promise<boolean> {
  const run = await load(s, id);
  if (!run || !run.open) return false;
  const reason = o.reason ?? 'interrupted';
  const [done] = await s.db.run('workflow_interrupt', [id, reason, run.graph.expire ?? DEFAULT_EXPIRE_S]);
  if (!done) return false;
  await s.db.run('hooks_release_workflow', [id]);
  for (const step of await s.db.run<{ job_id: string }>('steps_of', [id])) s.effects.cancels.push(step.job_id);
  await emit(s, run.row, run.graph.publishes ?? run.graph.subscribes, 'output', INTERRUPTED, { interrupted: true, reason });
  if (o.descend) {
    for (const child of await s.db.run<{ id: string }>('workflow_children', [id]))
      await interruptWorkflow(s, child.id, { reason, descend: true });
  }
  return true;
}
