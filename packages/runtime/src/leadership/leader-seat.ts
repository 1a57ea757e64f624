import type { ActorRef, ActorSystem, Behavior, SupervisorRef, SupervisorSpec } from '@partita/actors';
import { LeaseLostError, ValidationError, describeError, type Logger } from '@partita/core';
import type { LeaseStore } from '@partita/postgres';

/** The lease as the leader's `start` sees it. */
export interface HeldLease {
  readonly name: string;
  /** The fencing token: every write the leader makes should carry it (see Leases.assertHolder). */
  readonly epoch: number;
  /**
   * Moves the epoch up to at least `atLeast` and returns the new one: for a leader that finds state
   * saved under a later epoch than its own (the lease table was reset while that state survived).
   * Rejects with LeaseLostError when the lease was lost meanwhile.
   */
  raiseEpoch(atLeast: number): Promise<number>;
}

/** What a leader child is: an actor or a supervision tree. */
export type LeaderChild = ActorRef | SupervisorRef;

export interface LeaderChange {
  lease: string;
  /** True: this node became the leader; false: it stopped being it. */
  leader: boolean;
  epoch: number;
  /** Why it stopped: lost (taken over or expired), released (the seat stopped), child-stopped. */
  reason?: 'lost' | 'released' | 'child-stopped';
}

export interface LeaderSeatOptions {
  /** The lease's name, cluster-wide: 'maintenance', 'schedule:nightly'. One leader per name. */
  lease: string;
  /** This node's id: the lease's holder while it leads. */
  nodeId: string;
  leases: LeaseStore;
  system: ActorSystem;
  logger: Logger;
  /** Lease time to live: a dead leader is replaced within about ttlMs + tickMs. */
  ttlMs: number;
  /** Take-over attempts happen this often; a leader renews every ttlMs / 3 or so (on the tick after). */
  tickMs: number;
  /**
   * Makes the leader's child once this node holds the lease, at `epoch` (a fresh behavior or spec
   * every time). It runs until the lease is lost or released; a child that stops on its own gives
   * the lease up. A rejection is retried on the next tick unless it is fatal (see `fatal`).
   */
  start: (epoch: number, lease: HeldLease) => Behavior | SupervisorSpec | Promise<Behavior | SupervisorSpec>;
  /** Registers every leader child under this name (system.whereis), so at most one runs per node. */
  name?: string;
  /** Time allowed for the child's terminate on step-down. Default 5000. */
  shutdownMs?: number;
  /**
   * Runs once the child has started (e.g. to route requests to it); the function it returns runs
   * before the child is stopped. A rejection steps down and releases the lease.
   */
  whileLeading?: (child: LeaderChild, epoch: number) => Promise<(() => Promise<void>) | void>;
  /** Errors from `start` that must crash the seat's actor instead of being retried. */
  fatal?: (err: unknown) => boolean;
}

export type LeaderSeatMsg = { t: 'tick' } | { t: 'status' };

export interface LeaderSeatStatus {
  lease: string;
  leader: boolean;
  epoch: number | undefined;
}

interface Held {
  epoch: number;
  /**
   * When the last successful acquire or renew was asked for, on the monotonic clock (performance.now()):
   * our deadline is this + ttl. Not the wall clock: a wall clock stepped back an hour would hold the
   * renewals back for that hour (the lease runs out and another node leads while this one still
   * thinks it does), and one stepped forward would step a healthy leader down at its first failed renewal.
   */
  renewedAt: number;
  child?: LeaderChild;
  teardown?: () => Promise<void>;
}

/**
 * "Hold lease L and run child C while you do", for any cluster-wide singleton (Oban's Peer plus a
 * leader-only plugin): Global per partition, history maintenance, schedulers. It chases the lease
 * on every tick; while it holds it, it renews it and runs the child made by `start(epoch)`; when
 * the lease is lost it stops the child, and when the seat stops it also releases the lease so
 * another node takes over at once rather than after the ttl.
 *
 * Leadership is never trusted alone: the child gets the epoch and fences its writes with it, so a
 * leader paused past its lease (GC, a stopped process) that resumes before noticing is refused.
 *
 * Run it as its own actor (`behavior()`, e.g. as a supervisor's child) or drive `tick()`/`stop()`
 * from an actor that has other work, as the Global seat does. Either way calls are serialised.
 */
