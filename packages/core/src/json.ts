import { ValidationError } from './errors.js';

/**
 * Serialises a value for a jsonb column, refusing what JSON.stringify would silently mangle
 * (functions, symbols, Map/Set, NaN, undefined in arrays) so that what a handler receives is
 * exactly what was enqueued. Returns the JSON text and its size in bytes. `what` names the value
 * in error messages; a function is called only when there is an error to report, so batch
 * callers need not build a path string per item.
 */
export function toJsonStrict(value: unknown, what: string | (() => string), limitBytes?: number): { json: string; bytes: number } {
  // Strings, booleans and null need no walk (nor its allocation).
  if (value !== null && typeof value !== 'string' && typeof value !== 'boolean' && value !== undefined) check(value, new Walk(what));
  let json: string;
  try {
    json = JSON.stringify(value === undefined ? null : value);
  } catch (err) {
    throw new ValidationError(`is not JSON-serialisable (${(err as Error).message}); pass plain objects, arrays, strings, numbers, booleans or null`, name(what));
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (limitBytes !== undefined && bytes > limitBytes) {
    throw new ValidationError(
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
  readonly ancestors: object[] = [];
  readonly keys: (string | number)[] = [];
  constructor(what: string | (() => string)) {
    this.what = what;
  }
  /** Reports the value reached through the first `ancestors.length` keys. */
  fail(message: string): never {
    let path = name(this.what);
    for (let i = 0; i < this.ancestors.length; i++) {
      const key = this.keys[i]!;
      path += typeof key === 'number' ? `[${key}]` : `.${key}`;
    }
    throw new ValidationError(message, path);
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
