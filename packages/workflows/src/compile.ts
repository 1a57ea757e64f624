/**
 * compileApp: load (YAML + `$ref`), validate everything, build the graph model. All problems
 * are collected and thrown together as one WorkflowDefinitionError naming file:line:key.
 */
import { createHash } from 'node:crypto';
import { rename, writeFile } from 'node:fs/promises';
import { dirname, join } from 'node:path';
import { Ajv } from 'ajv';
import { closest, type Logger, type PathSegment } from '@partita/core';
import { WorkflowDefinitionError, type WorkflowIssue } from './errors.js';
import { parseMapping, type MapExpr, type PathExpr } from './mapping.js';
import {
  ACTIVITY_TYPES,
  type ActivityType,
  type CompiledActivity,
  type CompiledApp,
  type CompiledCondition,
  type CompiledGraph,
  type CompiledHookRule,
  type CompiledTransition,
  type RetryPolicy,
} from './model.js';
import { loadApp, SourceMap, type LoadedApp } from './source.js';

export interface CompileOptions {
  logger?: Logger;
}

/** Up to 63 characters, so an app id can name a Postgres schema or a NATS subject token. */
const APP_ID = /^[A-Za-z][A-Za-z0-9_-]{0,62}$/;
/** A version is part of a file name (`.partita.<id>.<version>.json`) and of subjects. */
const VERSION = /^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/;
/** No dots: a mapping path splits on them (`{a1.output.data.x}`). */
const ACTIVITY_ID = /^[A-Za-z_][A-Za-z0-9_-]*$/;
const TOPIC = /^[A-Za-z0-9_][A-Za-z0-9_.-]*$/;

/** Keys HotMesh reads on a graph and on an activity; anything else is most likely a typo (a warning). */
const GRAPH_KEYS = ['subscribes', 'publishes', 'expire', 'persistent', 'input', 'output', 'activities', 'transitions', 'hooks'];
/**
 * Activity keys of HotMesh's that Partita reads past but does not carry out: a HotMesh app keeps
 * deploying, and its author is told (a warning) rather than left to expect their effect.
 */
const UNSUPPORTED_ACTIVITY_KEYS = [
  'settings',
  'telemetry',
  'expire',
  'persistent',
  'persist',
  'statusThreshold',
  'statusThresholdType',
  'escalation',
  'stack',
  'scrub',
];
const ACTIVITY_KEYS = [
  'title',
  'type',
  'subtype',
  'input',
  'output',
  'job',
  'hook',
  'settings',
  'telemetry',
  'emit',
  'sleep',
  'expire',
  'persistent',
  'persist',
  'retry',
  'cycle',
  'statusThreshold',
  'statusThresholdType',
  'escalation',
  'topic',
  'queue',
  'timeout',
  'await',
  'items',
  'stats',
  'signal',
  'resolver',
  'status',
  'code',
  'scrub',
  'ancestor',
  'target',
  'reason',
  'throw',
  'descend',
  'stack',
  'entity',
];

type Obj = Record<string, unknown>;
const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);

/** Compiles an app from a path (its `$ref`s resolved) or from a YAML string starting with `app:`. */
export async function compileApp(pathOrYaml: string, opts: CompileOptions = {}): Promise<CompiledApp> {
  const loaded = await loadApp(pathOrYaml);
  if (!loaded.ok) throw new WorkflowDefinitionError(loaded.issues);
  return compileLoaded(loaded.app, opts);
}

/** Compiles an already merged app (e.g. the JSON stored at deploy). Problems name key paths, not lines. */
export function compileDefinition(merged: unknown, opts: CompileOptions = {}): CompiledApp {
  return compileLoaded({ value: merged, sourceMap: new SourceMap('<stored>'), file: undefined }, opts);
}

function compileLoaded(loaded: LoadedApp, opts: CompileOptions): CompiledApp {
  const c = new Compiler(loaded.value, loaded.sourceMap);
  const result = c.compile();
  if (c.issues.length > 0 || !result) throw new WorkflowDefinitionError(sortIssues(c.issues));
  const merged = canonical(loaded.value);
  const app: CompiledApp = {
    ...result,
    merged,
    hash: createHash('sha256').update(JSON.stringify(merged)).digest('hex'),
    ...(loaded.file ? { source: loaded.file } : {}),
    warnings: sortIssues(c.warnings),
  };
  opts.logger?.debug(
    { app: app.id, version: app.version, graphs: app.graphs.length, hash: app.hash, warnings: app.warnings.length },
    'compiled workflow app',
  );
  for (const w of app.warnings) opts.logger?.warn({ app: app.id, version: app.version, ...w }, 'workflow app warning');
  return app;
}

/** Name of the compiled file of an app, written beside its source. */
export function compiledFileName(id: string, version: string): string {
  return `.partita.${id}.${version}.json`;
}

/**
 * Writes the merged JSON (keys sorted, so equal content gives equal bytes) beside the source, or in
 * `dir`. Written to a temporary name and renamed, so a reader never sees half a file.
 */
