/**
 * Parameters sent in Postgres's binary format (pg sends a Buffer parameter as binary). Only where
 * the text form costs the server measurably: a uuid[] of a completion's ids parsed as text took
 * its backend ~0.44 us per id (350 us for 800, a tenth of the statement's CPU), the binary form
 * ~0.02 us, and encoding it here ~0.12 us; a workflow transition's records as one JSON array of
 * objects cost its backend a text → jsonb parse of every key and value, then jsonb_to_recordset's
 * extraction of every field (a third of the Postgres time of a workflow step), where a binary array
 * per column costs a length per element, and only the JSON values are parsed, each on its own.
 */

/** Hex digit values by character code; -1 where not a hex digit. */
const HEX = new Int8Array(128).fill(-1);
for (let i = 0; i < 10; i++) HEX[48 + i] = i;
for (let i = 0; i < 6; i++) {
  HEX[65 + i] = 10 + i;
  HEX[97 + i] = 10 + i;
}

const OID = { text: 25, int4: 23, int8: 20, bool: 16, date: 1082, jsonb: 3802, uuid: 2950, tid: 27 } as const;
/** A one-dimensional array's header (array_recv's): dimensions, null flag, element type, length, lower bound. */
const HEADER = 20;
const UUID_ELEMENT = 20;

function arrayHeader(buf: Buffer, at: number, oid: number, length: number, hasNulls: boolean): void {
  buf.writeInt32BE(1, at); // dimensions
  buf.writeInt32BE(hasNulls ? 1 : 0, at + 4);
  buf.writeUInt32BE(oid, at + 8);
  buf.writeInt32BE(length, at + 12);
  buf.writeInt32BE(1, at + 16); // lower bound
}

/** A byte's value by its two hex digits' character codes (`hi << 7 | lo`); -1 where either is not a hex digit. */
const PAIR = new Int16Array(128 * 128).fill(-1);
for (let hi = 0; hi < 128; hi++)
  for (let lo = 0; lo < 128; lo++) if (HEX[hi]! >= 0 && HEX[lo]! >= 0) PAIR[(hi << 7) | lo] = (HEX[hi]! << 4) | HEX[lo]!;

/** The byte at hex digits `i`, `i + 1` of `s`; negative when they are not two hex digits. */
function hexByte(s: string, i: number): number {
  const hi = s.charCodeAt(i);
  const lo = s.charCodeAt(i + 1);
  return (hi | lo) < 128 ? PAIR[(hi << 7) | lo]! : -1;
}

