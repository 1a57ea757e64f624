/**
 * Keys declared as data. A job type's queue or execution key written as a template such as
 * `'invoice:{invoice}'` or `'customer-{customer.id}'` is stored with the type in Postgres by the
 * nodes that define it, so every enqueuer derives the same key from the payload: the CLI, a
 * bare connect(), another service. A key written as a function holds only where the function is
 * (clients given the definitions).
 *
 * Grammar: `{path}` is a dotted path into the payload (`{customer.id}`, `{lines.0.sku}`: array
 * items by index); `{{` and `}}` stand for literal braces; all else is literal text. A template
 * without placeholders is a constant key (one live job of the type at a time).
 *
 * Values: a string as is, a finite number or a boolean as written by String(). A path that is
 * missing, undefined or null is an error naming the path, never an empty or "undefined" key: a
 * key that silently lost its value would let the very duplicates it exists to refuse through.
 * An object, an array, NaN or Infinity is an error too (point the template at a value inside).
 */
import { ValidationError } from './errors.js';

/** A key as declared on a job type: a template (data, holds for every enqueuer) or a function of the payload. */
export type KeyRule<P = unknown> = string | ((payload: P) => string | undefined);

export type KeyKind = 'queueKey' | 'executionKey';

type Part = string | { path: string[]; source: string };

const SEGMENT = /^[^\s.{}]+$/;
const MAX_CACHED = 1000;
const compiled = new Map<string, Part[]>();

/**
 * Checks a template and returns its parts; a ValidationError at `where` says what is wrong.
 * defineJob calls it so a typo fails at start-up, not at the first enqueue.
 */
export function parseKeyTemplate(template: string, where = 'template'): Part[] {
  const cached = compiled.get(template);
  if (cached) return cached;
  if (typeof template !== 'string' || template.length === 0)
    throw new ValidationError('a key template must be a non-empty string such as "invoice:{invoice}"', where);
  const parts: Part[] = [];
  let text = '';
  for (let i = 0; i < template.length; i++) {
    const c = template[i]!;
    if (c === '}') {
      if (template[i + 1] !== '}')
        throw new ValidationError(`"}" at ${i} closes no "{" in ${JSON.stringify(template)}; write "}}" for a literal brace`, where);
      text += '}';
      i++;
      continue;
    }
    if (c !== '{') {
      text += c;
      continue;
    }
    if (template[i + 1] === '{') {
      text += '{';
      i++;
      continue;
    }
    const end = template.indexOf('}', i + 1);
    if (end < 0)
      throw new ValidationError(`"{" at ${i} is never closed in ${JSON.stringify(template)}; write "{{" for a literal brace`, where);
    const source = template.slice(i + 1, end);
    const path = source.split('.');
    if (path.some((segment) => !SEGMENT.test(segment))) {
      throw new ValidationError(
        `{${source}} in ${JSON.stringify(template)} is not a payload path; write dotted names without spaces or braces, such as {customer.id}`,
        where,
      );
    }
    if (text) parts.push(text);
    text = '';
    parts.push({ path, source });
    i = end;
  }
  if (text) parts.push(text);
  if (compiled.size >= MAX_CACHED) compiled.clear();
  compiled.set(template, parts);
  return parts;
}

export interface KeyContext {
  /** Job type, for messages. */
  type: string;
  which: KeyKind;
  /** Where the payload sits in the caller's input, e.g. `jobs[3].payload`; default `payload`. */
  at?: string;
}

/** The key a template gives for this payload; a ValidationError naming the payload path when it gives none. */
export function evaluateKeyTemplate(template: string, payload: unknown, context: KeyContext): string {
  const at = context.at ?? 'payload';
  const parts = parseKeyTemplate(template, `${context.which} of job type "${context.type}"`);
  let key = '';
  for (const part of parts) {
    if (typeof part === 'string') {
      key += part;
      continue;
    }
    const value = valueAt(payload, part.path);
    const where = `${at}.${part.source}`;
    const needs = `the ${context.which} template ${JSON.stringify(template)} of job type "${context.type}" needs a string, number or boolean here`;
    if (value === undefined || value === null) {
      throw new ValidationError(
        `is ${value === null ? 'null' : 'missing'}, but ${needs}; add it to the payload, or pass ${context.which} explicitly`,
        where,
      );
    }
    if (typeof value === 'string') key += value;
    else if (typeof value === 'boolean' || (typeof value === 'number' && Number.isFinite(value))) key += String(value);
    else
      throw new ValidationError(
        `is ${describe(value)}, but ${needs}; point the template at a value inside it (such as {${part.source}.id})`,
        where,
      );
  }
  return key;
}

/**
 * A job's key from its type's rule: a template is evaluated, a function called (what it throws
 * becomes a ValidationError at the payload). undefined when the rule gives none.
 */
export function keyFromRule(rule: KeyRule<any> | undefined, payload: unknown, context: KeyContext): string | undefined {
  if (rule === undefined) return undefined;
  if (typeof rule === 'string') return evaluateKeyTemplate(rule, payload, context);
  let key: string | undefined;
  try {
    key = rule(payload) ?? undefined;
  } catch (err) {
    throw new ValidationError(
      `${context.which}(payload) of job type "${context.type}" threw: ${(err as Error)?.message ?? String(err)}`,
      context.at ?? 'payload',
    );
  }
  return key;
}

function valueAt(payload: unknown, path: string[]): unknown {
  let value = payload;
  for (const segment of path) {
    // Own properties only (`{constructor}` is missing, not Object's constructor), and of an array
    // its items only (not its length): what JSON would carry.
    if (typeof value !== 'object' || value === null || !Object.hasOwn(value, segment)) return undefined;
    if (Array.isArray(value) && !/^\d+$/.test(segment)) return undefined;
    value = (value as Record<string, unknown>)[segment];
  }
  return value;
}

function describe(value: unknown): string {
  if (Array.isArray(value)) return 'an array';
  if (typeof value === 'number') return String(value); // NaN, Infinity
  if (typeof value === 'object') return 'an object';
  return `a ${typeof value}`;
}
