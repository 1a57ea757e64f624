import { ValidationError } from './errors.js';

/** The error a refusal is reported as: a message and the path of the offending item. */
export type PathErrorType = new (message: string, path?: string) => Error;

/**
 * Serialises a value for a jsonb column, refusing what JSON.stringify would silently mangle
 * (functions, symbols, Map/Set, NaN, undefined in arrays) so that what a handler receives is
 * exactly what was enqueued, and what Postgres's jsonb would refuse (a NUL character, unpaired
 * surrogates) so that a bad value fails where it is made instead of in a batch write. Returns the
 * JSON text and its size in bytes. `what` names the value in error messages; a function is called
 * only when there is an error to report, so batch callers need not build a path string per item.
 * Refusals are ValidationErrors unless `errorType` says otherwise.
 */
export function toJsonStrict(
  value: unknown,
  what: string | (() => string),
  limitBytes?: number,
  errorType: PathErrorType = ValidationError,
): { json: string; bytes: number } {
  // Strings, booleans and null need no walk (nor its allocation).
  if (value !== null && typeof value !== 'string' && typeof value !== 'boolean' && value !== undefined)
    check(value, new Walk(what, errorType));
  let json: string;
  try {
    json = JSON.stringify(value === undefined ? null : value);
  } catch (err) {
    throw new errorType(
      `is not JSON-serialisable (${(err as Error).message}); pass plain objects, arrays, strings, numbers, booleans or null`,
      name(what),
    );
  }
  // JSON.stringify writes both as escapes, so one scan of the text rules them out; the walk that
  // names the path runs only on a hit (which may be an escaped backslash followed by "u0000").
  if (json.includes('\\u0000') || json.includes('\\ud')) checkText(value, json, new Walk(what, errorType));
  const bytes = Buffer.byteLength(json, 'utf8');
  if (limitBytes !== undefined && bytes > limitBytes) {
    throw new errorType(
      `is ${bytes} bytes of JSON, over the ${limitBytes}-byte limit; store large data elsewhere and enqueue a reference, or raise limits.payloadBytes`,
      name(what),
    );
  }
  return { json, bytes };
}

function name(what: string | (() => string)): string {
  return typeof what === 'function' ? what() : what;
}

/**
 * Where the walk is: the objects being visited (to see cycles) and the key or index taken at
 * each level below them (deeper entries are stale). The path string is built from them only for
 * an error message: building it for every nested item was most of the cost of checking small
 * payloads.
 */
class Walk {
  readonly what: string | (() => string);
  readonly errorType: PathErrorType;
  readonly ancestors: object[] = [];
  readonly keys: (string | number)[] = [];
  constructor(what: string | (() => string), errorType: PathErrorType) {
    this.what = what;
    this.errorType = errorType;
  }
  /** Reports the value reached through the first `ancestors.length` keys. */
  fail(message: string): never {
    let path = name(this.what);
    for (let i = 0; i < this.ancestors.length; i++) {
      const key = this.keys[i]!;
      path += typeof key === 'number' ? `[${key}]` : `.${key}`;
    }
    throw new this.errorType(message, path);
  }
}

function check(value: unknown, walk: Walk): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return;
    case 'number':
      if (!Number.isFinite(value)) walk.fail(`is ${value}, which JSON cannot represent; use null or a string`);
      return;
    case 'bigint':
      walk.fail('is a BigInt, which JSON cannot represent; convert it to a string');
    case 'function':
    case 'symbol':
      walk.fail(`is a ${typeof value}, which cannot be stored; pass data only`);
  }
  if (value === null) return;
  const obj = value as object;
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') return; // Date and friends define their own form
  if (obj instanceof Map || obj instanceof Set) {
    walk.fail(`is a ${obj.constructor.name}, which JSON turns into {}; convert it to an object or array`);
  }
  const { ancestors, keys } = walk;
  // Payloads are shallow, so scanning the objects above is cheaper than a Set per value.
  if (ancestors.includes(obj)) walk.fail('contains a circular reference; JSON cannot represent cycles');
  const depth = ancestors.length;
  ancestors.push(obj);
  if (Array.isArray(obj)) {
    for (let i = 0; i < obj.length; i++) {
      const item: unknown = obj[i];
      keys[depth] = i;
      if (item === undefined) {
        if (!(i in obj)) continue; // a hole, which forEach skipped too
        walk.fail('is undefined inside an array, which JSON turns into null; use null');
      }
      check(item, walk);
    }
  } else {
    const own = Object.keys(obj);
    for (let i = 0; i < own.length; i++) {
      const key = own[i]!;
      keys[depth] = key;
      check((obj as Record<string, unknown>)[key], walk);
    }
  }
  ancestors.pop();
}

const UNPAIRED_SURROGATE = /[\ud800-\udbff](?![\udc00-\udfff])|(?<![\ud800-\udbff])[\udc00-\udfff]/;
/** A \u0000 or \udXXX escape in JSON text that is not an escaped backslash followed by "u…". */
const REFUSED_ESCAPE = /(?<!\\)(?:\\\\)*\\u(?:0000|d[89a-f])/;

/** Finds the string (or key) Postgres's jsonb would refuse; `json` is the text, for what the walk cannot see. */
function checkText(value: unknown, json: string, walk: Walk): void {
  walkText(value, walk);
  // Not in any string the walk reached, so it came out of a toJSON.
  if (REFUSED_ESCAPE.test(json))
    walk.fail('contains a NUL character or an unpaired surrogate, which Postgres cannot store in JSON; remove it');
}

function walkText(value: unknown, walk: Walk): void {
  if (typeof value === 'string') {
    textProblem(value, walk);
    return;
  }
  if (value === null || typeof value !== 'object' || typeof (value as { toJSON?: unknown }).toJSON === 'function') return;
  const { ancestors, keys } = walk;
  const depth = ancestors.length;
  ancestors.push(value);
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      keys[depth] = i;
      walkText(value[i], walk);
    }
  } else {
    for (const key of Object.keys(value)) {
      keys[depth] = key;
      const item = (value as Record<string, unknown>)[key];
      if (item === undefined || typeof item === 'function' || typeof item === 'symbol') continue; // left out of the JSON
      textProblem(key, walk, 'its key ');
      walkText(item, walk);
    }
  }
  ancestors.pop();
}

function textProblem(text: string, walk: Walk, which = ''): void {
  if (text.includes('\u0000')) walk.fail(`${which}contains a NUL character (\\u0000), which Postgres cannot store in JSON; remove it`);
  if (UNPAIRED_SURROGATE.test(text))
    walk.fail(`${which}contains an unpaired UTF-16 surrogate (broken text), which Postgres cannot store in JSON; fix the text`);
}
