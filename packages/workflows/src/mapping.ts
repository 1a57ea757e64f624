/**
 * Mappings: the values of `input.maps`, `job.maps`, conditions and the like. A value is a literal,
 * a path in braces (`{a1.output.data.x}`, `{$self.hook.data.id}`, `{$job.metadata.jid}`,
 * `{$app.settings.x}`), a nullary function in braces (`{@date.now}`), a nested object or array of
 * those, or `{ '@pipe': rows }`.
 *
 * `@pipe`: row 0 is a list of cells whose values are resolved; each later row is
 * `[{@family.fn}, ...cells]`: the function is applied to the previous row's values followed by the
 * row's own cells, and the row's value is its result, so `[['{x}', 0], ['{@conditional.nullish}'],
 * ['{@math.add}', 1]]` is `(x ?? 0) + 1`. HotMesh instead passes a row's cells on to the next row and
 * drops the last row's; our users write pipes the way above (see the package README). A `{ '@pipe': rows }` row is a sub-pipe (fan-out); consecutive ones are evaluated and
 * their results become the arguments of the next function row (fan-in). The pipe's value is the
 * first value of its last row.
 *
 * Everything is parsed once at deploy into `MapExpr` (plain JSON, so a compiled graph can be
 * stored and reloaded), so evaluation does no string parsing and an unknown function is a
 * deploy-time error.
 */
import type { PathSegment } from '@partita/core';
import { closest } from '@partita/core';
import { MappingEvaluationError } from './errors.js';
import { lookupFunction, PIPE_FUNCTION_NAMES } from './functions.js';

/**
 * What a path in braces starts with. `$item` (the element, `{$item}` or `{$item.n}`) and `$index`
 * (its 0-based position) are read only by the `input.maps` of an `await` with `items` (a fan-out).
 */
export type PathRoot = '$self' | '$job' | '$app' | '$item' | '$index' | { activity: string };

export interface PathExpr {
  kind: 'path';
  root: PathRoot;
  /** The segments after the root, e.g. `['output', 'data', 'x']`. */
  path: string[];
  /** As written, for messages. */
  text: string;
}

export type MapExpr =
  | { kind: 'literal'; value: unknown }
  | PathExpr
  | { kind: 'call'; fn: string }
  | { kind: 'object'; entries: [string, MapExpr][] }
  | { kind: 'array'; items: MapExpr[] }
  | PipeExpr;

export interface PipeExpr {
  kind: 'pipe';
  rows: PipeRow[];
}

export type PipeRow = { kind: 'cells'; cells: MapExpr[] } | { kind: 'fn'; fn: string; params: MapExpr[] } | { kind: 'sub'; pipe: PipeExpr };

/** Data a mapping reads. Sections missing here read as undefined. */
export interface ActivityData {
  input?: { data?: unknown; metadata?: unknown };
  output?: { data?: unknown; metadata?: unknown };
  hook?: { data?: unknown; metadata?: unknown };
}

export interface MappingContext {
  /** Records of the activities that ran, by id. */
  activities?: Record<string, ActivityData>;
  /** The activity the mapping belongs to (`$self`). */
  self?: ActivityData;
  /** The workflow: `{$job.data.x}`, `{$job.metadata.jid}`. */
  job?: { data?: unknown; metadata?: unknown };
  /** `{$app.settings.x}`, `{$app.id}`, `{$app.version}`. */
  app?: { id?: string; version?: string; settings?: unknown };
  /** A fan-out's element (`{$item…}`) and its position (`{$index}`), while its child's input is mapped. */
  item?: unknown;
  index?: number;
}

export interface MappingProblem {
  /** Key path relative to the mapping's own position. */
  at: PathSegment[];
  message: string;
  hint?: string;
}

export interface ParsedMapping {
  expr: MapExpr;
  /** Every path the mapping reads, with where it is written (for upstream checks). */
  refs: { ref: PathExpr; at: PathSegment[] }[];
  problems: MappingProblem[];
}

const SECTIONS: Record<string, readonly string[]> = {
  activity: ['input', 'output', 'hook'],
  $job: ['data', 'metadata'],
  $app: ['settings', 'id', 'version'],
};