export class LeaderSeat {
  readonly lease: string;
  private readonly options: LeaderSeatOptions;
  private readonly logger: Logger;
  private held: Held | undefined;
  private running: Promise<void> | undefined;
  private stopped = false;
  private readonly listeners = new Set<(change: LeaderChange) => void>();

  constructor(options: LeaderSeatOptions) {
    if (typeof options.lease !== 'string' || options.lease.length === 0)
      throw new ValidationError('must be a non-empty string (the lease name)', 'lease');
    if (typeof options.nodeId !== 'string' || options.nodeId.length === 0)
      throw new ValidationError('must be a non-empty string', 'nodeId');
    if (!(Number.isFinite(options.ttlMs) && options.ttlMs > 0))
      throw new ValidationError('must be a number of milliseconds above 0', 'ttlMs');
    if (!(Number.isFinite(options.tickMs) && options.tickMs > 0 && options.tickMs < options.ttlMs)) {
      throw new ValidationError(`must be above 0 and below ttlMs (${options.ttlMs}), or the lease runs out between two renewals`, 'tickMs');
    }
    if (typeof options.start !== 'function')
      throw new ValidationError('must be a function returning the leader child (a behavior or a supervisor spec)', 'start');
    this.lease = options.lease;
    this.options = options;
    this.logger = options.logger;
  }

  /** True while this node holds the lease and runs the child. */
  get isLeader(): boolean {
    return this.held?.child !== undefined;
  }

  /** The epoch this node leads at; undefined when it does not lead. */
  get epoch(): number | undefined {
    return this.isLeader ? this.held!.epoch : undefined;
  }

  /** The running leader child, on the leader only. */
  get child(): LeaderChild | undefined {
    return this.held?.child;
  }

