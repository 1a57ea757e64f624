import { ValidationError } from './errors.js';

/**
 * Serialises a value for a jsonb column, refusing what JSON.stringify would silently mangle
 * (functions, symbols, Map/Set, NaN, undefined in arrays) so that what a handler receives is
 * exactly what was enqueued. Returns the JSON text and its size in bytes.
 */
export function toJsonStrict(value: unknown, what: string, limitBytes?: number): { json: string; bytes: number } {
  check(value, what, new Set());
  let json: string;
  try {
    json = JSON.stringify(value === undefined ? null : value);
  } catch (err) {
    throw new ValidationError(`is not JSON-serialisable (${(err as Error).message}); pass plain objects, arrays, strings, numbers, booleans or null`, what);
  }
  const bytes = Buffer.byteLength(json, 'utf8');
  if (limitBytes !== undefined && bytes > limitBytes) {
    throw new ValidationError(
      `is ${bytes} bytes of JSON, over the ${limitBytes}-byte limit; store large data elsewhere and enqueue a reference, or raise limits.payloadBytes`,
      what,
    );
  }
  return { json, bytes };
}

function check(value: unknown, path: string, seen: Set<object>): void {
  switch (typeof value) {
    case 'string':
    case 'boolean':
    case 'undefined':
      return;
    case 'number':
      if (!Number.isFinite(value)) throw new ValidationError(`is ${value}, which JSON cannot represent; use null or a string`, path);
      return;
    case 'bigint':
      throw new ValidationError('is a BigInt, which JSON cannot represent; convert it to a string', path);
    case 'function':
    case 'symbol':
      throw new ValidationError(`is a ${typeof value}, which cannot be stored; pass data only`, path);
  }
  if (value === null) return;
  const obj = value as object;
  if (typeof (obj as { toJSON?: unknown }).toJSON === 'function') return; // Date and friends define their own form
  if (obj instanceof Map || obj instanceof Set) {
    throw new ValidationError(`is a ${obj.constructor.name}, which JSON turns into {}; convert it to an object or array`, path);
  }
  if (seen.has(obj)) throw new ValidationError('contains a circular reference; JSON cannot represent cycles', path);
  seen.add(obj);
  if (Array.isArray(obj)) {
    obj.forEach((item, i) => {
      if (item === undefined) throw new ValidationError('is undefined inside an array, which JSON turns into null; use null', `${path}[${i}]`);
      check(item, `${path}[${i}]`, seen);
    });
  } else {
    for (const [key, item] of Object.entries(obj)) check(item, `${path}.${key}`, seen);
  }
  seen.delete(obj);
}
