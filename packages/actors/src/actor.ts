import { ActorCrashedError, ActorStoppedError, InvalidSpecError, TimeoutError } from './errors.js';
import { ExitListeners, isThenable, microtask, settleWithin, type ExitParent, type SystemInternals } from './internals.js';
import type { Logger } from './logger.js';
import type { ActorContext, ActorExit, ActorRef, ActorSystem, Behavior, CallOptions, ExitListener } from './types.js';

const STARTING = 0;
const RUNNING = 1;
const STOPPING = 2;
const STOPPED = 3;

/** setTimeout clamps anything above this to 1 ms, which would turn a huge timeout into an instant one. */
const MAX_TIMER_MS = 2_147_483_647;

const NO_CRASH: unique symbol = Symbol('no crash');

/** The pending answer to one `call`. `done` makes every settle after the first (a late reply, a timeout) a no-op. */
class Reply {
  done = false;
  timer: ReturnType<typeof setTimeout> | undefined = undefined;
  constructor(
    private readonly resolve: (value: any) => void,
    private readonly reject: (err: unknown) => void,
  ) {}
  ok(value: unknown): boolean {
    if (this.done) return false;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.resolve(value);
    return true;
  }
  fail(err: unknown): boolean {
    if (this.done) return false;
    this.done = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.reject(err);
    return true;
  }
}

// A top-level function with arguments, so arming a call timeout allocates no closure.
function callTimedOut(reply: Reply, actor: string, timeoutMs: number): void {
  reply.timer = undefined;
  reply.fail(new TimeoutError(`call to actor "${actor}"`, timeoutMs));
}

const noop = (): void => {};

/** An actor's run loop and async-handler callbacks, bound to it. */
interface BoundCallbacks {
  drain: () => void;
  asyncDone: (value: unknown) => void;
  asyncFailed: (err: unknown) => void;
}

export type StartResult = { ok: true } | { ok: false; error: unknown };

/** Every successful start shares this result: a dynamic supervisor starts one actor per job. */
const START_OK: StartResult = Object.freeze({ ok: true as const });

/** The exit of every actor stopped with reason 'normal' (a worker ending its job): one shared, frozen object. */
const NORMAL_EXIT: ActorExit = Object.freeze({ reason: 'normal', crashed: false });

function stopExit(reason: unknown): ActorExit {
  return reason === 'normal' ? NORMAL_EXIT : { reason, crashed: false };
}

/** Slots (two per message) an emptied mailbox keeps for the next burst; beyond this it lets them go. */
const MAILBOX_KEPT = 8192;

/** Every actor's mailbox until its first message (never pushed to: call and cast replace it first). */
const NO_MAIL: unknown[] = [];

/** An actor's state that most actors never need (see Actor.more). */
class More {
  /** The reply of the call whose async handler is in flight. */
  current: Reply | undefined = undefined;
  /** Set when stopping and the in-flight work settles. */
  onIdle: (() => void) | undefined = undefined;
  /** What an in-flight handler threw after a stop had begun; it turns the exit into a crash. */
  lateCrash: unknown = NO_CRASH;
  /** What stop() hands out, made only when someone asks: most stops (ctx.stop, a crash) have no one waiting. */
  stopped: Promise<void> | undefined = undefined;
  resolveStopped: (() => void) | undefined = undefined;
  /** Made by the first monitor(): a worker actor per job usually has none but its supervisor's link. */
  exitListeners: ExitListeners | undefined = undefined;
  startWaiters: ((r: StartResult) => void)[] | undefined = undefined;
  timers: Set<ReturnType<typeof setTimeout>> | undefined = undefined;
  controller: AbortController | undefined = undefined;
  childLogger: Logger | undefined = undefined;
  /** The run loop and async-handler callbacks, bound to the actor on first use. */
  bound: BoundCallbacks | undefined = undefined;
}

/**
 * One actor incarnation: its mailbox, its run loop, its lifecycle. The mailbox is a single array of
 * (message, reply-or-undefined) pairs read through a head index, so a cast allocates nothing but
 * array slots and dequeuing never shifts the array.
 */
