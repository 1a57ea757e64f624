import type { Actor } from './actor.js';
import type { Logger } from './logger.js';
import type { Supervisor } from './supervisor.js';
import type { ActorExit, ActorSystem, Behavior, ExitListener, SupervisorSpec } from './types.js';

/** What actors and supervisors need from their system, beyond the public API. */
export interface SystemInternals {
  readonly api: ActorSystem;
  readonly logger: Logger;
  readonly slice: Slice;
  readonly callTimeoutMs: number;
  nextId(): number;
  /** Throws NameTakenError. */
  register(name: string, entity: Registered): void;
  /** Called once when an actor or supervisor has fully stopped. */
  exited(entity: Registered): void;
  /** A root supervisor gave up. */
  fatal(err: Error, supervisor: Supervisor): void;
  /** Creates, registers (when `register`) and starts an actor, named `name/suffix` when given a suffix. Throws NameTakenError. */
  spawnActor<M, R>(
    behavior: Behavior<M, R>,
    name: string | undefined,
    register: boolean,
    shutdownMs: number,
    root: boolean,
    suffix?: string,
  ): Actor<M, R>;
  /** Runs `actor.finishStop()` on a microtask: one queue for the system instead of a promise per stopping actor. */
  finishLater(actor: Actor): void;
  /** Creates and registers (when `register`) a supervisor; the caller starts it. Throws NameTakenError. */
  newSupervisor(spec: SupervisorSpec, opts: { name: string | undefined; register: boolean; root: boolean }): Supervisor;
}

/** Who an actor tells of its exit without a monitor: its supervisor (see Actor.link). */
export interface ExitParent {
  childExited(entry: any, inc: Actor, exit: ActorExit): void;
}

export interface Registered {
  readonly kind: 'actor' | 'supervisor';
  readonly name: string;
  readonly alive: boolean;
}

/** Messages handled back to back before yielding to the event loop. */
const BATCH = 1000;
/** ...or this long, whichever comes first, so timers and I/O keep their turn. */
const SLICE_MS = 5;

/**
 * A budget shared by every actor of a system for one event-loop turn. Actors that cast to each other
 * run in microtasks, which never yield by themselves; a per-actor counter would reset every time a
 * ping-ponging actor goes idle, so the budget is system-wide and refilled by a setImmediate.
 */
export class Slice {
  private count = 0;
  private started = 0;
  private armed = false;
  private readonly refill = (): void => {
    this.armed = false;
  };

  /** True if one more message may run now; false means: continue in a setImmediate. */
  take(): boolean {
    if (!this.armed) {
      this.armed = true;
      this.count = 0;
      this.started = performance.now();
      setImmediate(this.refill);
    }
    const n = ++this.count;
    if (n > BATCH) return false;
    if ((n & 63) === 0 && performance.now() - this.started > SLICE_MS) {
      this.count = BATCH;
      return false;
    }
    return true;
  }
}

const settled = Promise.resolve();

/**
 * Runs `fn` on a microtask, as queueMicrotask does, in the same queue and order. Node's
 * queueMicrotask makes an AsyncResource and a bound function per call, several times one job's
 * worth of allocation on the per-job paths here (a mailbox's drain, the stop queue); a reaction
 * on a settled promise is one small job. `fn` must not throw: a throw would surface as an
 * unhandled rejection rather than an uncaught exception.
 */
export function microtask(fn: () => void): void {
  void settled.then(fn);
}

export function isThenable(value: unknown): value is PromiseLike<unknown> {
  return value !== null && typeof value === 'object' && typeof (value as { then?: unknown }).then === 'function';
}

/**
 * Resolves true if `work` settles within `ms`, false otherwise. Never rejects: a rejection of `work`
 * is passed to `onError` so it is never left unhandled.
 */
export function settleWithin(work: PromiseLike<unknown>, ms: number, onError: (err: unknown) => void): Promise<boolean> {
  return new Promise<boolean>((resolve) => {
    let timer: ReturnType<typeof setTimeout> | undefined;
    if (ms !== Infinity) timer = setTimeout(() => resolve(false), Math.max(0, ms));
    const done = (): void => {
      if (timer !== undefined) clearTimeout(timer);
      resolve(true);
    };
    Promise.resolve(work).then(done, (err: unknown) => {
      onError(err);
      done();
    });
  });
}

export function validShutdownMs(value: unknown): value is number {
  return typeof value === 'number' && (value === Infinity || (Number.isFinite(value) && value >= 0));
}

/**
 * The exit listeners of an actor or supervisor: called once when it has fully stopped, at once
 * (on a microtask) for a listener added after that. A throwing listener is logged, not propagated.
 */
export class ExitListeners {
  private list: ExitListener[] | undefined = undefined;

  /** `exit`: the owner has already exited (listeners added now are called on a microtask). */
  constructor(
    private readonly owner: { exitListenerThrew(err: unknown): void },
    private exit: ActorExit | undefined = undefined,
  ) {}

  add(listener: ExitListener): () => void {
    const exit = this.exit;
    if (exit !== undefined) {
      queueMicrotask(() => this.call(listener, exit));
      return () => undefined;
    }
    (this.list ??= []).push(listener);
    return () => {
      const ls = this.list;
      if (ls === undefined) return;
      const i = ls.indexOf(listener);
      if (i >= 0) ls.splice(i, 1);
    };
  }

  fire(exit: ActorExit): void {
    this.exit = exit;
    const ls = this.list;
    this.list = undefined;
    if (ls !== undefined) for (const l of ls) this.call(l, exit);
  }

  private call(listener: ExitListener, exit: ActorExit): void {
    try {
      listener(exit);
    } catch (err) {
      this.owner.exitListenerThrew(err);
    }
  }
}
