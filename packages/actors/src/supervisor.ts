import type { Actor } from './actor.js';
import { ActorStoppedError, ChildStartError, DuplicateChildError, InvalidSpecError, SupervisorGaveUpError } from './errors.js';
import { ExitListeners, isThenable, settleWithin, type ExitParent, type SystemInternals } from './internals.js';
import {
  checkChildSpec,
  checkSupervisorSpec,
  DEFAULT_INTENSITY,
  DEFAULT_PERIOD_MS,
  DEFAULT_SHUTDOWN_MS,
  isBehavior,
  isSupervisorSpec,
} from './spec.js';
import type {
  ActorExit,
  ActorRef,
  Behavior,
  ChildInfo,
  ChildSpec,
  ExitListener,
  Strategy,
  SupervisorRef,
  SupervisorSpec,
} from './types.js';

const STARTING = 0;
const RUNNING = 1;
const STOPPING = 2;
const STOPPED = 3;

const noop = (): void => {};

interface Child {
  readonly spec: ChildSpec;
  /** The current incarnation; after a crash, the dead one until the restart replaces it. */
  ref: Actor | Supervisor | undefined;
  restarts: number;
  /** How a nested supervisor is watched (a monitor); an actor is linked instead (Actor.link). */
  unmonitor: (() => void) | undefined;
  removed: boolean;
}

export interface SupervisorOptions {
  id: number;
  name: string;
  registered: boolean;
  root: boolean;
}

/**
 * A supervisor is not an actor with a mailbox but it behaves like one: every operation that changes
 * its children (initial start, a child's exit, startChild, terminateChild, stop) runs one at a time
 * on an internal promise chain, so a restart never interleaves with another restart or a stop.
 *
 * Stopping a child is awaited inside those operations (a restart must not start the new incarnation
 * while the old one still runs terminate or holds its registered name), except for terminateChild,
 * whose stop runs outside the chain so that one slow worker shutting down does not hold up every
 * other startChild of a dynamic supervisor.
 */
export class Supervisor implements SupervisorRef, ExitParent {
  readonly kind = 'supervisor' as const;
  readonly id: number;
  readonly name: string;
  readonly registered: boolean;
  private readonly root: boolean;
  private readonly sys: SystemInternals;
  private readonly strategy: Strategy;
  private readonly intensity: number;
  private readonly periodMs: number;
  private readonly initial: ChildSpec[];
  /** The children by id, in start order (a Map keeps insertion order): removing one is O(1). */
  private readonly byId = new Map<string, Child>();
  private ops: Promise<unknown> = Promise.resolve();
  /** Operations queued or running on `ops`: at 0 the chain is idle, and one that can finish synchronously runs at once. */
  private pendingOps = 0;
  private readonly opSettled = (): void => {
    this.pendingOps--;
  };
  private state = STARTING;
  private readonly restartTimes: number[] = [];
  private readonly detached = new Set<Promise<void>>();
  private readonly exitListeners = new ExitListeners(this);
  private stopReason: unknown = undefined;
  private readonly done: Promise<void>;
  private resolveDone!: () => void;

  constructor(sys: SystemInternals, spec: SupervisorSpec, opts: SupervisorOptions) {
    this.sys = sys;
    this.id = opts.id;
    this.name = opts.name;
    this.registered = opts.registered;
    this.root = opts.root;
    checkSupervisorSpec(spec, this.name);
    this.strategy = spec.strategy;
    this.intensity = spec.intensity ?? DEFAULT_INTENSITY;
    this.periodMs = spec.periodMs ?? DEFAULT_PERIOD_MS;
    this.initial = [...spec.children];
    this.done = new Promise<void>((resolve) => {
      this.resolveDone = resolve;
    });
  }

  get alive(): boolean {
    return this.state <= RUNNING;
  }

  /** Starts the children left to right, each after the previous one's init resolved. Rejects with ChildStartError. */
  start(): Promise<void> {
    return this.enqueue(async () => {
      for (const spec of this.initial) {
        if (this.state !== STARTING) throw new ActorStoppedError(this.name, this.stopReason, 'was stopped while starting');
        const child: Child = { spec, ref: undefined, restarts: 0, unmonitor: undefined, removed: false };
        try {
          await this.startIncarnation(child);
        } catch (err) {
          const error = new ChildStartError(this.name, spec.id, err);
          this.sys.logger.error({ supervisor: this.name, child: spec.id, err }, 'child failed to start; supervisor not started');
          await this.stopChildren(this.ordered());
          this.forgetAll();
          this.finalize({ reason: error, crashed: true }, false);
          throw error;
        }
        this.add(child);
      }
      if (this.state !== STARTING) throw new ActorStoppedError(this.name, this.stopReason, 'was stopped while starting');
      this.state = RUNNING;
    });
  }

