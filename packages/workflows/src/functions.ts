/**
 * The `@pipe` function library: `{@family.name}`. Names and argument order follow HotMesh's
 * (`services/pipe/functions`), so a HotMesh app's mappings mean the same here. Two deliberate
 * differences: array and object functions never change their input (a mapping must not alter an
 * activity's recorded output), and values that JSON cannot hold (functions, regular expressions)
 * are not accepted as arguments, since every argument comes from YAML or workflow data.
 */
type Fn = (...args: any[]) => unknown;

function flatNumbers(operands: unknown[]): number[] {
  const out: number[] = [];
  for (const op of operands) {
    if (Array.isArray(op)) out.push(...flatNumbers(op));
    else out.push(op as number);
  }
  return out;
}

function atLeastOne(name: string, nums: number[]): void {
  if (nums.length === 0) throw new Error(`${name} needs at least one operand`);
}

// Arithmetic shared by `math` and `number` (HotMesh has both; arrays are flattened into operands).
const arithmetic: Record<string, Fn> = {
  add: (...ops: unknown[]) => flatNumbers(ops).reduce((a, b) => a + b, 0),
  subtract: (...ops: unknown[]) => {
    const n = flatNumbers(ops);
    atLeastOne('subtract', n);
    return n.slice(1).reduce((a, b) => a - b, n[0]!);
  },
  multiply: (...ops: unknown[]) => {
    const n = flatNumbers(ops);
    atLeastOne('multiply', n);
    return n.reduce((a, b) => a * b, 1);
  },
  divide: (...ops: unknown[]) => {
    const n = flatNumbers(ops);
    atLeastOne('divide', n);
    // HotMesh: division by zero anywhere in the chain gives NaN rather than Infinity.
    return n.slice(1).reduce((a, b) => (b === 0 ? NaN : a / b), n[0]!);
  },
  max: (...v: number[]) => Math.max(...v),
  min: (...v: number[]) => Math.min(...v),
  pow: (x: number, y: number) => Math.pow(x, y),
  round: (x: number) => Math.round(x),
};

const unaryMath = [
  'abs',
  'acos',
  'acosh',
  'asin',
  'asinh',
  'atan',
  'atanh',
  'cbrt',
  'ceil',
  'clz32',
  'cos',
  'cosh',
  'exp',
  'expm1',
  'floor',
  'fround',
  'log',
  'log10',
  'log1p',
  'log2',
  'sign',
  'sin',
  'sinh',
  'sqrt',
  'tan',
  'tanh',
  'trunc',
] as const;

const math: Record<string, Fn> = {
  ...arithmetic,
  ...Object.fromEntries(unaryMath.map((name) => [name, (x: number) => (Math[name] as (x: number) => number)(x)])),
  atan2: (y: number, x: number) => Math.atan2(y, x),
  hypot: (...v: number[]) => Math.hypot(...v),
  imul: (x: number, y: number) => Math.imul(x, y),
  random: () => Math.random(),
};

const number: Record<string, Fn> = {
  ...arithmetic,
  isFinite: (x: unknown) => Number.isFinite(x),
  isInteger: (x: unknown) => Number.isInteger(x),
  isNaN: (x: unknown) => Number.isNaN(x),
  isEven: (x: number) => !Number.isNaN(x) && x % 2 === 0,
  isOdd: (x: number) => !Number.isNaN(x) && Math.abs(x % 2) === 1,
  parseFloat: (s: string) => Number.parseFloat(s),
  parseInt: (s: string, radix?: number) => Number.parseInt(s, radix),
  toFixed: (x: number, digits?: number) => x.toFixed(digits),
  toExponential: (x: number, digits?: number) => x.toExponential(digits),
  toPrecision: (x: number, precision?: number) => x.toPrecision(precision),
  gt: (a: number, b: number) => a > b,
  gte: (a: number, b: number) => a >= b,
  lt: (a: number, b: number) => a < b,
  lte: (a: number, b: number) => a <= b,
};

