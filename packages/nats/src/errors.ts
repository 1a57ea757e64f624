import * as core from '@partita/core';
import { PartitaError } from '@partita/core';

/** A request found nobody subscribed to its subject (NATS "no responders"). */
export class NoRespondersError extends PartitaError {
  readonly subject: string;
  constructor(subject: string) {
    super(
      'NO_RESPONDERS',
      `nobody answers on "${subject}": no node is subscribed to it right now; ` +
        'check that a node serving it is running (it may be starting or failing over), then retry',
    );
    this.subject = subject;
  }
}

/** A responder threw something that is not a known Partita error; name and message are the remote ones. */
export class RemoteError extends PartitaError {
  /** The error's name on the responder side (e.g. `TypeError`). */
  readonly remoteName: string;
  constructor(remoteName: string, message: string, code = 'REMOTE') {
    super(code, message);
    this.remoteName = remoteName;
    this.name = remoteName;
  }
}

/** Wire form of an error sent back to a requester. */
export interface WireError {
  name: string;
  message: string;
  code?: string;
  /** Own data fields of the error (e.g. `jobId`, `queueKey`), when they encode. */
  props?: Record<string, unknown>;
}

type ErrorClass = abstract new (...args: never[]) => Error;

const registry = new Map<string, ErrorClass>();

function registerBuiltins(): void {
  for (const value of Object.values(core)) {
    if (typeof value === 'function' && (value === PartitaError || value.prototype instanceof PartitaError)) {
      registry.set(value.name, value as unknown as ErrorClass);
    }
  }
  // Re-exported by core from @partita/actors, so its prototype chain does not pass through PartitaError.
  registry.set(core.TimeoutError.name, core.TimeoutError);
  registry.set(NoRespondersError.name, NoRespondersError);
}
registerBuiltins();

/**
 * Makes an error class travel across request/reply with its identity: a responder throwing it
 * makes the requester reject with an instance of the same class (same name, message, code and
 * own data fields). Every PartitaError subclass exported by @partita/core is registered already.
 */
export function registerErrorClass(cls: ErrorClass, name = cls.name): void {
  registry.set(name, cls);
}

const SKIP_PROPS = new Set(['name', 'message', 'stack', 'code', 'cause']);
const RESERVED = new Set(['__proto__', 'constructor', 'prototype']);

function isPlainData(value: unknown, depth = 0): boolean {
  if (value === null || value === undefined) return true;
  const t = typeof value;
  if (t === 'string' || t === 'number' || t === 'boolean') return true;
  if (t === 'bigint' || t === 'function' || t === 'symbol' || depth > 8) return false;
  if (value instanceof Date || value instanceof Uint8Array) return true;
  if (Array.isArray(value)) return value.every((v) => isPlainData(v, depth + 1));
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  return Object.values(value as object).every((v) => isPlainData(v, depth + 1));
}

/** Turns anything a handler threw into its wire form. */
export function serializeError(err: unknown): WireError {
  if (err instanceof Error) {
    const out: WireError = { name: err.name || 'Error', message: err.message };
    const code = (err as { code?: unknown }).code;
    if (typeof code === 'string') out.code = code;
    const props: Record<string, unknown> = {};
    let any = false;
    for (const [k, v] of Object.entries(err)) {
      if (SKIP_PROPS.has(k) || !isPlainData(v)) continue;
      props[k] = v;
      any = true;
    }
    if (any) out.props = props;
    return out;
  }
  const d = core.describeError(err);
  return { name: d.name, message: d.message };
}

function isWireError(value: unknown): value is WireError {
  return (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as WireError).name === 'string' &&
    typeof (value as WireError).message === 'string'
  );
}

/**
 * Rebuilds a thrown error on the requester side. Known classes come back as instances of that
 * class (constructed without running the constructor, so any constructor signature works).
 */
export function deserializeError(value: unknown, subject: string): Error {
  if (!isWireError(value)) {
    return new RemoteError('Error', `responder on "${subject}" failed with an unreadable error`);
  }
  const cls = registry.get(value.name);
  let err: Error;
  if (cls) {
    // A real Error (so util.types.isNativeError and friends accept it) re-parented to the class,
    // which skips the constructor: any constructor signature works.
    err = new Error(value.message);
    Object.setPrototypeOf(err, cls.prototype);
    err.name = value.name;
    if (typeof value.code === 'string') (err as { code?: string }).code = value.code;
  } else {
    err = new RemoteError(value.name, value.message, typeof value.code === 'string' ? value.code : 'REMOTE');
  }
  if (value.props && typeof value.props === 'object') {
    for (const [k, v] of Object.entries(value.props)) {
      if (!SKIP_PROPS.has(k) && !RESERVED.has(k)) (err as unknown as Record<string, unknown>)[k] = v;
    }
  }
  Object.defineProperty(err, 'stack', {
    value: `${value.name}: ${value.message}\n    at <responder on ${subject}>`,
    writable: true,
    configurable: true,
    enumerable: false,
  });
  return err;
}