  /** Calls `listener` on every change of leadership on this node. Returns an unsubscribe function. */
  onChange(listener: (change: LeaderChange) => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** One round: renew (or notice the loss) while leading, else try to take the lease. */
  tick(): Promise<void> {
    if (this.stopped) return Promise.resolve();
    // One round at a time: a slow Postgres must not let two acquires or renewals overlap.
    this.running ??= this.round().finally(() => (this.running = undefined));
    return this.running;
  }

  /** Stops the child and releases the lease (after a round in progress). Later ticks do nothing until `resume()`. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running?.catch(() => undefined);
    await this.stepDown('released', true);
  }

  /** Lets a stopped seat chase the lease again. */
  resume(): void {
    this.stopped = false;
  }

  /**
   * The seat as an actor: it ticks every tickMs, answers `{ t: 'status' }` with a LeaderSeatStatus
   * and releases the lease when stopped. A round that fails is logged and retried on the next tick;
   * a `fatal` error crashes the actor (its supervisor decides what follows).
   */
  behavior(): Behavior<LeaderSeatMsg, LeaderSeatStatus | void> {
    return {
      init: (ctx) => {
        this.resume();
        ctx.sendEvery(this.options.tickMs, { t: 'tick' });
        ctx.self.cast({ t: 'tick' });
      },
      handle: async (msg) => {
        if (msg.t === 'status') return { lease: this.lease, leader: this.isLeader, epoch: this.epoch };
        try {
          await this.tick();
        } catch (err) {
          if (this.options.fatal?.(err)) throw err;
          this.logger.warn({ lease: this.lease, err: describeError(err).message }, 'lease round failed; will retry');
        }
        return undefined;
      },
      terminate: () => this.stop(),
    };
  }

  private async round(): Promise<void> {
    const { leases, nodeId, ttlMs } = this.options;
    const lease = this.lease;
    const held = this.held;
    if (held?.child && !held.child.alive) {
      this.logger.warn({ lease, epoch: held.epoch }, "the leader's child stopped; giving up the lease");
      await this.stepDown('child-stopped', true);
      return;
    }
    if (held) {
      if (performance.now() - held.renewedAt < ttlMs / 3) return;
      const asked = performance.now();
      let renewed: boolean;
      try {
        renewed = await leases.renew(lease, nodeId, held.epoch, ttlMs);
      } catch (err) {
        // Without a renewal the lease runs out at renewedAt + ttl by our own (monotonic) clock at the latest;
        // from then on another node may lead, so this one stops even though it cannot confirm it.
        if (performance.now() - held.renewedAt >= ttlMs) {
          this.logger.warn(
            { lease, epoch: held.epoch, err: describeError(err).message },
            'could not renew the lease before it ran out; stepping down',
          );
          await this.stepDown('lost', false);
        }
        throw err;
      }
      if (renewed) held.renewedAt = asked;
      else {
        this.logger.warn({ lease, epoch: held.epoch }, 'lost the lease (it expired and was taken over, or was released)');
        await this.stepDown('lost', false);
      }
      return;
    }
    const asked = performance.now();
    const got = await leases.acquire(lease, nodeId, ttlMs);
    if (got) await this.lead({ epoch: got.epoch, renewedAt: asked });
  }

  private async lead(held: Held): Promise<void> {
    const { leases, nodeId, system } = this.options;
    const lease = this.lease;
    this.held = held;
    const handle: HeldLease = {
      name: lease,
      get epoch() {
        return held.epoch;
      },
      raiseEpoch: async (atLeast) => {
        const raised = await leases.raiseEpoch(lease, nodeId, held.epoch, atLeast);
        if (raised === undefined) throw new LeaseLostError(lease, held.epoch, await leases.holder(lease).catch(() => undefined));
        held.epoch = raised;
        return raised;
      },
    };
    const name = this.options.name;
    try {
      const made = await this.options.start(held.epoch, handle);
      held.child =
        'handle' in made
          ? system.spawn(made, {
              ...(name !== undefined ? { name } : {}),
              ...(this.options.shutdownMs !== undefined ? { shutdownMs: this.options.shutdownMs } : {}),
            })
          : await system.supervise(made, name !== undefined ? { name } : {});
    } catch (err) {
      // Not released: the next tick re-acquires it at the same epoch (still ours) and tries again.
      this.held = undefined;
      throw err;
    }
    this.emit({ lease, leader: true, epoch: held.epoch });
    this.logger.info({ lease, epoch: held.epoch }, 'took the lease; leading');
    if (this.options.whileLeading) {
      try {
        const teardown = await this.options.whileLeading(held.child, held.epoch);
        if (teardown) {
          if (this.held === held) held.teardown = teardown;
          else await teardown().catch(() => undefined);
        }
      } catch (err) {
        await this.stepDown('child-stopped', true);
        throw err;
      }
    }
  }

  private async stepDown(reason: NonNullable<LeaderChange['reason']>, release: boolean): Promise<void> {
    const was = this.held;
    if (!was) return;
    this.held = undefined;
    if (was.child) this.emit({ lease: this.lease, leader: false, epoch: was.epoch, reason });
    await was
      .teardown?.()
      .catch((err: unknown) => this.logger.warn({ lease: this.lease, err: describeError(err).message }, 'leader teardown failed'));
    await was.child?.stop(reason === 'released' ? 'shutdown' : `lease ${reason}`);
    if (release) await this.options.leases.release(this.lease, this.options.nodeId, was.epoch).catch(() => undefined);
    this.logger.info({ lease: this.lease, epoch: was.epoch, reason, released: release }, 'no longer leading');
  }

  private emit(change: LeaderChange): void {
    for (const listener of [...this.listeners]) {
      try {
        listener(change);
      } catch (err) {
        this.logger.warn({ lease: this.lease, err: describeError(err).message }, 'a leader change listener threw');
      }
    }
  }
}