export class Actor<M = any, R = any> implements ActorRef<M, R> {
  // On the prototype (below), not a field of every instance.
  declare readonly kind: 'actor';
  readonly id: number;
  readonly registered: boolean;
  readonly shutdownMs: number;
  readonly ctx: ActorContext<M, R>;

  private readonly sys: SystemInternals;
  private readonly behavior: Behavior<M, R>;
  /**
   * The name, or with `suffix` its first part: a supervisor's child is named `<supervisor>/<child id>`,
   * and that string is made only when read (logs, errors), not for every worker a supervisor starts.
   */
  private readonly prefix: string;
  private readonly suffix: string | undefined;
  /** The mailbox; the shared empty one until the first message: most worker actors never get one. */
  private q: unknown[] = NO_MAIL;
  private head = 0;
  /**
   * Where the next message goes. Emptied, the mailbox keeps its slots (up to MAILBOX_KEPT) for the
   * next burst: reset to no length, a busy actor (an engine told of every job's end) grew a new
   * backing store for every burst of messages.
   */
  private tail = 0;
  private state = STARTING;
  /** A drain is queued or running; no other may be queued. */
  private scheduled = false;
  /** An async init or handler is in flight; the next message waits for it. */
  private busy = false;
  private launched = false;
  private initOk = false;
  /** How the stop that began ends (set when it begins); once STOPPED, how it ended. */
  private exit: ActorExit | undefined = undefined;
  /** The supervisor of this incarnation and its entry for it: told of the exit before any monitor, without a closure per child. */
  private parent: ExitParent | undefined = undefined;
  private parentEntry: unknown = undefined;
  private startResult: StartResult | undefined = undefined;
  /**
   * What only some actors need (async handlers, waiting stoppers, monitors, timers, a signal, a
   * logger), made on first use: a dynamic supervisor starts one actor per job, and each field of
   * an instance is a word the garbage collector copies for every one of them.
   */
  private more: More | undefined = undefined;
  /** @internal */
  m(): More {
    return (this.more ??= new More());
  }

  constructor(
    sys: SystemInternals,
    behavior: Behavior<M, R>,
    id: number,
    name: string,
    registered: boolean,
    shutdownMs: number,
    suffix?: string,
  ) {
    this.sys = sys;
    this.behavior = behavior;
    this.id = id;
    this.prefix = name;
    this.suffix = suffix;
    this.registered = registered;
    this.shutdownMs = shutdownMs;
    this.ctx = new Context(this);
  }

  get name(): string {
    return this.suffix === undefined ? this.prefix : `${this.prefix}/${this.suffix}`;
  }

  get alive(): boolean {
    return this.state <= RUNNING;
  }

  /** Messages waiting (not counting one being handled). */
  get mailboxSize(): number {
    return (this.tail - this.head) >> 1;
  }

  get system(): ActorSystem {
    return this.sys.api;
  }

  call(msg: M, opts?: CallOptions): Promise<R> {
    if (this.state > RUNNING) return Promise.reject(new ActorStoppedError(this.name, this.stopReason()));
    let timeoutMs = opts?.timeoutMs ?? this.sys.callTimeoutMs;
    if (!(timeoutMs >= 0)) {
      return Promise.reject(new InvalidSpecError(`call timeoutMs must be a number >= 0 or Infinity, got ${String(timeoutMs)}`));
    }
    if (timeoutMs > MAX_TIMER_MS) timeoutMs = Infinity;
    return new Promise<R>((resolve, reject) => {
      const reply = new Reply(resolve, reject);
      if (timeoutMs !== Infinity) reply.timer = setTimeout(callTimedOut, timeoutMs, reply, this.name, timeoutMs);
      this.put(msg, reply);
      if (!this.scheduled && !this.busy && this.state === RUNNING) {
        this.scheduled = true;
        microtask(this.callbacks().drain);
      }
    });
  }