/** Where each of a canonical uuid's 16 bytes starts in its text (8-4-4-4-12 hex digits). */
const BYTE_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * The 16 bytes of each id in the canonical form (8-4-4-4-12 hex digits, either case) as four
 * big-endian uint32 words, id `i` at `words[4i…4i+3]`; false when any id is not in that form.
 * Compared word by word, the ids compare in uuid order (Postgres's), whatever their case, as
 * numbers rather than as text: a completion sorts its ids this way (uuidOrder, in complete() of jobs/outcomes.ts).
 */
export function uuidWords(ids: readonly string[], words: Uint32Array): boolean {
  for (let i = 0, w = 0; i < ids.length; i++, w += 4) {
    const id = ids[i];
    if (typeof id !== 'string' || id.length !== 36) return false;
    if (id.charCodeAt(8) !== 45 || id.charCodeAt(13) !== 45 || id.charCodeAt(18) !== 45 || id.charCodeAt(23) !== 45) return false; // '-'
    let bad = 0;
    for (let k = 0; k < 16; k += 4) {
      const b0 = hexByte(id, BYTE_AT[k]!);
      const b1 = hexByte(id, BYTE_AT[k + 1]!);
      const b2 = hexByte(id, BYTE_AT[k + 2]!);
      const b3 = hexByte(id, BYTE_AT[k + 3]!);
      bad |= b0 | b1 | b2 | b3;
      words[w + (k >> 2)] = ((b0 << 24) | (b1 << 16) | (b2 << 8) | b3) >>> 0;
    }
    if (bad < 0) return false;
  }
  return true;
}

/**
 * The positions of `count` ids parsed by uuidWords, in uuid order; equal ids keep their order.
 * Checked first, as they mostly come (a batch's jobs were claimed in id order and end nearly in
 * it): already in order, no sort.
 */
export function uuidOrder(words: Uint32Array, count: number): number[] {
  const order = new Array<number>(count);
  let sorted = true;
  for (let i = 0; i < count; i++) {
    order[i] = i;
    if (sorted && i > 0 && compareWords(words, i - 1, i) > 0) sorted = false;
  }
  if (!sorted) order.sort((a, b) => compareWords(words, a, b) || a - b);
  return order;
}

function compareWords(words: Uint32Array, a: number, b: number): number {
  const i = a * 4;
  const j = b * 4;
  return words[i]! - words[j]! || words[i + 1]! - words[j + 1]! || words[i + 2]! - words[j + 2]! || words[i + 3]! - words[j + 3]!;
}

/** A one-dimensional uuid[] in array_recv's format of the ids at `order[lo…hi)`, from their uuidWords. */
export function uuidArrayOf(words: Uint32Array, order: readonly number[], lo = 0, hi = order.length): Buffer {
  const out = Buffer.allocUnsafe(HEADER + (hi - lo) * UUID_ELEMENT);
  arrayHeader(out, 0, OID.uuid, hi - lo, false);
  let at = HEADER;
  for (let k = lo; k < hi; k++) {
    const w = order[k]! * 4;
    i32(out, at, 16);
    i32(out, at + 4, words[w]!);
    i32(out, at + 8, words[w + 1]!);
    i32(out, at + 12, words[w + 2]!);
    i32(out, at + 16, words[w + 3]!);
    at += UUID_ELEMENT;
  }
  return out;
}

/**
 * A one-dimensional uuid[] in array_recv's format, for ids in the canonical form
 * (8-4-4-4-12 hex digits, either case), in the order given. Undefined when any id is not: the
 * caller then sends the text form, and Postgres parses it (or refuses it) as before.
 */
export function uuidArray(ids: readonly string[]): Buffer | undefined {
  const words = new Uint32Array(ids.length * 4);
  if (!uuidWords(ids, words)) return undefined;
  const order = new Array<number>(ids.length);
  for (let i = 0; i < ids.length; i++) order[i] = i;
  return uuidArrayOf(words, order);
}

/**
 * A one-dimensional tid[] in array_recv's format, from row addresses as Postgres writes them
 * ("(block,offset)"); a null element stays NULL. The text form cost the node a quoted string per
 * element and the server a tidin each. Undefined when any address is not in that form: the caller
 * then sends the text form.
 */
export function tidArray(tids: readonly (string | null)[]): Buffer | undefined {
  let nulls = 0;
  for (const t of tids) if (t === null) nulls++;
  // An element: its length (4 bytes), then the block (int32) and the offset (int16); a NULL: length -1.
  const out = Buffer.allocUnsafe(HEADER + tids.length * 4 + (tids.length - nulls) * 6);
  arrayHeader(out, 0, OID.tid, tids.length, nulls > 0);
  let at = HEADER;
  for (const t of tids) {
    if (t === null) {
      i32(out, at, -1);
      at += 4;
      continue;
    }
    if (typeof t !== 'string' || t.charCodeAt(0) !== 40 || t.charCodeAt(t.length - 1) !== 41) return undefined; // ( )
    let block = 0;
    let i = 1;
    for (; i < t.length && t.charCodeAt(i) !== 44; i++) {
      const d = t.charCodeAt(i) - 48;
      if (d < 0 || d > 9 || i > 10) return undefined;
      block = block * 10 + d;
    }
    if (i === 1 || i === t.length) return undefined; // no block digits, or no comma
    let offset = 0;
    const digitsFrom = ++i;
    for (; i < t.length - 1; i++) {
      const d = t.charCodeAt(i) - 48;
      if (d < 0 || d > 9 || i - digitsFrom > 4) return undefined;
      offset = offset * 10 + d;
    }
    if (i === digitsFrom || block > 0xffffffff || offset > 0xffff) return undefined;
    i32(out, at, 6);
    i32(out, at + 4, block);
    out[at + 8] = offset >>> 8;
    out[at + 9] = offset & 0xff;
    at += 10;
  }
  return out;
}

/** Bytes an element of each type takes, its length included (text and jsonb: a guess, an id's length). */
const SIZE = { text: 44, int4: 8, int8: 12, bool: 5, date: 8, jsonb: 32 } as const;
/** The element types encodeColumns writes. */
export type ColumnType = keyof typeof SIZE;

/** Days from 1970-01-01 to 2000-01-01 (Postgres's date epoch). */
const PG_EPOCH_DAYS = 10957;
const DAY_MS = 86_400_000;

/** A big-endian int32 written without Buffer's argument checks (the hot path writes two per element). */
function i32(buf: Buffer, at: number, v: number): void {
  buf[at] = v >>> 24;
  buf[at + 1] = (v >>> 16) & 0xff;
  buf[at + 2] = (v >>> 8) & 0xff;
  buf[at + 3] = v & 0xff;
}

/** A growing buffer: every column of a statement is written into one, then sliced. */
class Writer {
  buf: Buffer;
  at = 0;

  constructor(size: number) {
    this.buf = Buffer.allocUnsafe(size);
  }

  ensure(n: number): void {
    if (this.at + n <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < this.at + n) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.at);
    this.buf = next;
  }

  int32(v: number): void {
    this.ensure(4);
    i32(this.buf, this.at, v);
    this.at += 4;
  }

  /** A length-prefixed UTF-8 string, `prefix` (jsonb's version byte) before it. */
  string(s: string, prefix?: number): void {
    const max = s.length * 3 + 5;
    this.ensure(max);
    const buf = this.buf;
    const lengthAt = this.at;
    let at = lengthAt + 4;
    if (prefix !== undefined) buf[at++] = prefix;
    // Short ASCII strings (ids, names, small JSON) copied here: Buffer.write's call costs more than they do.
    let ascii = s.length <= 64;
    if (ascii) {
      for (let i = 0; i < s.length; i++) {
        const c = s.charCodeAt(i);
        if (c >= 0x80) {
          ascii = false;
          break;
        }
        buf[at + i] = c;
      }
    }
    at += ascii ? s.length : buf.write(s, at, 'utf8');
    i32(buf, lengthAt, at - lengthAt - 4);
    this.at = at;
  }
}