export async function writeCompiled(app: CompiledApp, opts: { dir?: string } = {}): Promise<string> {
  const dir = opts.dir ?? (app.source ? dirname(app.source) : undefined);
  if (!dir)
    throw new WorkflowDefinitionError([
      {
        file: '<inline>',
        line: 1,
        key: '',
        message: 'an app compiled from a YAML string has no source directory to write beside',
        hint: 'pass { dir } to writeCompiled',
      },
    ]);
  const path = join(dir, compiledFileName(app.id, app.version));
  const tmp = `${path}.${process.pid}.tmp`;
  await writeFile(tmp, `${JSON.stringify(app.merged, null, 2)}\n`);
  await rename(tmp, path);
  return path;
}

/** Deep copy with object keys in sorted order (arrays keep theirs). */
export function canonical(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(canonical);
  if (isObj(value)) {
    const out: Obj = {};
    for (const k of Object.keys(value).sort()) out[k] = canonical(value[k]);
    return out;
  }
  return value;
}

function sortIssues(issues: WorkflowIssue[]): WorkflowIssue[] {
  return [...issues].sort((a, b) => (a.file === b.file ? a.line - b.line : a.file < b.file ? -1 : 1));
}

interface PendingRef {
  owner: string;
  ref: PathExpr;
  at: PathSegment[];
  /** Read by the input.maps of a fan-out (`await` with `items`), where `$item` and `$index` are defined. */
  fanInput?: boolean;
}

class Compiler {
  readonly issues: WorkflowIssue[] = [];
  readonly warnings: WorkflowIssue[] = [];
  private settings: Obj = {};

  constructor(
    private readonly root: unknown,
    private readonly map: SourceMap,
  ) {}

  private err(at: readonly PathSegment[], message: string, hint?: string): void {
    this.issues.push({ ...this.map.locate(this.root, at), message, ...(hint ? { hint } : {}) });
  }

  private warn(at: readonly PathSegment[], message: string, hint?: string): void {
    this.warnings.push({ ...this.map.locate(this.root, at), message, ...(hint ? { hint } : {}) });
  }

  compile(): Omit<CompiledApp, 'merged' | 'hash' | 'source' | 'warnings'> | undefined {
    if (!isObj(this.root) || !isObj(this.root['app'])) {
      this.err([], 'an app file has a top-level `app:` mapping', 'start the file with `app:` and give it id, version and graphs');
      return undefined;
    }
    const app = this.root['app'];
    const at = ['app'];
    const id = app['id'];
    if (typeof id !== 'string' || !APP_ID.test(id))
      this.err(
        [...at, 'id'],
        id === undefined ? 'the app has no id' : `app id ${JSON.stringify(id)} is not valid`,
        'a letter then letters, digits, _ or -, at most 63 characters',
      );
    const rawVersion = app['version'];
    const version = typeof rawVersion === 'number' ? String(rawVersion) : rawVersion;
    if (typeof version !== 'string' || !VERSION.test(version))
      this.err(
        [...at, 'version'],
        rawVersion === undefined ? 'the app has no version' : `version ${JSON.stringify(rawVersion)} is not valid`,
        "quote it as a string such as '1' or '2.1'; letters, digits, ., _ and -",
      );
    if (app['settings'] !== undefined && !isObj(app['settings'])) this.err([...at, 'settings'], 'settings must be a mapping');
    this.settings = isObj(app['settings']) ? app['settings'] : {};

    const graphsRaw = app['graphs'];
    if (!Array.isArray(graphsRaw) || graphsRaw.length === 0) {
      this.err([...at, 'graphs'], 'the app has no graphs', 'add `graphs:` with at least one graph (subscribes, activities, transitions)');
      return undefined;
    }
    const graphs: CompiledGraph[] = [];
    graphsRaw.forEach((g, i) => {
      const compiled = this.graph(g, [...at, 'graphs', i]);
      if (compiled) graphs.push(compiled);
    });
    this.crossGraph(graphsRaw);
    return { id: String(id), version: String(version), settings: this.settings, graphs };
  }

  /**
   * Checks that need every graph: unique topics; await, interrupt and signal topics that exist. Activity ids are per graph (the
   * signup example reuses `t1`), so records are keyed by workflow and activity id.
   */
  private crossGraph(raw: unknown[]): void {
    const subscribed = new Map<string, number>();
    const hookTopics = new Map<string, number>();
    raw.forEach((g, i) => {
      if (!isObj(g)) return;
      const at = ['app', 'graphs', i];
      const sub = g['subscribes'];
      if (typeof sub === 'string') {
        const first = subscribed.get(sub);
        if (first !== undefined)
          this.err([...at, 'subscribes'], `topic ${sub} is already subscribed by graph ${first}`, 'each graph subscribes to its own topic');
        else subscribed.set(sub, i);
      }
      if (isObj(g['hooks'])) {
        for (const topic of Object.keys(g['hooks'])) {
          const first = hookTopics.get(topic);
          if (first !== undefined)
            this.err(
              [...at, 'hooks', topic],
              `hook topic ${topic} is already used by graph ${first}`,
              'a hook topic selects one graph; give each graph its own',
            );
          else hookTopics.set(topic, i);
        }
      }
    });
    const topics = [...subscribed.keys()];
    raw.forEach((g, i) => {
      if (!isObj(g) || !isObj(g['activities'])) return;
      for (const [aid, a] of Object.entries(g['activities'])) {
        if (!isObj(a) || typeof a['topic'] !== 'string') continue;
        const topic = a['topic'];
        const at = ['app', 'graphs', i, 'activities', aid, 'topic'];
        if ((a['type'] === 'await' || a['type'] === 'interrupt') && !subscribed.has(topic)) {
          const guess = closest(topic, topics);
          this.err(
            at,
            `${a['type']} topic ${topic} is subscribed by no graph of this app`,
            guess ? `did you mean ${guess}?` : `the topic of an ${a['type']} is the subscribes of a graph (${topics.join(', ')})`,
          );
        }
        if (a['type'] === 'signal' && !hookTopics.has(topic)) {
          const hooks = [...hookTopics.keys()];
          const guess = closest(topic, hooks);
          this.err(
            at,
            `signal topic ${topic} is the topic of no hook rule in this app`,
            guess
              ? `did you mean ${guess}?`
              : hooks.length > 0
                ? `hook topics are ${hooks.join(', ')}`
                : 'a signal re-enters a waiting hook activity: add `hooks: { <topic>: [{ to: <hook activity> }] }` to the graph that waits',
          );
        }
      }
    });
  }