  cast(msg: M): void {
    if (this.state > RUNNING) {
      this.sys.logger.debug({ actor: this.name }, 'cast to an actor that is not running: message dropped');
      return;
    }
    this.put(msg, undefined);
    // Delivery is always asynchronous: running the handler inside cast() would re-enter the sender's stack.
    if (!this.scheduled && !this.busy && this.state === RUNNING) {
      this.scheduled = true;
      microtask(this.callbacks().drain);
    }
  }

  private put(msg: M, reply: Reply | undefined): void {
    let q = this.q;
    if (q === NO_MAIL) this.q = q = [];
    const at = this.tail;
    if (at < q.length) {
      q[at] = msg;
      q[at + 1] = reply;
    } else q.push(msg, reply);
    this.tail = at + 2;
  }

  stop(reason: unknown = 'normal'): Promise<void> {
    if (this.state === STOPPED) return Promise.resolve();
    if (this.state !== STOPPING) this.beginStop(stopExit(reason));
    const more = this.m();
    return (more.stopped ??= new Promise<void>((resolve) => {
      more.resolveStopped = resolve;
    }));
  }

  /** ctx.stop(): begins the stop like stop(), with no promise for a caller that does not wait. */
  requestStop(reason: unknown = 'normal'): void {
    if (this.state <= RUNNING) this.beginStop(stopExit(reason));
  }

  /** @internal Called by ExitListeners. */
  exitListenerThrew(err: unknown): void {
    this.sys.logger.error({ actor: this.name, err }, 'exit listener threw');
  }

  monitor(listener: ExitListener): () => void {
    const more = this.m();
    return (more.exitListeners ??= new ExitListeners(this, this.exitInfo())).add(listener);
  }

  /**
   * @internal Links this incarnation to its supervisor (undefined: unlinks it): `parent.childExited(entry,
   * this, exit)` is called once when it has fully stopped, at once on a microtask if it already has.
   */
  link(parent: ExitParent | undefined, entry: unknown): void {
    this.parent = parent;
    this.parentEntry = entry;
    const exit = this.exitInfo();
    if (parent !== undefined && exit !== undefined) {
      this.parent = undefined;
      this.parentEntry = undefined;
      queueMicrotask(() => this.tellParent(parent, entry, exit));
    }
  }

  private tellParent(parent: ExitParent, entry: unknown, exit: ActorExit): void {
    try {
      parent.childExited(entry, this, exit);
    } catch (err) {
      this.exitListenerThrew(err);
    }
  }

  /** How init ended, if it has: set synchronously by start() when init does not return a promise. */
  startResultNow(): StartResult | undefined {
    return this.startResult;
  }

  /** Resolves when init has finished (or failed); never rejects. */
  whenStarted(): Promise<StartResult> {
    if (this.startResult !== undefined) return Promise.resolve(this.startResult);
    return new Promise((resolve) => (this.m().startWaiters ??= []).push(resolve));
  }

  /** Runs init. Called by the system once the actor is registered; later calls do nothing. */
  start(): void {
    if (this.launched) return;
    this.launched = true;
    const behavior = this.behavior;
    if (typeof behavior.init !== 'function') {
      this.initDone();
      return;
    }
    let r: void | Promise<void>;
    try {
      r = behavior.init(this.ctx);
    } catch (err) {
      this.initFailed(err);
      return;
    }
    if (isThenable(r)) {
      this.busy = true;
      r.then(
        () => this.initDone(),
        (err: unknown) => this.initFailed(err),
      );
    } else {
      this.initDone();
    }
  }

  // The callbacks below are bound on first use, not per instance: most actors a dynamic supervisor
  // starts (one per job) never take an async path, and five closures each were a measurable part
  // of what the garbage collector copied at tens of thousands of jobs a second.
  private callbacks(): BoundCallbacks {
    return (this.m().bound ??= {
      drain: () => this.drain(),
      asyncDone: (v) => this.asyncDone(v),
      asyncFailed: (e) => this.asyncFailed(e),
    });
  }

  private initDone(): void {
    this.busy = false;
    if (this.state === STOPPED) return; // abandoned while init was still running
    this.initOk = true;
    this.settleStart(START_OK);
    if (this.state === STARTING) {
      this.state = RUNNING;
      if (this.head < this.tail && !this.scheduled) {
        this.scheduled = true;
        microtask(this.callbacks().drain);
      }
    } else {
      this.more?.onIdle?.();
    }
  }

