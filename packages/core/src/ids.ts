import { randomFillSync } from 'node:crypto';

const pool = new Uint8Array(16 * 1024);
let poolOffset = pool.length;
let lastMs = 0;
let counter = 0;
// An id's 36 characters are written into one buffer as ASCII and read out as one latin1 string: the
// string concatenation this replaced made a rope of a dozen pieces per id (~400 bytes) for V8 to
// flatten when the id was first hashed or sent; a Buffer and toString('hex') per id cost more still.
const HEX_CHARS = new Uint8Array(512);
for (let i = 0; i < 256; i++) {
  const h = i.toString(16).padStart(2, '0');
  HEX_CHARS[2 * i] = h.charCodeAt(0);
  HEX_CHARS[2 * i + 1] = h.charCodeAt(1);
}
/** The id being made; the dashes stay where they are. */
const text = Buffer.alloc(36, '-'.charCodeAt(0));
// The timestamp part (text[0..13]) changes once a millisecond while thousands of ids may share it.
let prefixMs = -1;

function hexAt(at: number, byte: number, into: Buffer = text): void {
  into[at] = HEX_CHARS[2 * byte]!;
  into[at + 1] = HEX_CHARS[2 * byte + 1]!;
}

/** Where the next 16 random bytes start in the pool (refilled when used up). */
function randomBytes16(): number {
  if (poolOffset + 16 > pool.length) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  poolOffset += 16;
  return poolOffset - 16;
}

/**
 * RFC 9562 UUIDv7: 48-bit unix-ms timestamp, then a 12-bit counter seeded randomly each
 * millisecond, so ids made by one process sort in creation order even within one millisecond.
 * Time-ordered ids keep the primary-key index append-mostly, which matters at 40k inserts/s.
 */
export function uuidv7(now = Date.now()): string {
  const o = randomBytes16();
  if (now > lastMs) {
    lastMs = now;
    counter = pool[o + 6]! & 0x07ff; // leave headroom so a busy millisecond rarely overflows
  } else {
    counter++;
    if (counter > 0x0fff) {
      lastMs++; // borrow the next millisecond rather than break ordering
      counter = 0;
    }
  }
  if (lastMs !== prefixMs) {
    prefixMs = lastMs;
    const high = Math.floor(lastMs / 0x1_0000_0000); // top 16 of the 48 bits
    const low = lastMs >>> 0;
    hexAt(0, (high >>> 8) & 0xff);
    hexAt(2, high & 0xff);
    hexAt(4, low >>> 24);
    hexAt(6, (low >>> 16) & 0xff);
    hexAt(9, (low >>> 8) & 0xff);
    hexAt(11, low & 0xff);
  }
  hexAt(14, 0x70 | ((counter >> 8) & 0x0f));
  hexAt(16, counter & 0xff);
  hexAt(19, 0x80 | (pool[o + 8]! & 0x3f));
  hexAt(21, pool[o + 9]!);
  for (let i = 0; i < 6; i++) hexAt(24 + 2 * i, pool[o + 10 + i]!);
  return text.toString('latin1', 0, 36);
}

/** uuidv4's id being made (not uuidv7's buffer, whose first characters keep the current millisecond). */
const textV4 = Buffer.alloc(36, '-'.charCodeAt(0));
/** Where each of the 16 bytes' two hex digits go in the 36 characters. */
const V4_AT = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34];

/**
 * RFC 9562 UUIDv4 (122 random bits), as crypto.randomUUID makes it, but one flat string: randomUUID's
 * is a concatenation of pieces (a rope) that V8 flattens when the id is first hashed or sent, ~0.5 KB
 * and a copy per id (a workflow's id, hashed as a map key as soon as its pub stages it).
 */
export function uuidv4(): string {
  const o = randomBytes16();
  for (let i = 0; i < 16; i++) {
    let byte = pool[o + i]!;
    if (i === 6) byte = 0x40 | (byte & 0x0f);
    else if (i === 8) byte = 0x80 | (byte & 0x3f);
    hexAt(V4_AT[i]!, byte, textV4);
  }
  return textV4.toString('latin1', 0, 36);
}

const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
export function isUuid(value: unknown): value is string {
  return typeof value === 'string' && UUID_RE.test(value);
}