/** Parses a mapping value, collecting its problems instead of stopping at the first. */
export function parseMapping(value: unknown): ParsedMapping {
  const refs: ParsedMapping['refs'] = [];
  const problems: MappingProblem[] = [];

  const parseString = (s: string, at: PathSegment[]): MapExpr => {
    if (!(s.startsWith('{') && s.endsWith('}'))) return { kind: 'literal', value: s };
    const inner = s.slice(1, -1).trim();
    // Text in braces that no path could be (a JSON object, a sentence) stays a literal string.
    if (!/^[@$\w][\w.$@-]*$/.test(inner)) return { kind: 'literal', value: s };
    if (inner.startsWith('@')) {
      const fn = inner.slice(1);
      if (!checkFunction(fn, at)) return { kind: 'literal', value: undefined };
      return { kind: 'call', fn };
    }
    const ref = parsePath(s, inner, at);
    if (!ref) return { kind: 'literal', value: undefined };
    refs.push({ ref, at });
    return ref;
  };

  const checkFunction = (fn: string, at: PathSegment[]): boolean => {
    if (lookupFunction(fn)) return true;
    const guess = closest(fn, PIPE_FUNCTION_NAMES);
    problems.push({
      at,
      message: `unknown @pipe function {@${fn}}`,
      hint: guess
        ? `did you mean {@${guess}}?`
        : `functions are {@family.name} with family one of string, number, math, date, array, object, conditional, logical, json`,
    });
    return false;
  };

  const parsePath = (text: string, inner: string, at: PathSegment[]): PathExpr | undefined => {
    const parts = inner.split('.');
    if (parts[0] === '$item' || parts[0] === '$index') {
      if (parts.some((p) => p === '') || (parts[0] === '$index' && parts.length > 1)) {
        problems.push({ at, message: `malformed mapping path ${text}`, hint: 'write {$item}, {$item.field} or {$index}' });
        return undefined;
      }
      return { kind: 'path', root: parts[0], path: parts.slice(1), text };
    }
    if (parts.some((p) => p === '') || parts.length < 2) {
      problems.push({
        at,
        message: `malformed mapping path ${text}`,
        hint: 'write {activityId.output.data.field}, {$self.…}, {$job.data.…} or {$app.settings.…}',
      });
      return undefined;
    }
    const [head, ...rest] = parts as [string, ...string[]];
    let root: PathRoot;
    let sections: readonly string[];
    if (head === '$self') {
      root = '$self';
      sections = SECTIONS['activity']!;
    } else if (head === '$job' || head === '$app') {
      root = head;
      sections = SECTIONS[head]!;
    } else if (head.startsWith('$')) {
      problems.push({
        at,
        message: `unknown mapping root ${head} in ${text}`,
        hint: "paths start with an activity id, $self, $job or $app ($item and $index in a fan-out's input.maps)",
      });
      return undefined;
    } else {
      root = { activity: head };
      sections = SECTIONS['activity']!;
    }
    if (!sections.includes(rest[0]!)) {
      problems.push({
        at,
        message: `${text}: after ${head} comes one of ${sections.join(', ')}, not ${rest[0]}`,
        hint:
          root === '$app'
            ? 'e.g. {$app.settings.retries}'
            : root === '$job'
              ? 'e.g. {$job.data.total} or {$job.metadata.jid}'
              : 'e.g. {a1.output.data.total}',
      });
      return undefined;
    }
    return { kind: 'path', root, path: rest, text };
  };

  const parseCell = (cell: unknown, at: PathSegment[]): MapExpr =>
    typeof cell === 'string' ? parseString(cell, at) : { kind: 'literal', value: cell };

  const parsePipe = (rows: unknown, at: PathSegment[]): PipeExpr => {
    const out: PipeRow[] = [];
    if (!Array.isArray(rows) || rows.length === 0) {
      problems.push({
        at,
        message: '@pipe must be a non-empty list of rows',
        hint: "e.g. '@pipe': [['{a1.output.data.n}', 1], ['{@math.add}']]",
      });
      return { kind: 'pipe', rows: out };
    }
    rows.forEach((row, i) => {
      const rowAt = [...at, i];
      if (isPipeObject(row)) {
        out.push({ kind: 'sub', pipe: parsePipe(row['@pipe'], [...rowAt, '@pipe']) });
        return;
      }
      if (!Array.isArray(row)) {
        problems.push({
          at: rowAt,
          message: `a @pipe row is a list of cells or a nested '@pipe', not ${describe(row)}`,
          hint:
            row !== null && typeof row === 'object' && '@reduce' in row
              ? '@reduce is not supported; use array/object functions'
              : undefined,
        });
        return;
      }
      if (i === 0) {
        out.push({ kind: 'cells', cells: row.map((c, j) => parseCell(c, [...rowAt, j])) });
        return;
      }
      const first = row[0];
      if (typeof first !== 'string' || !/^\{@[^}]+\}$/.test(first)) {
        problems.push({
          at: [...rowAt, 0],
          message: `row ${i} of a @pipe must start with a function such as {@math.add}, not ${describe(first)}`,
          hint: 'only the first row lists plain values; each later row applies a function to the previous row',
        });
        return;
      }
      const fn = first.slice(2, -1).trim();
      checkFunction(fn, [...rowAt, 0]);
      out.push({ kind: 'fn', fn, params: row.slice(1).map((c, j) => parseCell(c, [...rowAt, j + 1])) });
    });
    const last = out[out.length - 1];
    if (last?.kind === 'sub')
      problems.push({
        at: [...at, rows.length - 1],
        message: 'a @pipe cannot end with a nested @pipe (fan-out)',
        hint: 'add a function row after it that combines the results (fan-in)',
      });
    return { kind: 'pipe', rows: out };
  };

  const parseValue = (v: unknown, at: PathSegment[]): MapExpr => {
    if (typeof v === 'string') return parseString(v, at);
    if (Array.isArray(v)) return { kind: 'array', items: v.map((item, i) => parseValue(item, [...at, i])) };
    if (isPipeObject(v)) {
      const extra = Object.keys(v).filter((k) => k !== '@pipe');
      if (extra.length > 0)
        problems.push({
          at: [...at, extra[0]!],
          message: `a '@pipe' value has no other keys (found ${extra.join(', ')})`,
          hint: 'move the other keys to a sibling mapping',
        });
      return parsePipe(v['@pipe'], [...at, '@pipe']);
    }
    if (v !== null && typeof v === 'object')
      return {
        kind: 'object',
        entries: Object.keys(v)
          .sort()
          .map((k) => [k, parseValue((v as Record<string, unknown>)[k], [...at, k])]),
      };
    return { kind: 'literal', value: v };
  };

  return { expr: parseValue(value, []), refs, problems };
}