  private graph(g: unknown, at: PathSegment[]): CompiledGraph | undefined {
    if (!isObj(g)) {
      this.err(at, 'a graph is a mapping (subscribes, activities, transitions…)');
      return undefined;
    }
    const issuesBefore = this.issues.length;
    for (const k of Object.keys(g)) {
      if (!GRAPH_KEYS.includes(k)) {
        const guess = closest(k, GRAPH_KEYS);
        this.warn(
          [...at, k],
          `the graph has an unknown key ${k}, which is ignored`,
          guess ? `did you mean ${guess}?` : `graph keys are ${GRAPH_KEYS.join(', ')}`,
        );
      }
    }
    const subscribes = g['subscribes'];
    if (typeof subscribes !== 'string' || !TOPIC.test(subscribes))
      this.err(
        [...at, 'subscribes'],
        subscribes === undefined ? 'the graph has no subscribes topic' : `subscribes ${JSON.stringify(subscribes)} is not a topic`,
        'the topic pub() starts this workflow with, e.g. order.placed',
      );
    const publishes = g['publishes'];
    if (publishes !== undefined && (typeof publishes !== 'string' || !TOPIC.test(publishes)))
      this.err([...at, 'publishes'], `publishes ${JSON.stringify(publishes)} is not a topic`);
    const expire = g['expire'];
    if (expire !== undefined && (typeof expire !== 'number' || !Number.isInteger(expire) || expire < -1))
      this.err([...at, 'expire'], `expire must be whole seconds (−1 keeps finished workflows forever), not ${JSON.stringify(expire)}`);
    const persistent = g['persistent'];
    if (persistent !== undefined && typeof persistent !== 'boolean') this.err([...at, 'persistent'], 'persistent must be true or false');
    const input = this.schemaHolder(g['input'], [...at, 'input']);
    const output = this.schemaHolder(g['output'], [...at, 'output']);

    const rawActivities = g['activities'];
    if (!isObj(rawActivities) || Object.keys(rawActivities).length === 0) {
      this.err([...at, 'activities'], 'the graph has no activities', 'add `activities:` with a trigger, e.g. `t1: { type: trigger }`');
      return undefined;
    }
    const activities: Record<string, CompiledActivity> = {};
    const pending: PendingRef[] = [];
    for (const [aid, a] of Object.entries(rawActivities)) {
      const compiled = this.activity(aid, a, [...at, 'activities', aid], pending);
      if (compiled) activities[aid] = compiled;
    }
    const ids = Object.keys(rawActivities);
    const triggers = Object.values(activities).filter((a) => a.type === 'trigger');
    if (triggers.length === 0 && ids.every((id) => activities[id] !== undefined))
      this.err(
        [...at, 'activities'],
        'the graph has no trigger activity',
        'add one activity with `type: trigger`; it receives the pub() data',
      );
    if (triggers.length > 1)
      this.err(
        [...at, 'activities', triggers[1]!.id, 'type'],
        `the graph has ${triggers.length} triggers (${triggers.map((t) => t.id).join(', ')})`,
        'a graph has exactly one trigger',
      );

    // Transitions.
    // An empty `transitions:` line is null: the same as none.
    const rawTransitions = g['transitions'] ?? undefined;
    const edgeAt = new Map<string, PathSegment[]>();
    if (rawTransitions !== undefined && !isObj(rawTransitions))
      this.err([...at, 'transitions'], 'transitions must be a mapping of activity id → list of { to, conditions }');
    if (isObj(rawTransitions)) {
      for (const [from, list] of Object.entries(rawTransitions)) {
        const fromAt = [...at, 'transitions', from];
        if (!(from in rawActivities)) {
          const guess = closest(from, ids);
          this.err(
            fromAt,
            `transitions from ${from}, which is not an activity of this graph`,
            guess ? `did you mean ${guess}?` : `activities are ${ids.join(', ')}`,
          );
          continue;
        }
        if (!Array.isArray(list)) {
          this.err(fromAt, `transitions of ${from} must be a list of { to, conditions }`, `write \`${from}:\\n  - to: next\``);
          continue;
        }
        list.forEach((edge, n) => {
          const eAt = [...fromAt, n];
          if (!isObj(edge) || typeof edge['to'] !== 'string') {
            this.err(eAt, 'a transition is { to: activityId, conditions? }');
            return;
          }
          const to = edge['to'];
          if (!(to in rawActivities)) {
            const guess = closest(to, ids);
            this.err(
              [...eAt, 'to'],
              `transition to ${to}, which is not an activity of this graph`,
              guess ? `did you mean ${guess}?` : `activities are ${ids.join(', ')}`,
            );
            return;
          }
          if (activities[to]?.type === 'trigger') {
            this.err(
              [...eAt, 'to'],
              `transition to the trigger ${to}`,
              'a workflow starts only from pub(); loop with a `cycle` activity instead',
            );
            return;
          }
          if (activities[from]?.children.includes(to)) {
            this.err([...eAt, 'to'], `a second transition from ${from} to ${to}`, 'merge their conditions into one transition (gate: or)');
            return;
          }
          const t: CompiledTransition = { to };
          if (edge['conditions'] !== undefined) {
            const cond = this.conditions(edge['conditions'], [...eAt, 'conditions'], from, pending);
            if (cond) t.conditions = cond;
          }
          const src = activities[from];
          const dst = activities[to];
          if (src && dst) {
            src.transitions.push(t);
            src.children.push(to);
            dst.parents.push(from);
            edgeAt.set(`${from}→${to}`, [...eAt, 'to']);
          }
        });
      }
    }

    // Hook rules.
    const hooks: CompiledHookRule[] = [];
    // An empty `hooks:` line is null: the same as none.
    const rawHooks = g['hooks'] ?? undefined;
    if (rawHooks !== undefined && !isObj(rawHooks))
      this.err([...at, 'hooks'], 'hooks must be a mapping of hook topic → list of { to, conditions }');
    if (isObj(rawHooks)) {
      for (const [topic, rules] of Object.entries(rawHooks)) {
        const tAt = [...at, 'hooks', topic];
        if (!TOPIC.test(topic)) this.err(tAt, `hook topic ${JSON.stringify(topic)} is not a topic`);
        if (!Array.isArray(rules) || rules.length === 0) {
          this.err(tAt, `hook rules for ${topic} must be a non-empty list of { to, conditions }`);
          continue;
        }
        rules.forEach((rule, n) => {
          const rAt = [...tAt, n];
          if (!isObj(rule) || typeof rule['to'] !== 'string') {
            this.err(rAt, 'a hook rule is { to: hookActivityId, conditions: { match: [...] } }');
            return;
          }
          const to = rule['to'];
          const target = activities[to];
          if (!(to in rawActivities)) {
            const guess = closest(to, ids);
            this.err(
              [...rAt, 'to'],
              `hook rule to ${to}, which is not an activity of this graph`,
              guess ? `did you mean ${guess}?` : undefined,
            );
            return;
          }
          if (target && target.type !== 'hook') {
            this.err(
              [...rAt, 'to'],
              `hook rule to ${to}, a ${target.type} activity`,
              'a hook rule targets an activity of `type: hook`, which waits for it',
            );
            return;
          }
          const r: CompiledHookRule = { topic, to };
          if (rule['conditions'] !== undefined) {
            const cond = this.conditions(rule['conditions'], [...rAt, 'conditions'], to, pending);
            if (cond) r.conditions = cond;
          }
          hooks.push(r);
          if (target && !target.hookTopics.includes(topic)) target.hookTopics.push(topic);
        });
      }
    }

    if (this.issues.length > issuesBefore) return undefined;
    const trigger = triggers[0]!;
    // The model must not depend on the key order of the file (the stored JSON has sorted keys).
    for (const a of Object.values(activities)) a.parents.sort();
    hooks.sort((x, y) => (x.topic < y.topic ? -1 : x.topic > y.topic ? 1 : 0));

    // Loops: a transition path back to an activity is an error; loops go through `cycle`.
    const color = new Map<string, 1 | 2>();
    const reported = new Set<string>();
    const dfs = (id: string, stack: string[]): void => {
      color.set(id, 1);
      for (const child of activities[id]!.children) {
        if (color.get(child) === 1) {
          const loop = [...stack.slice(stack.indexOf(child)), id, child];
          const key = `${id}→${child}`;
          if (!reported.has(key)) {
            reported.add(key);
            this.err(
              edgeAt.get(key) ?? at,
              `transitions form a loop (${loop.join(' → ')})`,
              `end the loop with an activity \`{ type: cycle, ancestor: ${child} }\` and mark ${child} \`cycle: true\`; each pass then gets its own data`,
            );
          }
        } else if (!color.has(child)) dfs(child, [...stack, id]);
      }
      color.set(id, 2);
    };
    for (const id of ids) if (!color.has(id)) dfs(id, []);

    // Reachability and order (breadth-first from the trigger).
    const order: string[] = [trigger.id];
    for (let i = 0; i < order.length; i++)
      for (const child of activities[order[i]!]!.children) if (!order.includes(child)) order.push(child);
    for (const id of ids)
      if (!order.includes(id))
        this.err(
          [...at, 'activities', id],
          `activity ${id} is never reached from the trigger ${trigger.id}`,
          `add a transition to it (e.g. under transitions.${trigger.id}) or remove it`,
        );

    // Ancestors: everything that can reach an activity.
    for (const a of Object.values(activities)) {
      const seen = new Set<string>();
      const queue = [...a.parents];
      while (queue.length > 0) {
        const p = queue.shift()!;
        if (seen.has(p)) continue;
        seen.add(p);
        queue.push(...activities[p]!.parents);
      }
      seen.delete(a.id);
      a.ancestors = [...seen].sort();
    }

    // Cycle activities return to a marked ancestor.
    const cycleTargets: Record<string, string[]> = {};
    for (const a of Object.values(activities)) if (a.cycle) cycleTargets[a.id] = [];
    for (const a of Object.values(activities)) {
      if (a.type !== 'cycle') continue;
      const aAt = [...at, 'activities', a.id, 'ancestor'];
      const anc = a.ancestor;
      if (anc === undefined)
        this.err(
          [...at, 'activities', a.id],
          `cycle activity ${a.id} has no ancestor`,
          'add `ancestor: <id>` naming an upstream activity marked `cycle: true`',
        );
      else if (!activities[anc])
        this.err(
          aAt,
          `cycle ancestor ${anc} is not an activity of this graph`,
          closest(anc, ids) ? `did you mean ${closest(anc, ids)}?` : undefined,
        );
      else if (!a.ancestors.includes(anc))
        this.err(
          aAt,
          `cycle ancestor ${anc} is not upstream of ${a.id}`,
          `a cycle returns to an activity on the path from the trigger to ${a.id}`,
        );
      else if (!activities[anc].cycle)
        this.err(aAt, `cycle ancestor ${anc} is not marked \`cycle: true\``, `add \`cycle: true\` to activity ${anc}`);
      else cycleTargets[anc]!.push(a.id);
    }

    // Mapping paths name activities upstream of where they are read.
    for (const p of pending) {
      if (p.ref.root === '$app') {
        if (p.ref.path[0] === 'settings' && !hasPath(this.settings, p.ref.path.slice(1)))
          this.err(
            p.at,
            `${p.ref.text}: app settings have no ${p.ref.path.slice(1).join('.')}`,
            'add it under app.settings or fix the path',
          );
        continue;
      }
      if (p.ref.root === '$item' || p.ref.root === '$index') {
        if (!p.fanInput)
          this.err(
            p.at,
            `${p.ref.text}: ${p.ref.root} is defined only in the input.maps of an await with items (a fan-out)`,
            'read the element through input.maps of the await that fans out, e.g. `n: "{$item.n}"`',
          );
        continue;
      }
      if (typeof p.ref.root !== 'object') continue;
      const target = p.ref.root.activity;
      if (!activities[target]) {
        const guess = closest(target, ids);
        this.err(
          p.at,
          `${p.ref.text} names activity ${target}, which is not in this graph`,
          guess ? `did you mean {${[guess, ...p.ref.path].join('.')}}?` : `activities are ${ids.join(', ')}`,
        );
      } else if (target !== p.owner && !activities[p.owner]!.ancestors.includes(target)) {
        this.err(
          p.at,
          `${p.ref.text} reads activity ${target}, which is not upstream of ${p.owner}`,
          `a mapping reads activities on the path from the trigger to ${p.owner} (${[...activities[p.owner]!.ancestors, p.owner].join(', ')})`,
        );
      }
    }

    if (this.issues.length > issuesBefore) return undefined;
    const graph: CompiledGraph = {
      subscribes: subscribes as string,
      persistent: persistent === true,
      trigger: trigger.id,
      activities,
      order,
      hooks,
      cycleTargets,
    };
    if (typeof publishes === 'string') graph.publishes = publishes;
    if (typeof expire === 'number') graph.expire = expire;
    if (input) graph.input = input;
    if (output) graph.output = output;
    return graph;
  }