const string: Record<string, Fn> = {
  concat: (...parts: unknown[]) => parts.join(''),
  split: (s: string, delimiter: string) => s.split(delimiter),
  charAt: (s: string, i: number) => s.charAt(i),
  includes: (s: string, search: string, position?: number) => s.includes(search, position),
  indexOf: (s: string, search: string, from?: number) => s.indexOf(search, from),
  lastIndexOf: (s: string, search: string, from?: number) => s.lastIndexOf(search, from),
  slice: (s: string, start?: number, end?: number) => s.slice(start, end),
  substring: (s: string, start: number, end?: number) => s.substring(start, end),
  toLowerCase: (s: string) => s.toLowerCase(),
  toUpperCase: (s: string) => s.toUpperCase(),
  trim: (s: string) => s.trim(),
  trimStart: (s: string) => s.trimStart(),
  trimEnd: (s: string) => s.trimEnd(),
  padStart: (s: string, length: number, pad?: string) => s.padStart(length, pad),
  padEnd: (s: string, length: number, pad?: string) => s.padEnd(length, pad),
  // A string search value replaces the first occurrence, as String.prototype.replace does.
  replace: (s: string, search: string, replacement: string) => s.replace(search, () => replacement),
  startsWith: (s: string, search: string, position?: number) => s.startsWith(search, position),
  endsWith: (s: string, search: string, length?: number) => s.endsWith(search, length),
  repeat: (s: string, count: number) => {
    if (!(count >= 0) || count === Infinity) throw new RangeError('repeat count must be a finite number ≥ 0');
    return s.repeat(count);
  },
};

/** HotMesh accepts a Date, epoch milliseconds, an ISO date(-time) or a numeric string. */
function toDate(input: unknown): Date {
  if (input instanceof Date) return input;
  if (typeof input === 'number') return new Date(input);
  if (typeof input === 'string') {
    if (/^\d{4}-\d{2}-\d{2}(?:T\d{2}:\d{2}:\d{2}(?:\.\d{3})?Z)?$/.test(input)) return new Date(input);
    const ms = Number.parseInt(input, 10);
    if (!Number.isNaN(ms)) return new Date(ms);
  }
  throw new Error(`not a date: ${JSON.stringify(input)} (pass epoch milliseconds or an ISO date such as 2026-12-06T00:00:00Z)`);
}

const dateGetters = [
  'getDate',
  'getDay',
  'getFullYear',
  'getHours',
  'getMilliseconds',
  'getMinutes',
  'getMonth',
  'getSeconds',
  'getTime',
  'getTimezoneOffset',
  'getUTCDate',
  'getUTCDay',
  'getUTCFullYear',
  'getUTCHours',
  'getUTCMilliseconds',
  'getUTCMinutes',
  'getUTCMonth',
  'getUTCSeconds',
  'valueOf',
  'toISOString',
  'toJSON',
  'toDateString',
  'toString',
] as const;
// Setters return the new epoch milliseconds, as Date's do; the input is copied first.
const dateSetters = [
  'setDate',
  'setFullYear',
  'setHours',
  'setMilliseconds',
  'setMinutes',
  'setMonth',
  'setSeconds',
  'setTime',
  'setUTCDate',
  'setUTCFullYear',
  'setUTCHours',
  'setUTCMilliseconds',
  'setUTCMinutes',
  'setUTCMonth',
  'setUTCSeconds',
] as const;

const date: Record<string, Fn> = {
  now: () => Date.now(),
  parse: (s: string) => Date.parse(s),
  fromISOString: (s: string) => new Date(s),
  UTC: (...parts: number[]) => Date.UTC(...(parts as [number, number])),
  ...Object.fromEntries(dateGetters.map((name) => [name, (d: unknown) => (toDate(d)[name] as () => unknown).call(toDate(d))])),
  ...Object.fromEntries(
    dateSetters.map((name) => [
      name,
      (d: unknown, ...args: number[]) => {
        const copy = new Date(toDate(d).getTime());
        return (copy[name] as (...a: number[]) => number).apply(copy, args);
      },
    ]),
  ),
  toLocaleDateString: (d: unknown, locales?: string | string[], options?: Intl.DateTimeFormatOptions) =>
    toDate(d).toLocaleDateString(locales, options),
  toLocaleString: (d: unknown, locales?: string | string[], options?: Intl.DateTimeFormatOptions) =>
    toDate(d).toLocaleString(locales, options),
  toLocaleTimeString: (d: unknown, locales?: string | string[], options?: Intl.DateTimeFormatOptions) =>
    toDate(d).toLocaleTimeString(locales, options),
};

function arr(a: unknown): unknown[] {
  if (!Array.isArray(a)) throw new Error(`expected an array, got ${a === null ? 'null' : typeof a}`);
  return a;
}

