/**
 * A small declarative schema and the walker that checks a parsed config against it. The walker
 * never stops at the first problem: it reports every one it finds (with its key path) and keeps
 * going, so a config with five mistakes is fixed in one round trip rather than five.
 */
import { isAbsolute, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { closest } from './suggest.js';
import type { PathSegment } from './yaml.js';

interface NodeBase {
  /** What the value is for; shown in messages after what is expected. */
  doc: string;
  /** The key must be present (and not null). */
  required?: boolean;
  /** Used when the key is absent or null; walked like a given value, so paths resolve and so on. */
  default?: unknown;
  /** Default computed from the sibling values (already normalised), when `default` is not enough. */
  defaultFrom?: (siblings: Readonly<Record<string, unknown>>) => unknown;
  /** An absent mapping stays absent (otherwise absent mappings are filled with their defaults). */
  optional?: boolean;
  /** Other spellings of the value, rewritten before it is checked. */
  shorthands?: readonly Shorthand[];
  /** Extra text for "is required" messages, e.g. an example. */
  requiredHint?: string;
}

export interface Shorthand {
  when: (value: unknown) => boolean;
  /** How this spelling reads in "expected …" messages. */
  expect: string;
  /** The long form; `undefined` means "switched off" and the key is left out of the result. */
  expand: (value: never) => unknown;
}

export interface StringNode extends NodeBase {
  type: 'string';
  oneOf?: readonly string[];
  pattern?: RegExp;
  /** What the pattern allows, in words. */
  patternHint?: string;
  /** A file or directory path: relative ones resolve against the config file's directory. */
  isPath?: boolean;
  /** Never echo the value in a message (passwords, tokens, URLs with credentials). */
  secret?: boolean;
  /** Further check; returns a message describing what is expected when the value is wrong. */
  check?: (value: string) => string | undefined;
  /** Describes an acceptable value, when the default wording would not. */
  expect?: string;
}

export interface IntegerNode extends NodeBase {
  type: 'integer';
  min: number;
  max: number;
  unit?: 'ms' | 'bytes' | 'days';
}

export interface BooleanNode extends NodeBase {
  type: 'boolean';
}

/**
 * A cross-field rule over a mapping's normalised values; reports against one of its keys. It runs
 * only when every key it reads is valid (absent is fine), so one mistake is not reported twice.
 */
export interface Rule {
  keys: readonly string[];
  check(value: Readonly<Record<string, unknown>>, report: (key: string, message: string) => void): void;
}

export interface ObjectNode extends NodeBase {
  type: 'object';
  fields: Readonly<Record<string, SchemaNode>>;
  rules?: readonly Rule[];
  /** Final shape, once every field and rule passed. */
  normalize?: (value: Record<string, unknown>) => unknown;
}

/** A mapping whose keys are names chosen by the user (partitions, queues). */
export interface MapNode extends NodeBase {
  type: 'map';
  /** e.g. "partition name" */
  keyWhat: string;
  keyPattern: RegExp;
  keyHint: string;
  values: SchemaNode;
  minEntries?: number;
  /** How a minimal valid value looks, for "needs at least one" messages. */
  example?: string;
}

export interface ListNode extends NodeBase {
  type: 'list';
  items: SchemaNode;
  minItems?: number;
}

/** Values with an ad-hoc shape (several spellings that normalise to a tagged union). */
export interface CustomNode extends NodeBase {
  type: 'custom';
  expect: string;
  /** Returns the normalised value, or (when the value is wrong) an optional hint such as a suggestion. */
  check: (value: unknown, ctx: { resolvePath(p: string): string }) => { value: unknown } | { hint?: string; value?: never };
}

export type SchemaNode = StringNode | IntegerNode | BooleanNode | ObjectNode | MapNode | ListNode | CustomNode;

export interface RawProblem {
  path: PathSegment[];
  message: string;
}

export interface WalkOptions {
  /** Directory that relative paths resolve against. */
  baseDir: string;
  /**
   * Whether the value at a path was substituted from text (an environment variable or `${VAR}`);
   * such strings are converted to the number or boolean the schema wants, as a shell would.
   */
  substituted?: (path: readonly PathSegment[]) => boolean;
  /** Directory for relative paths that came from the environment rather than the file. */
  resolveBaseFor?: (path: readonly PathSegment[]) => string | undefined;
}

const BAD: unique symbol = Symbol('invalid');
type Out = unknown | typeof BAD;

/** Checks `value` against `schema`; returns the normalised value, or the problems found. */
export function walkSchema(schema: SchemaNode, value: unknown, opts: WalkOptions): { value: unknown; problems: RawProblem[] } {
  const problems: RawProblem[] = [];
  const w = new Walker(opts, problems);
  const out = w.node(schema, value, []);
  return { value: out === BAD ? undefined : out, problems };
}

class Walker {
  constructor(
    private readonly opts: WalkOptions,
    private readonly problems: RawProblem[],
  ) {}

  private report(path: PathSegment[], message: string): typeof BAD {
    this.problems.push({ path, message });
    return BAD;
  }

  node(node: SchemaNode, input: unknown, path: PathSegment[]): Out {
    let value = input;
    if (node.shorthands && !matchesOwnType(node, value)) {
      const s = node.shorthands.find((sh) => sh.when(value));
      if (s) {
        value = s.expand(value as never);
        if (value === undefined) return undefined;
      }
    }
    switch (node.type) {
      case 'string':
        return this.string(node, value, path);
      case 'integer':
        return this.integer(node, value, path);
      case 'boolean':
        return this.boolean(node, value, path);
      case 'object':
        return this.object(node, value, path);
      case 'map':
        return this.map(node, value, path);
      case 'list':
        return this.list(node, value, path);
      case 'custom': {
        const r = node.check(value, { resolvePath: (p) => this.resolve(p, path) });
        if ('value' in r) return r.value;
        return this.report(
          path,
          `expected ${expectation(node)} (${node.doc}), got ${describe(value, false)}${r.hint ? `; ${r.hint}` : ''}`,
        );
      }
    }
  }

  private mismatch(node: SchemaNode, value: unknown, path: PathSegment[], secret?: boolean): typeof BAD {
    let hint = '';
    if (node.type === 'string' && typeof value === 'number') hint = '; put the value in quotes so YAML reads it as text';
    return this.report(path, `expected ${expectation(node)} (${node.doc}), got ${describe(value, secret ?? false)}${hint}`);
  }

  private string(node: StringNode, value: unknown, path: PathSegment[]): Out {
    if (typeof value !== 'string') return this.mismatch(node, value, path, node.secret);
    if (node.oneOf && !node.oneOf.includes(value)) {
      const guess = closest(value, node.oneOf);
      return this.report(
        path,
        `expected ${expectation(node)} (${node.doc}), got ${describe(value, node.secret ?? false)}${guess ? `; did you mean "${guess}"?` : ''}`,
      );
    }
    if (value.trim() === '') return this.mismatch(node, value, path, node.secret);
    if (node.pattern && !node.pattern.test(value)) return this.mismatch(node, value, path, node.secret);
    if (node.check) {
      const problem = node.check(value);
      if (problem) return this.report(path, `expected ${problem} (${node.doc}), got ${describe(value, node.secret ?? false)}`);
    }
    return node.isPath ? this.resolve(value, path) : value;
  }

  private resolve(p: string, path: readonly PathSegment[]): string {
    if (/^file:\/\//i.test(p)) return fileURLToPath(p);
    if (isAbsolute(p)) return resolvePath(p);
    return resolvePath(this.opts.resolveBaseFor?.(path) ?? this.opts.baseDir, p);
  }

  private integer(node: IntegerNode, input: unknown, path: PathSegment[]): Out {
    let value = input;
    const numeric = typeof value === 'string' && /^\s*-?\d+\s*$/.test(value);
    if (numeric && this.opts.substituted?.(path)) value = Number(value);
    else if (numeric) {
      return this.report(
        path,
        `expected ${expectation(node)} (${node.doc}), got ${describe(value)}; remove the quotes so YAML reads it as a number`,
      );
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < node.min || value > node.max) {
      return this.mismatch(node, value, path);
    }
    return value;
  }

  private boolean(node: BooleanNode, input: unknown, path: PathSegment[]): Out {
    let value = input;
    if (typeof value === 'string' && this.opts.substituted?.(path)) {
      const v = value.trim().toLowerCase();
      if (v === 'true') value = true;
      else if (v === 'false') value = false;
    }
    if (typeof value !== 'boolean') return this.mismatch(node, value, path);
    return value;
  }

  private object(node: ObjectNode, value: unknown, path: PathSegment[]): Out {
    if (!isPlainObject(value)) return this.mismatch(node, value, path);
    const known = Object.keys(node.fields);
    for (const key of Object.keys(value)) {
      if (Object.prototype.hasOwnProperty.call(node.fields, key)) continue;
      const guess = closest(key, known);
      this.report([...path, key], `unknown key${guess ? `; did you mean "${guess}"?` : ''} (expected one of: ${known.join(', ')})`);
    }
    const out: Record<string, unknown> = {};
    const invalid = new Set<string>();
    const deferred: [string, SchemaNode][] = [];
    const put = (key: string, result: Out) => {
      if (result === BAD) invalid.add(key);
      else if (result !== undefined) out[key] = result;
    };
    for (const [key, field] of Object.entries(node.fields)) {
      const given = value[key];
      const at = [...path, key];
      if (given !== undefined && given !== null) put(key, this.node(field, given, at));
      else if (field.required) {
        put(
          key,
          this.report(
            at,
            `is required: expected ${expectation(field)} (${field.doc})${field.requiredHint ? `; ${field.requiredHint}` : ''}`,
          ),
        );
      } else if (field.default !== undefined) put(key, this.node(field, field.default, at));
      else if (field.defaultFrom) deferred.push([key, field]);
      else if (field.type === 'object' && !field.optional) put(key, this.node(field, {}, at));
    }
    for (const [key, field] of deferred) put(key, this.node(field, field.defaultFrom!(out), [...path, key]));
    let broken = false;
    for (const rule of node.rules ?? []) {
      if (rule.keys.some((k) => invalid.has(k))) continue;
      rule.check(out, (key, message) => {
        broken = true;
        this.report([...path, key], message);
      });
    }
    if (broken || invalid.size > 0) return BAD;
    return node.normalize ? node.normalize(out) : out;
  }

  private map(node: MapNode, value: unknown, path: PathSegment[]): Out {
    if (!isPlainObject(value)) return this.mismatch(node, value, path);
    const keys = Object.keys(value);
    let bad = false;
    if (keys.length < (node.minEntries ?? 0)) {
      this.report(
        path,
        `expected at least ${node.minEntries === 1 ? 'one' : node.minEntries} ${node.keyWhat} (${node.doc})${node.example ? `, e.g. ${node.example}` : ''}`,
      );
      bad = true;
    }
    const out: Record<string, unknown> = {};
    for (const key of keys) {
      if (key === '__proto__') {
        this.report([...path, key], `${node.keyWhat} name "__proto__" is reserved; choose another name`);
        bad = true;
        continue;
      }
      if (!node.keyPattern.test(key)) {
        this.report([...path, key], `${node.keyWhat} "${key}" is not allowed: ${node.keyHint}`);
        bad = true;
        continue;
      }
      let given = value[key];
      if ((given === null || given === undefined) && node.values.type === 'object') given = {};
      const result = this.node(node.values, given, [...path, key]);
      if (result === BAD) bad = true;
      else out[key] = result;
    }
    return bad ? BAD : out;
  }

  private list(node: ListNode, value: unknown, path: PathSegment[]): Out {
    if (!Array.isArray(value)) return this.mismatch(node, value, path);
    let bad = false;
    if (value.length < (node.minItems ?? 0)) {
      this.report(path, `expected at least ${node.minItems} item${node.minItems === 1 ? '' : 's'} (${node.doc})`);
      bad = true;
    }
    const out = value.map((item, i) => {
      const result = this.node(node.items, item, [...path, i]);
      if (result === BAD) bad = true;
      return result;
    });
    return bad ? BAD : out;
  }
}

function matchesOwnType(node: SchemaNode, value: unknown): boolean {
  switch (node.type) {
    case 'string':
      return typeof value === 'string';
    case 'integer':
      return typeof value === 'number';
    case 'boolean':
      return typeof value === 'boolean';
    case 'object':
    case 'map':
      return isPlainObject(value);
    case 'list':
      return Array.isArray(value);
    case 'custom':
      return false;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return false;
  const proto = Object.getPrototypeOf(value) as unknown;
  return proto === Object.prototype || proto === null;
}

/** "expected …" wording for a node, including its other accepted spellings. */
export function expectation(node: SchemaNode): string {
  let own: string;
  switch (node.type) {
    case 'string':
      own =
        node.expect ??
        (node.oneOf
          ? `one of ${node.oneOf.map((v) => `"${v}"`).join(', ')}`
          : node.patternHint
            ? `a string of ${node.patternHint}`
            : node.isPath
              ? 'a path (relative to the config file)'
              : 'a non-empty string');
      break;
    case 'integer':
      own = `an integer from ${node.min} to ${node.max}${node.unit ? ` ${node.unit}` : ''}`;
      break;
    case 'boolean':
      own = 'true or false';
      break;
    case 'object':
      own = 'a mapping';
      break;
    case 'map':
      own = `a mapping of ${node.keyWhat}s`;
      break;
    case 'list':
      own = 'a list';
      break;
    case 'custom':
      own = node.expect;
      break;
  }
  const alternatives = (node.shorthands ?? []).map((s) => s.expect);
  if (alternatives.length === 0) return own;
  const all = [own, ...alternatives];
  return `${all.slice(0, -1).join(', ')} or ${all[all.length - 1]}`;
}

/** How a wrong value reads in a message. Secrets are described by type only. */
export function describe(value: unknown, secret = false): string {
  if (value === null || value === undefined) return 'nothing';
  if (Array.isArray(value)) return 'a list';
  if (value instanceof Date)
    return `a date (${Number.isNaN(value.getTime()) ? 'invalid' : value.toISOString().slice(0, 10)}); put it in quotes`;
  switch (typeof value) {
    case 'string':
      if (secret) return 'a string (not shown)';
      {
        const shown = redactUrlPassword(value);
        return JSON.stringify(shown.length > 60 ? shown.slice(0, 57) + '...' : shown);
      }
    case 'number':
      return secret ? 'a number' : String(value);
    case 'boolean':
      return String(value);
    case 'function':
      return 'a function';
    case 'object':
      return 'a mapping';
    default:
      return typeof value;
  }
}

/** `postgres://user:secret@host` → `postgres://user:***@host`, so messages and logs do not leak passwords. */
export function redactUrlPassword(value: string): string {
  return value.replace(/(\b[a-z][a-z0-9+.-]*:\/\/[^:/?#@\s]*:)[^@/?#\s]*@/gi, '$1***@');
}

/** `partitions.billing.queues.default.concurrency`, `nats.servers[1]`, `partitions["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(seg)) out += out ? `.${seg}` : seg;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}