/** The last date string converted, and its days: a batch's rows are mostly of one day. */
let lastDate: unknown;
let lastDays = 0;

/** A date ('YYYY-MM-DD', 'infinity', '-infinity', or a Date) as days since 2000-01-01. */
function dateDays(v: unknown): number {
  if (v === lastDate) return lastDays;
  const days = toDays(v);
  if (typeof v === 'string') {
    lastDate = v;
    lastDays = days;
  }
  return days;
}

function toDays(v: unknown): number {
  if (v === 'infinity') return 0x7fffffff;
  if (v === '-infinity') return -0x80000000;
  const ms = v instanceof Date ? Date.UTC(v.getFullYear(), v.getMonth(), v.getDate()) : Date.parse(`${String(v).slice(0, 10)}T00:00:00Z`);
  if (!Number.isFinite(ms)) throw new TypeError(`not a date: ${String(v)}`);
  return Math.round(ms / DAY_MS) - PG_EPOCH_DAYS;
}

/**
 * One array per column, `rows.length` elements each, null/undefined elements NULL. jsonb values are
 * given as JS values (JSON-encoded here, each on its own); undefined when there are no rows.
 */
export function encodeColumns<R>(rows: readonly R[], columns: readonly [ColumnType, (row: R) => unknown][]): (Buffer | null)[] {
  if (rows.length === 0) return columns.map(() => null);
  // Room for every element as long as an id: most batches need no second buffer.
  let size = 0;
  for (const [type] of columns) size += HEADER + rows.length * SIZE[type];
  const w = new Writer(size);
  const bounds: [number, number][] = [];
  for (const [type, get] of columns) {
    const start = w.at;
    w.ensure(HEADER);
    w.at += HEADER;
    let hasNulls = false;
    for (const row of rows) {
      const v = get(row);
      if (v === null || v === undefined) {
        hasNulls = true;
        w.int32(-1);
        continue;
      }
      switch (type) {
        case 'text':
          w.string(v as string);
          break;
        case 'jsonb':
          w.string(JSON.stringify(v), 1);
          break;
        case 'int4':
          w.int32(4);
          w.int32(v as number);
          break;
        case 'int8': {
          w.ensure(12);
          w.buf.writeInt32BE(8, w.at);
          w.buf.writeBigInt64BE(BigInt(v as number), w.at + 4);
          w.at += 12;
          break;
        }
        case 'bool':
          w.ensure(5);
          w.buf.writeInt32BE(1, w.at);
          w.buf[w.at + 4] = v ? 1 : 0;
          w.at += 5;
          break;
        case 'date':
          w.int32(4);
          w.int32(dateDays(v));
          break;
      }
    }
    arrayHeader(w.buf, start, OID[type], rows.length, hasNulls);
    bounds.push([start, w.at]);
  }
  // One allocation for all; each column a view of it.
  const all = w.buf;
  return bounds.map(([a, b]) => all.subarray(a, b));
}