function isPipeObject(v: unknown): v is { '@pipe': unknown } {
  return v !== null && typeof v === 'object' && !Array.isArray(v) && '@pipe' in v;
}

function describe(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return JSON.stringify(v);
}

function readPath(base: unknown, path: readonly string[]): unknown {
  let cur = base;
  for (const seg of path) {
    if (cur === null || typeof cur !== 'object' || !Object.prototype.hasOwnProperty.call(cur, seg)) return undefined;
    cur = (cur as Record<string, unknown>)[seg];
  }
  return cur;
}

function resolvePathExpr(p: PathExpr, ctx: MappingContext): unknown {
  if (p.root === '$index') return ctx.index;
  if (p.root === '$item') return readPath(ctx.item, p.path);
  const base =
    p.root === '$self' ? ctx.self : p.root === '$job' ? ctx.job : p.root === '$app' ? ctx.app : ctx.activities?.[p.root.activity];
  return readPath(base, p.path);
}

function call(fn: string, args: unknown[]): unknown {
  const f = lookupFunction(fn);
  if (!f) throw new MappingEvaluationError('unknown function (the mapping was not compiled by compileApp)', fn);
  try {
    return f(...args);
  } catch (err) {
    throw new MappingEvaluationError(`${(err as Error).message} (arguments: ${safeJson(args)})`, fn, { cause: err });
  }
}

function safeJson(v: unknown): string {
  try {
    const s = JSON.stringify(v);
    return s.length > 200 ? `${s.slice(0, 200)}…` : s;
  } catch {
    return String(v);
  }
}

function evaluatePipe(pipe: PipeExpr, ctx: MappingContext): unknown {
  let prior: unknown[] | null = null;
  let fanIn: unknown[] = [];
  for (const row of pipe.rows) {
    if (row.kind === 'sub') {
      fanIn.push(evaluatePipe(row.pipe, ctx));
    } else if (row.kind === 'cells') {
      prior = row.cells.map((c) => evaluateMapping(c, ctx));
    } else {
      if (fanIn.length > 0) {
        prior = fanIn;
        fanIn = [];
      }
      prior = [call(row.fn, [...(prior ?? []), ...row.params.map((c) => evaluateMapping(c, ctx))])];
    }
  }
  return prior?.[0];
}

/** Evaluates a compiled mapping against a workflow's data. Pure apart from `{@date.now}`/`{@math.random}`. */
export function evaluateMapping(compiled: MapExpr, context: MappingContext): unknown {
  switch (compiled.kind) {
    case 'literal':
      return compiled.value;
    case 'path':
      return resolvePathExpr(compiled, context);
    case 'call':
      return call(compiled.fn, []);
    case 'array':
      return compiled.items.map((i) => evaluateMapping(i, context));
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, v] of compiled.entries) out[k] = evaluateMapping(v, context);
      return out;
    }
    case 'pipe':
      return evaluatePipe(compiled, context);
  }
}

/**
 * What the mappings of one use (an activity's entry, its completion, a hook rule) read of a context:
 * which activities' records and whether `$self`, `$job`, `$app`. A context built from these only
 * evaluates them the same: a section missing from a context reads as undefined, and a path reads
 * nothing else.
 */
export interface MappingReads {
  activities: string[];
  self: boolean;
  job: boolean;
  app: boolean;
}

/** The reads of `exprs` (undefined ones skipped). */
export function mappingReads(exprs: readonly (MapExpr | undefined)[]): MappingReads {
  const activities = new Set<string>();
  const reads: MappingReads = { activities: [], self: false, job: false, app: false };
  const walk = (e: MapExpr): void => {
    switch (e.kind) {
      case 'literal':
      case 'call':
        return;
      case 'path':
        if (e.root === '$self') reads.self = true;
        else if (e.root === '$job') reads.job = true;
        else if (e.root === '$app') reads.app = true;
        else if (typeof e.root === 'object') activities.add(e.root.activity);
        return;
      case 'array':
        return e.items.forEach(walk);
      case 'object':
        return e.entries.forEach(([, v]) => walk(v));
      case 'pipe':
        for (const r of e.rows) {
          if (r.kind === 'cells') r.cells.forEach(walk);
          else if (r.kind === 'fn') r.params.forEach(walk);
          else walk(r.pipe);
        }
    }
  };
  for (const e of exprs) if (e) walk(e);
  reads.activities = [...activities].sort();
  return reads;
}