  private activity(aid: string, a: unknown, at: PathSegment[], pending: PendingRef[]): CompiledActivity | undefined {
    if (!ACTIVITY_ID.test(aid))
      this.err(
        at,
        `activity id ${JSON.stringify(aid)} is not valid`,
        'letters, digits, _ and -, starting with a letter or _ (no dots: mapping paths split on them)',
      );
    if (!isObj(a)) {
      this.err(at, `activity ${aid} must be a mapping with a type`);
      return undefined;
    }
    let type = a['type'];
    // HotMesh's legacy `activity` type is a hook.
    if (type === 'activity') type = 'hook';
    if (typeof type !== 'string' || !(ACTIVITY_TYPES as readonly string[]).includes(type)) {
      const guess = typeof type === 'string' ? closest(type, ACTIVITY_TYPES) : undefined;
      this.err(
        [...at, 'type'],
        type === undefined ? `activity ${aid} has no type` : `unknown activity type ${JSON.stringify(type)}`,
        guess ? `did you mean ${guess}?` : `types are ${ACTIVITY_TYPES.join(', ')}`,
      );
      return undefined;
    }
    for (const k of Object.keys(a)) {
      if (!ACTIVITY_KEYS.includes(k)) {
        const guess = closest(k, ACTIVITY_KEYS);
        this.warn([...at, k], `activity ${aid} has an unknown key ${k}, which is ignored`, guess ? `did you mean ${guess}?` : undefined);
      } else if (UNSUPPORTED_ACTIVITY_KEYS.includes(k))
        this.warn([...at, k], `activity ${aid}: ${k} is a HotMesh key that Partita does not carry out; it is ignored`);
    }
    const act: CompiledActivity = {
      id: aid,
      type: type as ActivityType,
      emit: false,
      cycle: false,
      hookTopics: [],
      parents: [],
      children: [],
      transitions: [],
      ancestors: [],
    };
    const str = (k: string): string | undefined => {
      const v = a[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'string' || v === '') {
        this.err([...at, k], `${k} must be a non-empty string`);
        return undefined;
      }
      return v;
    };
    const bool = (k: string): boolean | undefined => {
      const v = a[k];
      if (v === undefined) return undefined;
      if (typeof v !== 'boolean') {
        this.err([...at, k], `${k} must be true or false, not ${JSON.stringify(v)}`);
        return undefined;
      }
      return v;
    };
    const map = (value: unknown, vAt: PathSegment[]): MapExpr | undefined => this.mapping(value, vAt, aid, pending);

    const title = str('title');
    if (title !== undefined) act.title = title;
    act.emit = bool('emit') ?? false;
    act.cycle = bool('cycle') ?? false;

    for (const section of ['input', 'output'] as const) {
      const s = a[section];
      if (s === undefined) continue;
      if (!isObj(s)) {
        this.err([...at, section], `${section} must be a mapping with schema and/or maps`);
        continue;
      }
      const out: { schema?: unknown; maps?: MapExpr } = {};
      if (s['schema'] !== undefined && this.schema(s['schema'], [...at, section, 'schema'])) out.schema = s['schema'];
      if (s['maps'] !== undefined) {
        const before = pending.length;
        const m = this.mapsObject(s['maps'], [...at, section, 'maps'], aid, pending);
        if (m) out.maps = m;
        if (section === 'input' && act.type === 'await' && a['items'] !== undefined)
          for (const r of pending.slice(before)) r.fanInput = true;
      }
      act[section] = out;
    }
    if (a['job'] !== undefined) {
      const j = a['job'];
      if (!isObj(j)) this.err([...at, 'job'], 'job must be a mapping with maps (what this activity writes to the workflow data)');
      else if (j['maps'] !== undefined) {
        const m = this.mapsObject(j['maps'], [...at, 'job', 'maps'], aid, pending);
        if (m) act.job = { maps: m };
      }
    }
    if (a['hook'] !== undefined) {
      const h = a['hook'];
      if (!isObj(h)) this.err([...at, 'hook'], 'hook must be a mapping with a schema');
      else if (h['schema'] !== undefined && this.schema(h['schema'], [...at, 'hook', 'schema'])) act.hook = { schema: h['schema'] };
    }

    switch (act.type) {
      case 'trigger': {
        const stats = a['stats'];
        if (stats !== undefined) {
          if (!isObj(stats)) this.err([...at, 'stats'], 'stats must be a mapping (id, key, …)');
          else {
            act.stats = {};
            for (const [k, v] of Object.entries(stats)) {
              const m = map(v, [...at, 'stats', k]);
              if (m) act.stats[k] = m;
            }
          }
        }
        break;
      }
      case 'worker': {
        const topic = str('topic');
        if (topic === undefined && a['topic'] === undefined)
          this.err(at, `worker ${aid} has no topic`, 'add `topic: <job type>` naming a job defined with defineJob on the nodes');
        if (topic !== undefined) act.topic = topic;
        const queue = str('queue');
        if (queue !== undefined) act.queue = queue;
        const retry = this.retry(a['retry'], [...at, 'retry']);
        if (retry) act.retry = retry;
        if (a['timeout'] !== undefined) {
          if (typeof a['timeout'] !== 'number' || !(a['timeout'] > 0))
            this.err([...at, 'timeout'], 'timeout must be a number of seconds > 0');
          else act.timeout = a['timeout'];
        }
        break;
      }
      case 'await': {
        const topic = str('topic');
        if (topic === undefined && a['topic'] === undefined)
          this.err(at, `await ${aid} has no topic`, 'add `topic:` naming the subscribes of the child graph');
        if (topic !== undefined) act.topic = topic;
        const wait = bool('await');
        if (wait !== undefined) act.await = wait;
        if (a['items'] !== undefined) {
          const m = map(a['items'], [...at, 'items']);
          if (m) act.items = m;
        }
        const retry = this.retry(a['retry'], [...at, 'retry']);
        if (retry) act.retry = retry;
        break;
      }
      case 'hook': {
        if (a['sleep'] !== undefined) {
          const s = a['sleep'];
          if (typeof s === 'number' && !(s >= 0)) this.err([...at, 'sleep'], 'sleep must be seconds ≥ 0');
          else if (typeof s === 'number' || typeof s === 'string' || isObj(s)) {
            const m = map(s, [...at, 'sleep']);
            if (m) act.sleep = m;
          } else this.err([...at, 'sleep'], 'sleep is a number of seconds or a mapping that gives one');
        }
        break;
      }
      case 'signal': {
        const subtype = a['subtype'] ?? 'one';
        if (subtype !== 'one' && subtype !== 'all')
          this.err([...at, 'subtype'], `signal subtype must be one or all, not ${JSON.stringify(subtype)}`);
        else act.subtype = subtype;
        const topic = str('topic');
        if (topic === undefined && a['topic'] === undefined)
          this.err(at, `signal ${aid} has no topic`, 'add `topic:` naming the hook topic to signal');
        if (topic !== undefined) act.topic = topic;
        for (const k of ['signal', 'resolver'] as const) {
          const s = a[k];
          if (s === undefined) continue;
          if (!isObj(s)) {
            this.err([...at, k], `${k} must be a mapping with schema and/or maps`);
            continue;
          }
          const out: { schema?: unknown; maps?: MapExpr } = {};
          if (s['schema'] !== undefined && this.schema(s['schema'], [...at, k, 'schema'])) out.schema = s['schema'];
          if (s['maps'] !== undefined) {
            const m = this.mapsObject(s['maps'], [...at, k, 'maps'], aid, pending);
            if (m) out.maps = m;
          }
          act[k] = out;
        }
        if (act.subtype === 'all' && !act.resolver?.maps)
          this.err(
            at,
            `signal ${aid} with subtype all has no resolver.maps`,
            'add `resolver: { maps: { key_name: …, key_value: … } }` naming the search field that selects the workflows',
          );
        const status = str('status');
        if (status !== undefined) {
          if (status !== 'success' && status !== 'pending' && status !== 'error')
            this.err([...at, 'status'], `signal status must be success, pending (keep the hook waiting) or error, not ${status}`);
          else act.status = status;
        }
        if (a['code'] !== undefined) {
          if (a['code'] !== 200 && a['code'] !== 202)
            this.err([...at, 'code'], 'signal code must be 200 (close the hook) or 202 (keep it open)');
          else if (status === 'error' || (status !== undefined && (status === 'pending') !== (a['code'] === 202)))
            this.err(
              [...at, 'code'],
              `signal code ${a['code']} does not go with status ${status}: 202 is the pending answer, an error's code is 500`,
            );
          else act.code = a['code'];
        }
        const scrub = bool('scrub');
        if (scrub !== undefined) act.scrub = scrub;
        break;
      }
      case 'cycle': {
        const anc = str('ancestor');
        if (anc !== undefined) act.ancestor = anc;
        break;
      }
      case 'interrupt': {
        const topic = str('topic');
        if (topic !== undefined) act.topic = topic;
        if (a['target'] !== undefined) {
          const m = map(a['target'], [...at, 'target']);
          if (m) act.target = m;
        }
        if (a['reason'] !== undefined) {
          const m = map(a['reason'], [...at, 'reason']);
          if (m) act.reason = m;
        }
        const t = bool('throw');
        act.throw = t ?? true;
        act.descend = bool('descend') ?? false;
        if (a['code'] !== undefined) {
          if (typeof a['code'] !== 'number' || !Number.isInteger(a['code']))
            this.err([...at, 'code'], 'interrupt code must be an integer (default 410)');
          else act.code = a['code'];
        } else act.code = 410;
        break;
      }
    }
    if (a['items'] !== undefined && act.type !== 'await')
      this.err(
        [...at, 'items'],
        `items is only read by an await activity (a fan-out of child workflows), not by a ${act.type}`,
        'use `type: await` with `topic:` naming the child graph, or remove items',
      );
    if (act.cycle && act.type === 'cycle')
      this.err(
        [...at, 'cycle'],
        'a cycle activity cannot itself be a cycle target',
        'mark the activity it returns to `cycle: true` instead',
      );
    return act;
  }