/**
 * A column of JSON values as one JSON array (an absent value is JSON null), or null when every value
 * is absent. SQL reads it with `jsonb_array_elements($n::jsonb)` (`nullif(…, 'null')` for NULLs) in a
 * `ROWS FROM` beside the other columns' unnest. A jsonb[] parameter is parsed element by element in
 * the bind, each parse with its own allocations, which on a backend whose memory went back to the OS
 * cost 5-40 µs an element in page faults, against under 1 µs an element for one JSON document
 * (bench/README.md, "where a workflow's Postgres CPU goes").
 */
export function jsonArrayColumn<R>(rows: readonly R[], get: (row: R) => unknown): string | null {
  // The values in an array stringified at once: a string per value and a concatenation of each
  // (most of a transition's allocations here) were the cost of building the text piece by piece.
  // An array element JSON leaves out (undefined, a function) comes out as null.
  const values = new Array<unknown>(rows.length);
  let any = false;
  for (let i = 0; i < rows.length; i++) {
    const v = get(rows[i]!);
    if (v !== null && v !== undefined) any = true;
    values[i] = v;
  }
  return any ? JSON.stringify(values) : null;
}

/** The non-jsonb columns of a column list (the lists are module constants): filtered once each. */
const binaryColumns = new WeakMap<object, readonly [ColumnType, (row: never) => unknown][]>();
function binaryColumnsOf<R>(columns: readonly [ColumnType, (row: R) => unknown][]): readonly [ColumnType, (row: R) => unknown][] {
  let binary = binaryColumns.get(columns) as readonly [ColumnType, (row: R) => unknown][] | undefined;
  if (!binary) {
    binary = columns.filter(([type]) => type !== 'jsonb');
    binaryColumns.set(columns, binary);
  }
  return binary;
}

/** encodeColumns, but each jsonb column goes as one JSON array (jsonArrayColumn), the others in binary. */
export function encodeColumnsJsonArrays<R>(
  rows: readonly R[],
  columns: readonly [ColumnType, (row: R) => unknown][],
): (Buffer | string | null)[] {
  const binary = encodeColumns(rows, binaryColumnsOf(columns));
  let b = 0;
  return columns.map(([type, get]) => (type === 'jsonb' ? jsonArrayColumn(rows, get) : binary[b++]!));
}

/**
 * A text[] in binary: a batch's job ids, sent to two statements (the steps' lock and take), went as
 * JS arrays that node-postgres turned into array literals (a quoted, escaped string per id, for
 * each statement) and Postgres parsed back; this is one buffer, a length and the bytes per id.
 */
export function textArray(values: readonly string[]): Buffer {
  const w = new Writer(HEADER + values.length * SIZE.text);
  w.at = HEADER;
  for (const v of values) w.string(v);
  arrayHeader(w.buf, 0, OID.text, values.length, false);
  return w.buf.subarray(0, w.at);
}

/** The elements of a one-dimensional text[] in binary format (tests read sent parameters with it). */
export function decodeTextArray(buf: Buffer | null): (string | null)[] {
  if (!buf) return [];
  const n = buf.readInt32BE(0) === 0 ? 0 : buf.readInt32BE(12);
  const out: (string | null)[] = [];
  let at = HEADER;
  for (let i = 0; i < n; i++) {
    const len = buf.readInt32BE(at);
    at += 4;
    if (len < 0) out.push(null);
    else {
      out.push(buf.toString('utf8', at, at + len));
      at += len;
    }
  }
  return out;
}
