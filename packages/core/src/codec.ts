import { Packr } from 'msgpackr';
import { ValidationError } from './errors.js';

/** Wire format version carried in every bus message as `v`. Bump on incompatible changes. */
export const WIRE_VERSION = 1;

const packr = new Packr({ useRecords: false, moreTypes: false, int64AsType: 'number' });

export interface Envelope<T = unknown> {
  v: number;
  /** Message kind, e.g. `wake`, `throttle`, `job.completed`. */
  k: string;
  d: T;
}

export function encode<T>(kind: string, data: T): Uint8Array {
  return packr.pack({ v: WIRE_VERSION, k: kind, d: data } satisfies Envelope<T>);
}

/**
 * Decodes a bus message. Anything that is not a well-formed envelope of a version we speak
 * throws ValidationError; callers log and drop it, never crash.
 */
export function decode<T = unknown>(bytes: Uint8Array): Envelope<T> {
  let value: unknown;
  try {
    value = packr.unpack(bytes);
  } catch (err) {
    throw new ValidationError(`undecodable message (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new ValidationError('message is not an envelope object');
  }
  const env = value as Partial<Envelope<T>>;
  if (typeof env.v !== 'number' || !Number.isInteger(env.v)) throw new ValidationError('message has no integer version field `v`');
  if (env.v > WIRE_VERSION)
    throw new ValidationError(`message version ${env.v} is newer than this node speaks (${WIRE_VERSION}); upgrade the node`);
  if (typeof env.k !== 'string' || env.k.length === 0) throw new ValidationError('message has no kind field `k`');
  return { v: env.v, k: env.k, d: env.d as T };
}

/** Raw msgpack without the envelope, for payloads nested inside one. */
export function pack(value: unknown): Uint8Array {
  return packr.pack(value);
}
export function unpack<T = unknown>(bytes: Uint8Array): T {
  return packr.unpack(bytes) as T;
}