  private retry(r: unknown, at: PathSegment[]): RetryPolicy | undefined {
    if (r === undefined) return undefined;
    if (!isObj(r)) {
      this.err(at, 'retry must be { maximumAttempts, backoffCoefficient, maximumInterval }');
      return undefined;
    }
    const out: RetryPolicy = {};
    for (const [k, v] of Object.entries(r)) {
      if (k !== 'maximumAttempts' && k !== 'backoffCoefficient' && k !== 'maximumInterval') {
        const guess = closest(k, ['maximumAttempts', 'backoffCoefficient', 'maximumInterval']);
        this.err(
          [...at, k],
          `unknown retry setting ${k}`,
          guess ? `did you mean ${guess}?` : 'retry has maximumAttempts, backoffCoefficient and maximumInterval (seconds)',
        );
      } else if (typeof v !== 'number' || !(v > 0) || (k === 'maximumAttempts' && !Number.isInteger(v))) {
        this.err([...at, k], `${k} must be a ${k === 'maximumAttempts' ? 'whole ' : ''}number > 0, not ${JSON.stringify(v)}`);
      } else out[k] = v;
    }
    return out;
  }

  private conditions(c: unknown, at: PathSegment[], owner: string, pending: PendingRef[]): CompiledCondition | undefined {
    if (!isObj(c)) {
      this.err(at, 'conditions must be a mapping { match: [{ expected, actual }], gate?, code? }');
      return undefined;
    }
    const out: CompiledCondition = { gate: 'and', match: [] };
    let ok = true;
    for (const k of Object.keys(c)) {
      if (k !== 'match' && k !== 'gate' && k !== 'code') {
        this.err(
          [...at, k],
          `unknown condition key ${k}`,
          closest(k, ['match', 'gate', 'code'])
            ? `did you mean ${closest(k, ['match', 'gate', 'code'])}?`
            : 'conditions have match, gate and code',
        );
        ok = false;
      }
    }
    if (c['gate'] !== undefined) {
      if (c['gate'] !== 'and' && c['gate'] !== 'or') {
        this.err(
          [...at, 'gate'],
          `gate must be and or or, not ${JSON.stringify(c['gate'])}`,
          '`and`: every match must hold (the default); `or`: one is enough',
        );
        ok = false;
      } else out.gate = c['gate'];
    }
    if (c['code'] !== undefined) {
      const code = c['code'];
      if (typeof code !== 'number' || !Number.isInteger(code) || code < 100 || code > 599) {
        this.err([...at, 'code'], `code must be a status such as 200 or 202, not ${JSON.stringify(code)}`);
        ok = false;
      } else out.code = code;
    }
    if (c['match'] !== undefined) {
      const m = c['match'];
      if (!Array.isArray(m) || m.length === 0) {
        this.err(
          [...at, 'match'],
          'match must be a non-empty list of { expected, actual }',
          'e.g. match: [{ expected: true, actual: "{a1.output.data.ok}" }]',
        );
        ok = false;
      } else {
        m.forEach((item, i) => {
          const iAt = [...at, 'match', i];
          if (!isObj(item) || !('expected' in item) || !('actual' in item)) {
            this.err(iAt, 'each match is { expected, actual }', 'both keys are needed; either side may be a literal, a {path} or a @pipe');
            ok = false;
            return;
          }
          const extra = Object.keys(item).filter((k) => k !== 'expected' && k !== 'actual');
          if (extra.length > 0) {
            this.err([...iAt, extra[0]!], `unknown match key ${extra[0]}`, 'a match has only expected and actual');
            ok = false;
            return;
          }
          const expected = this.mapping(item['expected'], [...iAt, 'expected'], owner, pending);
          const actual = this.mapping(item['actual'], [...iAt, 'actual'], owner, pending);
          if (expected && actual) out.match.push({ expected, actual });
          else ok = false;
        });
      }
    } else if (c['code'] === undefined) {
      this.err(at, 'conditions need match (and/or code)', 'remove `conditions` for an unconditional transition');
      ok = false;
    }
    return ok ? out : undefined;
  }