  private initFailed(err: unknown): void {
    this.busy = false;
    if (this.state === STOPPED) {
      this.sys.logger.debug({ actor: this.name, err }, 'init of an abandoned actor failed');
      return;
    }
    this.settleStart({ ok: false, error: err });
    if (this.state === STARTING) {
      this.sys.logger.error({ actor: this.name, err }, 'actor failed to start: init threw');
      this.beginStop({ reason: err, crashed: true });
    } else {
      this.m().lateCrash = err;
      this.more?.onIdle?.();
    }
  }

  private settleStart(result: StartResult): void {
    this.startResult = result;
    const more = this.more;
    const waiters = more?.startWaiters;
    if (waiters === undefined) return;
    more!.startWaiters = undefined;
    for (const w of waiters) w(result);
  }

  /**
   * The run loop: handles queued messages back to back while handlers return synchronously, parks
   * on an async handler until it settles, and yields to the event loop when the system's slice is spent.
   */
  private drain(): void {
    if (this.state !== RUNNING || this.busy) {
      this.scheduled = false;
      return;
    }
    const q = this.q;
    const slice = this.sys.slice;
    const behavior = this.behavior;
    const ctx = this.ctx;
    try {
      while (this.head < this.tail) {
        if (!slice.take()) {
          this.compact();
          setImmediate(this.callbacks().drain);
          return; // stays scheduled
        }
        const i = this.head;
        const msg = q[i] as M;
        const reply = q[i + 1] as Reply | undefined;
        q[i] = undefined;
        q[i + 1] = undefined;
        this.head = i + 2;
        let result: R | Promise<R>;
        try {
          result = behavior.handle(msg, ctx);
        } catch (err) {
          this.scheduled = false;
          this.crash(err, reply);
          return;
        }
        if (isThenable(result)) {
          this.busy = true;
          if (reply !== undefined) this.m().current = reply;
          this.scheduled = false;
          this.compact();
          const cb = this.callbacks();
          result.then(cb.asyncDone, cb.asyncFailed);
          return;
        }
        if (reply !== undefined && !reply.ok(result)) this.lateReply();
        if (this.state !== RUNNING) {
          this.scheduled = false;
          return;
        }
      }
      // Every slot read was cleared as it was read.
      this.head = 0;
      this.tail = 0;
      if (q.length > MAILBOX_KEPT) q.length = 0;
      this.scheduled = false;
    } catch (err) {
      // Only reachable through a misbehaving thenable or logger; still never escapes into the process.
      this.scheduled = false;
      if (this.state <= RUNNING) this.crash(err, undefined);
    }
  }

  private asyncDone(value: unknown): void {
    const reply = this.takeCurrent();
    this.busy = false;
    if (reply !== undefined && !reply.ok(value)) this.lateReply();
    if (this.state === RUNNING) {
      if (!this.scheduled && this.head < this.tail) {
        this.scheduled = true;
        this.drain();
      }
    } else if (this.state === STOPPING) {
      this.more?.onIdle?.();
    }
  }

  private asyncFailed(err: unknown): void {
    const reply = this.takeCurrent();
    this.busy = false;
    if (this.state === RUNNING) {
      this.crash(err, reply);
    } else if (this.state === STOPPING) {
      reply?.fail(new ActorCrashedError(this.name, err));
      this.sys.logger.error({ actor: this.name, err }, 'actor crashed while stopping');
      this.m().lateCrash = err;
      this.more?.onIdle?.();
    } else {
      this.sys.logger.debug({ actor: this.name, err }, 'handler of an abandoned actor failed');
    }
  }

  /** Drops consumed slots once they are at least half of the array, so a mailbox that never empties does not grow forever. */
  private compact(): void {
    const head = this.head;
    if (head < 2048 || head * 2 < this.tail) return;
    // splice has a memmove fast path on V8's packed arrays; copyWithin is element by element.
    this.q.splice(0, head);
    this.tail -= head;
    this.head = 0;
  }