  startChild<M, R>(spec: ChildSpec<M, R> & { start: () => Behavior<M, R> }): Promise<ActorRef<M, R>>;
  startChild(spec: ChildSpec & { start: () => SupervisorSpec }): Promise<SupervisorRef>;
  startChild(spec: ChildSpec): Promise<ActorRef | SupervisorRef>;
  startChild(spec: ChildSpec): Promise<ActorRef | SupervisorRef> {
    // With nothing else on the chain, a child whose init returns synchronously starts right here:
    // a dynamic supervisor starting one short-lived worker per job pays no promise hops for it.
    if (this.pendingOps > 0) return this.enqueue(() => this.addChild(spec));
    try {
      const started = this.addChild(spec);
      if (!isThenable(started)) return Promise.resolve(started);
      this.track(started);
      return started;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  launchChild<S extends ChildSpec>(spec: S, onFailed: (err: unknown, spec: S) => void): void {
    // Closures only on the paths that wait or fail: a child started synchronously costs none.
    if (this.pendingOps > 0) {
      this.enqueue(() => this.addChild(spec)).then(undefined, (err: unknown) => onFailed(err, spec));
      return;
    }
    let started: ActorRef | SupervisorRef | Promise<ActorRef | SupervisorRef>;
    try {
      started = this.addChild(spec);
    } catch (err) {
      queueMicrotask(() => onFailed(err, spec));
      return;
    }
    if (isThenable(started)) {
      this.track(started);
      started.then(undefined, (err: unknown) => onFailed(err, spec));
    }
  }

  /** startChild's operation: synchronous when the child's start is, else a promise. */
  private addChild(spec: ChildSpec): ActorRef | SupervisorRef | Promise<ActorRef | SupervisorRef> {
    if (this.state !== RUNNING) throw new ActorStoppedError(this.name, this.stopReason, 'is not running, so it cannot start a child');
    checkChildSpec(spec, this.name);
    if (this.byId.has(spec.id)) throw new DuplicateChildError(this.name, spec.id);
    const child: Child = { spec, ref: undefined, restarts: 0, unmonitor: undefined, removed: false };
    let starting: void | Promise<void>;
    try {
      starting = this.startIncarnation(child);
    } catch (err) {
      throw new ChildStartError(this.name, spec.id, err);
    }
    if (!isThenable(starting)) {
      this.add(child);
      return child.ref!;
    }
    return starting.then(
      () => {
        this.add(child);
        return child.ref!;
      },
      (err: unknown) => {
        throw new ChildStartError(this.name, spec.id, err);
      },
    );
  }

  async terminateChild(id: string): Promise<boolean> {
    const stopping = await this.enqueue(async () => {
      const child = this.byId.get(id);
      if (child === undefined) return undefined;
      this.remove(child);
      const p = this.stopChild(child, 'shutdown');
      this.detached.add(p);
      void p.then(() => this.detached.delete(p));
      return { p };
    });
    if (stopping === undefined) return false;
    await stopping.p;
    return true;
  }

  children(): ChildInfo[] {
    return this.ordered().map((c) => ({ id: c.spec.id, ref: c.ref!, restarts: c.restarts }));
  }

  child(id: string): ActorRef | SupervisorRef | undefined {
    return this.byId.get(id)?.ref;
  }

  stop(reason: unknown = 'normal'): Promise<void> {
    if (this.state >= STOPPING) return this.done;
    this.state = STOPPING;
    this.stopReason = reason;
    this.enqueueInternal(async () => {
      if (this.state === STOPPED) return; // a failed start already finished the job
      await this.stopChildren(this.ordered());
      await this.settleDetached();
      this.forgetAll();
      this.finalize({ reason, crashed: false }, false);
    });
    return this.done;
  }

  /** @internal Called by ExitListeners. */
  exitListenerThrew(err: unknown): void {
    this.sys.logger.error({ supervisor: this.name, err }, 'exit listener threw');
  }

  monitor(listener: ExitListener): () => void {
    return this.exitListeners.add(listener);
  }

  // ---- operations -------------------------------------------------------------------------

  /** For operations whose outcome goes back to a caller: a rejection is the caller's to handle. */
  private enqueue<T>(fn: () => T | Promise<T>): Promise<T> {
    const p = this.ops.then(fn);
    this.track(p);
    return p;
  }

  /** Makes `p`, an operation already under way, the end of the chain: later operations wait for it. */
  private track(p: Promise<unknown>): void {
    this.pendingOps++;
    this.ops = p.then(this.opSettled, this.opSettled);
  }

  /** For operations nobody awaits: a failure here is a bug in the supervisor, and it fails like a crashed child would. */
  private enqueueInternal(fn: () => void | Promise<void>): void {
    this.track(this.ops.then(fn).catch((err: unknown) => this.failed(err)));
  }

  private async failed(err: unknown): Promise<void> {
    this.sys.logger.error({ supervisor: this.name, err }, 'supervisor failed unexpectedly');
    if (this.state === STOPPED) return;
    this.state = STOPPING;
    try {
      await this.stopChildren(this.ordered());
      await this.settleDetached();
    } catch {
      // already logged; finish the exit regardless
    }
    this.forgetAll();
    this.finalize({ reason: err, crashed: true }, true);
  }

  /**
   * Starts one incarnation of `child` and monitors it. Throws (or rejects with) what made the start
   * fail. Returns nothing when it finished synchronously: an actor whose init did not return a promise.
   */
  private startIncarnation(child: Child): void | Promise<void> {
    const spec = child.spec;
    const made: unknown = spec.start();
    const register = spec.name !== undefined;
    if (isBehavior(made)) {
      // Unnamed, it is `<this>/<id>`, a string the actor makes only when its name is read.
      const actor = register
        ? this.sys.spawnActor(made, spec.name, true, spec.shutdownMs ?? DEFAULT_SHUTDOWN_MS, false)
        : this.sys.spawnActor(made, this.name, false, spec.shutdownMs ?? DEFAULT_SHUTDOWN_MS, false, spec.id);
      const startedNow = actor.startResultNow();
      if (startedNow?.ok) return this.watch(child, actor);
      return (startedNow ? Promise.resolve(startedNow) : actor.whenStarted()).then(async (started) => {
        if (!started.ok) {
          // Wait until it is fully gone, so that a retry can take its registered name.
          await actor.stop();
          throw started.error;
        }
        this.watch(child, actor);
      });
    }
    if (isSupervisorSpec(made)) {
      const sup = this.sys.newSupervisor(made, { name: spec.name ?? `${this.name}/${spec.id}`, register, root: false });
      return sup.start().then(() => this.watch(child, sup));
    }
    throw new InvalidSpecError(
      `start() of child "${spec.id}" returned neither a behavior (an object with handle()) nor a supervisor spec ({ strategy, children })`,
    );
  }

  private watch(child: Child, inc: Actor | Supervisor): void {
    child.ref = inc;
    if (inc.kind === 'actor') inc.link(this, child);
    else child.unmonitor = inc.monitor((exit) => this.childExited(child, inc, exit));
  }

  /** Stops reacting to the current incarnation's exit. */
  private unwatch(child: Child): void {
    const inc = child.ref;
    if (inc?.kind === 'actor') inc.link(undefined, undefined);
    child.unmonitor?.();
    child.unmonitor = undefined;
  }

  /** @internal A watched incarnation has fully stopped (its link or monitor). */
  childExited(child: Child, inc: Actor | Supervisor, exit: ActorExit): void {
    if (this.pendingOps > 0) {
      this.enqueueInternal(() => this.handleExit(child, inc, exit));
      return;
    }
    // Nothing else on the chain: a child that is not restarted is forgotten at once, and only a
    // restart becomes an operation that later ones wait for.
    let handled: void | Promise<void>;
    try {
      handled = this.handleExit(child, inc, exit);
    } catch (err) {
      handled = Promise.reject(err);
    }
    if (isThenable(handled)) this.track(handled.catch((err: unknown) => this.failed(err)));
  }

  private handleExit(child: Child, inc: Actor | Supervisor, exit: ActorExit): void | Promise<void> {
    if (this.state !== RUNNING || child.removed || child.ref !== inc) return;
    child.unmonitor = undefined;
    const policy = child.spec.restart ?? 'permanent';
    const restart = policy === 'permanent' || (policy === 'transient' && exit.crashed);
    if (!restart) {
      // A temporary child ending normally is a dynamic supervisor's everyday case (one per job): not logged.
      if (exit.crashed || policy !== 'temporary') {
        this.sys.logger.debug({ supervisor: this.name, child: child.spec.id, crashed: exit.crashed }, 'child exited; not restarted');
      }
      this.remove(child);
      return;
    }
    return this.restart(child, exit.reason);
  }

  /**
   * Restarts `culprit` and, depending on the strategy, its siblings. A restart that fails to start
   * counts as one more restart of the child that failed, and the strategy is applied again from it,
   * until it works or the intensity is exceeded.
   */
  private async restart(culprit: Child, cause: unknown): Promise<void> {
    for (;;) {
      if (this.state !== RUNNING) return;
      if (!this.allowRestart()) {
        await this.giveUp(culprit, cause);
        return;
      }
      this.sys.logger.warn({ supervisor: this.name, child: culprit.spec.id, strategy: this.strategy, err: cause }, 'restarting child');
      const group = this.groupFor(culprit);
      await this.stopChildren(group.filter((c) => c !== culprit));
      let failed: Child | undefined;
      for (const c of group) {
        if (c.removed) continue;
        // Erlang's rule: siblings that are temporary are stopped with the group but not brought back.
        if (c !== culprit && (c.spec.restart ?? 'permanent') === 'temporary') {
          this.remove(c);
          continue;
        }
        if (this.state !== RUNNING) return;
        c.restarts++;
        try {
          await this.startIncarnation(c);
        } catch (err) {
          this.sys.logger.error({ supervisor: this.name, child: c.spec.id, err }, 'child failed to restart');
          failed = c;
          cause = err;
          break;
        }
      }
      if (failed === undefined) return;
      culprit = failed;
    }
  }

  private groupFor(culprit: Child): Child[] {
    switch (this.strategy) {
      case 'one_for_one':
        return [culprit];
      case 'one_for_all':
        return this.ordered();
      case 'rest_for_one': {
        const all = this.ordered();
        return all.slice(all.indexOf(culprit));
      }
    }
  }

  /** Records a restart now; false when that makes more than `intensity` within the last `periodMs`. */
  private allowRestart(): boolean {
    const now = performance.now();
    const times = this.restartTimes;
    times.push(now);
    const cutoff = now - this.periodMs;
    let expired = 0;
    while (expired < times.length && times[expired]! <= cutoff) expired++;
    if (expired > 0) times.splice(0, expired);
    return times.length <= this.intensity;
  }

  private async giveUp(culprit: Child, cause: unknown): Promise<void> {
    this.state = STOPPING;
    const err = new SupervisorGaveUpError(this.name, this.intensity, this.periodMs, culprit.spec.id, cause);
    this.sys.logger.error({ supervisor: this.name, child: culprit.spec.id, err }, 'supervisor gave up; stopping its children');
    await this.stopChildren(this.ordered());
    await this.settleDetached();
    this.forgetAll();
    this.finalize({ reason: err, crashed: true }, true);
  }

  /** Stops `children` last first, each within its own shutdownMs. Never throws. */
  private async stopChildren(children: Child[]): Promise<void> {
    for (let i = children.length - 1; i >= 0; i--) await this.stopChild(children[i]!, 'shutdown');
  }

  private async stopChild(child: Child, reason: unknown): Promise<void> {
    const inc = child.ref;
    if (inc === undefined) return;
    // Unwatch first: an exit we asked for is not a crash to react to.
    this.unwatch(child);
    try {
      if (inc.kind === 'actor') {
        await inc.stop(reason); // the actor enforces its own shutdownMs
      } else {
        const ms = child.spec.shutdownMs ?? Infinity;
        if (!(await settleWithin(inc.stop(reason), ms, noop))) {
          this.sys.logger.warn(
            { supervisor: this.name, child: child.spec.id, shutdownMs: ms },
            'nested supervisor did not stop within shutdownMs; abandoned',
          );
        }
      }
    } catch (err) {
      this.sys.logger.error({ supervisor: this.name, child: child.spec.id, err }, 'stopping a child failed');
    }
  }

  private async settleDetached(): Promise<void> {
    while (this.detached.size > 0) await Promise.all([...this.detached]);
  }

  private ordered(): Child[] {
    return [...this.byId.values()];
  }

  private add(child: Child): void {
    this.byId.set(child.spec.id, child);
  }

  private remove(child: Child): void {
    child.removed = true;
    if (this.byId.get(child.spec.id) === child) this.byId.delete(child.spec.id);
  }

  private forgetAll(): void {
    for (const c of this.byId.values()) c.removed = true;
    this.byId.clear();
  }

  private finalize(exit: ActorExit, fatal: boolean): void {
    if (this.state === STOPPED) return;
    this.state = STOPPED;
    this.sys.exited(this);
    if (fatal && this.root) this.sys.fatal(exit.reason as Error, this);
    this.exitListeners.fire(exit);
    this.resolveDone();
  }
}