  /** `maps:` is a mapping of field → mapping value. */
  private mapsObject(m: unknown, at: PathSegment[], owner: string, pending: PendingRef[]): MapExpr | undefined {
    if (!isObj(m)) {
      this.err(at, 'maps must be a mapping of field: value');
      return undefined;
    }
    return this.mapping(m, at, owner, pending);
  }

  private mapping(value: unknown, at: PathSegment[], owner: string, pending: PendingRef[]): MapExpr | undefined {
    const parsed = parseMapping(value);
    for (const p of parsed.problems) this.err([...at, ...p.at], p.message, p.hint);
    for (const r of parsed.refs) pending.push({ owner, ref: r.ref, at: [...at, ...r.at] });
    return parsed.problems.length > 0 ? undefined : parsed.expr;
  }

  private schemaHolder(h: unknown, at: PathSegment[]): { schema?: unknown } | undefined {
    if (h === undefined) return undefined;
    if (!isObj(h)) {
      this.err(at, `${String(at[at.length - 1])} must be a mapping with a schema`);
      return undefined;
    }
    if (h['schema'] === undefined) return {};
    return this.schema(h['schema'], [...at, 'schema']) ? { schema: h['schema'] } : undefined;
  }

  /** Compiles a JSON Schema now, so a bad one fails the deploy rather than the first pub(). */
  private schema(schema: unknown, at: PathSegment[]): boolean {
    if (!isObj(schema) && typeof schema !== 'boolean') {
      this.err(at, 'a schema is a JSON Schema mapping (type, properties, required…)');
      return false;
    }
    // A fresh validator per schema: two schemas may carry the same $id without being one schema.
    const ajv = new Ajv({ strict: false, logger: false, validateFormats: false, allErrors: true });
    let valid: boolean;
    try {
      valid = ajv.validateSchema(schema as object) as boolean;
    } catch (err) {
      // e.g. a `$schema` of a draft this validator does not carry.
      this.err(
        at,
        `invalid JSON Schema: ${(err as Error).message}`,
        'JSON Schema draft-07 is supported; remove `$schema` or set it to http://json-schema.org/draft-07/schema#',
      );
      return false;
    }
    if (!valid) {
      const first = ajv.errors?.[0];
      const inner = first?.instancePath
        ? first.instancePath
            .split('/')
            .slice(1)
            .map((s) => s.replace(/~1/g, '/').replace(/~0/g, '~'))
        : [];
      const where = inner.map((s, i) => (Array.isArray(pathValue(schema, inner.slice(0, i))) ? Number(s) : s));
      this.err(
        [...at, ...where],
        `invalid JSON Schema: ${first?.instancePath || '(schema)'} ${first?.message ?? 'is not valid'}${first?.params && 'allowedValues' in first.params ? ` (${(first.params as { allowedValues: unknown[] }).allowedValues.join(', ')})` : ''}`,
        'see json-schema.org for the keywords; types are string, number, integer, boolean, object, array, null',
      );
      return false;
    }
    try {
      ajv.compile(schema as object);
    } catch (err) {
      this.err(at, `invalid JSON Schema: ${(err as Error).message}`);
      return false;
    }
    return true;
  }
}

function pathValue(v: unknown, path: string[]): unknown {
  let cur = v;
  for (const s of path) cur = isObj(cur) || Array.isArray(cur) ? (cur as Record<string, unknown>)[s] : undefined;
  return cur;
}

function hasPath(v: unknown, path: string[]): boolean {
  let cur = v;
  for (const s of path) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, s)) return false;
    cur = (cur as Record<string, unknown>)[s];
  }
  return true;
}