  private lateReply(): void {
    this.sys.logger.debug({ actor: this.name }, 'reply after the caller timed out: dropped');
  }

  private crash(err: unknown, reply: Reply | undefined): void {
    if (reply !== undefined) reply.fail(new ActorCrashedError(this.name, err));
    this.sys.logger.error({ actor: this.name, err }, 'actor crashed');
    if (this.state === STOPPING) {
      // The handler called stop() and then threw: the stop already under way ends as a crash.
      this.m().lateCrash = err;
      return;
    }
    this.beginStop({ reason: err, crashed: true });
  }

  stopReason(): unknown {
    return this.exit?.reason;
  }

  /** How it ended, once fully stopped. */
  private exitInfo(): ActorExit | undefined {
    return this.state === STOPPED ? this.exit : undefined;
  }

  private takeCurrent(): Reply | undefined {
    const more = this.more;
    if (more === undefined) return undefined;
    const reply = more.current;
    more.current = undefined;
    return reply;
  }

  /** Everything that must happen synchronously when a stop or crash begins: no message is handled after this. */
  private beginStop(exit: ActorExit): void {
    this.state = STOPPING;
    this.exit = exit;
    const more = this.more;
    if (more !== undefined) {
      more.controller?.abort(exit.reason);
      if (more.timers !== undefined) {
        for (const t of more.timers) clearTimeout(t);
        more.timers = undefined;
      }
    }
    const q = this.q;
    let dropped = 0;
    if (this.head < this.tail) {
      const detail = exit.crashed ? 'crashed before handling this call' : 'stopped before handling this call';
      for (let i = this.head; i < this.tail; i += 2) {
        const reply = q[i + 1] as Reply | undefined;
        if (reply !== undefined) reply.fail(new ActorStoppedError(this.name, exit.reason, detail));
        else dropped++;
      }
      q.length = 0;
      this.head = 0;
      this.tail = 0;
    }
    if (dropped > 0) this.sys.logger.debug({ actor: this.name, dropped }, 'queued casts dropped on stop');
    // Let a handler that called stop() on itself return first: the rest runs on a microtask.
    this.sys.finishLater(this);
  }

  /**
   * @internal The rest of a stop, on the microtask after it began (the system's queue of stops). With
   * nothing in flight and a synchronous terminate, as a worker actor that ends its job, it finishes
   * here without a promise; otherwise it waits (within shutdownMs) in finishStopAsync.
   */
  finishStop(): void {
    if (this.busy) {
      void this.finishStopAsync();
      return;
    }
    try {
      const exit = this.finalExit();
      const r = this.terminateNow(exit);
      if (r === undefined) this.finalize(exit);
      else void this.finishTerminate(r, exit, this.shutdownMs === Infinity ? Infinity : performance.now() + this.shutdownMs);
    } catch (err) {
      this.stopFailed(err);
    }
  }

  private finalExit(): ActorExit {
    const lateCrash = this.more === undefined ? NO_CRASH : this.more.lateCrash;
    return lateCrash !== NO_CRASH ? { reason: lateCrash, crashed: true } : this.exit!;
  }

  /** Calls terminate (if init succeeded and there is one); returns its promise if it returned one. */
  private terminateNow(exit: ActorExit): PromiseLike<unknown> | undefined {
    if (!this.initOk || typeof this.behavior.terminate !== 'function') return undefined;
    let r: void | Promise<void> = undefined;
    try {
      r = this.behavior.terminate(exit.reason, this.ctx);
    } catch (err) {
      this.sys.logger.warn({ actor: this.name, err }, 'terminate threw');
    }
    return isThenable(r) ? r : undefined;
  }

  private async finishTerminate(r: PromiseLike<unknown>, exit: ActorExit, deadline: number): Promise<void> {
    try {
      const done = await settleWithin(r, deadline - performance.now(), (err) =>
        this.sys.logger.warn({ actor: this.name, err }, 'terminate failed'),
      );
      if (!done) {
        this.abandon('terminate');
        return;
      }
      this.finalize(exit);
    } catch (err) {
      this.stopFailed(err);
    }
  }