const array: Record<string, Fn> = {
  get: (a: unknown[] | undefined, index?: number) => a?.[index || 0],
  length: (a: unknown[] | undefined) => a?.length,
  concat: (a: unknown, b: unknown) => arr(a).concat(b),
  indexOf: (a: unknown, item: unknown, from?: number) => arr(a).indexOf(item, from),
  lastIndexOf: (a: unknown, item: unknown, from?: number) =>
    from === undefined ? arr(a).lastIndexOf(item) : arr(a).lastIndexOf(item, from),
  join: (a: unknown, separator?: string) => arr(a).join(separator),
  // HotMesh returns what the Array method returns (the removed item, the new length): kept, without the mutation.
  pop: (a: unknown) => arr(a)[arr(a).length - 1],
  shift: (a: unknown) => arr(a)[0],
  push: (a: unknown, ...items: unknown[]) => [...arr(a), ...items],
  unshift: (a: unknown, ...items: unknown[]) => arr(a).length + items.length,
  reverse: (a: unknown) => [...arr(a)].reverse(),
  slice: (a: unknown, start?: number, end?: number) => arr(a).slice(start, end),
  splice: (a: unknown, start: number, deleteCount?: number, ...items: unknown[]) => {
    const copy = [...arr(a)];
    return deleteCount === undefined ? copy.splice(start) : copy.splice(start, deleteCount, ...items);
  },
  sort: (a: unknown, order: 'ASCENDING' | 'DESCENDING' = 'ASCENDING') => {
    const dir = order === 'DESCENDING' ? -1 : 1;
    return [...arr(a)].sort((x: any, y: any) => {
      if (x === y) return 0;
      // Missing values first in ascending order, last in descending (HotMesh's order).
      if (x === null || x === undefined) return -dir;
      if (y === null || y === undefined) return dir;
      if (typeof x === 'string' && typeof y === 'string') return dir * x.localeCompare(y);
      return x < y ? -dir : dir;
    });
  },
};

function obj(o: unknown): Record<string, unknown> {
  return o !== null && typeof o === 'object' ? (o as Record<string, unknown>) : {};
}

const object: Record<string, Fn> = {
  get: (o: unknown, key: string) => (o === null || o === undefined ? undefined : (o as Record<string, unknown>)[key]),
  set: (o: unknown, key: string, value: unknown) => ({ ...obj(o), [key]: value }),
  create: (...pairs: unknown[]) => {
    const out: Record<string, unknown> = {};
    for (let i = 0; i < pairs.length; i += 2) out[String(pairs[i])] = pairs[i + 1];
    return out;
  },
  keys: (o: unknown) => Object.keys(obj(o)),
  values: (o: unknown) => Object.values(obj(o)),
  entries: (o: unknown) => Object.entries(obj(o)),
  fromEntries: (entries: unknown) => Object.fromEntries(arr(entries) as [string, unknown][]),
  assign: (target: unknown, ...sources: unknown[]) => Object.assign({}, obj(target), ...sources.map(obj)),
  hasOwnProperty: (o: unknown, key: string) => o !== null && typeof o === 'object' && Object.prototype.hasOwnProperty.call(o, key),
};

const conditional: Record<string, Fn> = {
  ternary: (condition: unknown, ifTrue: unknown, ifFalse: unknown) => (condition ? ifTrue : ifFalse),
  // HotMesh's `equality` and `inequality` are JavaScript's loose == and !=.
  equality: (a: unknown, b: unknown) => a == b,
  strict_equality: (a: unknown, b: unknown) => a === b,
  inequality: (a: unknown, b: unknown) => a != b,
  strict_inequality: (a: unknown, b: unknown) => a !== b,
  greater_than: (a: any, b: any) => a > b,
  greater_than_or_equal: (a: any, b: any) => a >= b,
  less_than: (a: any, b: any) => a < b,
  less_than_or_equal: (a: any, b: any) => a <= b,
  nullish: (a: unknown, b: unknown) => a ?? b,
};

const logical: Record<string, Fn> = {
  and: (a: unknown, b: unknown) => a && b,
  or: (a: unknown, b: unknown) => a || b,
};

const json: Record<string, Fn> = {
  // A replacer cannot come from YAML; HotMesh's second argument is skipped, its third (indent) kept.
  stringify: (value: unknown, _replacer?: unknown, space?: string | number) => JSON.stringify(value, null, space),
  parse: (text: string) => JSON.parse(text),
};

export const PIPE_FUNCTIONS: Readonly<Record<string, Readonly<Record<string, Fn>>>> = {
  string,
  number,
  math,
  date,
  array,
  object,
  conditional,
  logical,
  json,
};

/** `family.name` of every function, for "did you mean" hints. */
export const PIPE_FUNCTION_NAMES: readonly string[] = Object.entries(PIPE_FUNCTIONS).flatMap(([family, fns]) =>
  Object.keys(fns).map((n) => `${family}.${n}`),
);

export function lookupFunction(name: string): Fn | undefined {
  const dot = name.indexOf('.');
  if (dot < 0) return undefined;
  const family = PIPE_FUNCTIONS[name.slice(0, dot)];
  const fn = family && Object.prototype.hasOwnProperty.call(family, name.slice(dot + 1)) ? family[name.slice(dot + 1)] : undefined;
  return fn;
}
