import { ValidationError, type Lookup } from '@partita/core';

const KEY = /^[A-Za-z0-9_.:-]{1,64}$/;

/**
 * Checks a lookup map and builds its index form: every value becomes an array of strings, so
 * `jobsByKey(p, 'customer', 42)` and an array element `tags: ['a']` are both one GIN `@>` probe.
 */
export function lookupIndex(lookup: Lookup | undefined, what = 'lookup'): Record<string, string[]> | null {
  if (lookup === undefined || lookup === null) return null;
  if (typeof lookup !== 'object' || Array.isArray(lookup)) {
    throw new ValidationError('must be an object of key → string | number | array of those', what);
  }
  const index: Record<string, string[]> = {};
  for (const [key, value] of Object.entries(lookup)) {
    if (!KEY.test(key)) throw new ValidationError(`key "${key}" must be 1-64 letters, digits or _ . : -`, what);
    const values = Array.isArray(value) ? value : [value];
    index[key] = values.map((v, i) => {
      if (typeof v === 'string') return v;
      if (typeof v === 'number' && Number.isFinite(v)) return String(v);
      throw new ValidationError(
        `must be a string, a finite number or an array of those`,
        `${what}.${key}${Array.isArray(value) ? `[${i}]` : ''}`,
      );
    });
  }
  return Object.keys(index).length ? index : null;
}

export function lookupValue(value: unknown, what = 'value'): string {
  if (typeof value === 'string') return value;
  if (typeof value === 'number' && Number.isFinite(value)) return String(value);
  throw new ValidationError('must be a string or a finite number', what);
}