  private stopFailed(err: unknown): void {
    this.sys.logger.error({ actor: this.name, err }, 'unexpected error while stopping an actor');
    if (this.state !== STOPPED) this.finalize(this.exit ?? { reason: err, crashed: true });
  }

  /** finishStop with a message (or init) in flight: waits for it, then terminates, all within shutdownMs. */
  private async finishStopAsync(): Promise<void> {
    try {
      const deadline = this.shutdownMs === Infinity ? Infinity : performance.now() + this.shutdownMs;
      if (this.busy) {
        const idle = new Promise<void>((resolve) => {
          this.m().onIdle = resolve;
        });
        if (!(await settleWithin(idle, deadline - performance.now(), noop))) {
          this.abandon('the message (or init) in progress');
          return;
        }
      }
      const exit = this.finalExit();
      const r = this.terminateNow(exit);
      if (r === undefined) this.finalize(exit);
      else await this.finishTerminate(r, exit, deadline);
    } catch (err) {
      this.stopFailed(err);
    }
  }

  private abandon(what: string): void {
    this.sys.logger.warn(
      { actor: this.name, shutdownMs: this.shutdownMs },
      `actor abandoned: ${what} did not finish within shutdownMs; raise shutdownMs or make it honour ctx.signal`,
    );
    const reply = this.takeCurrent();
    reply?.fail(new ActorStoppedError(this.name, this.exit?.reason, 'was abandoned while handling this call'));
    this.finalize(this.exit!);
  }

  private finalize(exit: ActorExit): void {
    this.state = STOPPED;
    this.exit = exit;
    const more = this.more;
    if (more !== undefined) more.onIdle = undefined;
    // Abandoned while init was still running: whoever waits for the start must not wait forever.
    if (this.startResult === undefined) {
      this.settleStart({ ok: false, error: new ActorStoppedError(this.name, exit.reason, 'was stopped before init finished') });
    }
    this.sys.exited(this);
    const parent = this.parent;
    if (parent !== undefined) {
      this.parent = undefined;
      const entry = this.parentEntry;
      this.parentEntry = undefined;
      this.tellParent(parent, entry, exit);
    }
    if (more !== undefined) {
      more.exitListeners?.fire(exit);
      const resolve = more.resolveStopped;
      if (resolve !== undefined) {
        more.resolveStopped = undefined;
        resolve();
      }
    }
  }

  addTimer(ms: number, msg: M, repeat: boolean): () => void {
    if (this.state > RUNNING) return noop;
    const more = this.m();
    const timers = (more.timers ??= new Set());
    const t: ReturnType<typeof setTimeout> = repeat
      ? setInterval(() => this.cast(msg), ms)
      : setTimeout(() => {
          more.timers?.delete(t);
          this.cast(msg);
        }, ms);
    timers.add(t);
    return () => {
      clearTimeout(t);
      more.timers?.delete(t);
    };
  }
}

class Context<M, R> implements ActorContext<M, R> {
  constructor(private readonly actor: Actor<M, R>) {}
  get self(): ActorRef<M, R> {
    return this.actor;
  }
  get name(): string {
    return this.actor.name;
  }
  get system(): ActorSystem {
    return this.actor.system;
  }
  get logger(): Logger {
    const a = this.actor;
    const more = a.m();
    return (more.childLogger ??= a.system.logger.child({ actor: a.name }));
  }
  get signal(): AbortSignal {
    const a = this.actor;
    const more = a.m();
    if (more.controller === undefined) {
      more.controller = new AbortController();
      if (!a.alive) more.controller.abort(a.stopReason());
    }
    return more.controller.signal;
  }
  stop(reason?: unknown): void {
    this.actor.requestStop(reason);
  }
  sendAfter(ms: number, msg: M): () => void {
    return this.actor.addTimer(ms, msg, false);
  }
  sendEvery(ms: number, msg: M): () => void {
    return this.actor.addTimer(ms, msg, true);
  }
}

Object.defineProperty(Actor.prototype, 'kind', { value: 'actor', enumerable: true });
