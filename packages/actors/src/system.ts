import { Actor } from './actor.js';
import { InvalidSpecError, NameTakenError, SystemStoppedError } from './errors.js';
import { Slice, validShutdownMs, type Registered, type SystemInternals } from './internals.js';
import { MicrotaskBatch } from './microtask-batch.js';
import { noopLogger, type Logger } from './logger.js';
import { checkName, DEFAULT_SHUTDOWN_MS, isBehavior } from './spec.js';
import { Supervisor } from './supervisor.js';
import type {
  ActorRef,
  ActorSystem,
  Behavior,
  FatalListener,
  SpawnOptions,
  SupervisorRef,
  SupervisorSpec,
  SystemOptions,
} from './types.js';

const DEFAULT_CALL_TIMEOUT_MS = 5000;

class System implements ActorSystem, SystemInternals {
  readonly name: string;
  readonly logger: Logger;
  readonly slice = new Slice();
  readonly callTimeoutMs: number;
  private ids = 0;
  private readonly names = new Map<string, Actor | Supervisor>();
  /** Top-level actors and supervision trees, in start order (a Set keeps insertion order). */
  private readonly roots = new Set<Actor | Supervisor>();
  private readonly fatalListeners: FatalListener[] = [];
  private down: Promise<void> | undefined = undefined;

  constructor(opts: SystemOptions) {
    this.name = opts.name ?? 'actors';
    this.logger = opts.logger ?? noopLogger();
    this.callTimeoutMs = opts.callTimeoutMs ?? DEFAULT_CALL_TIMEOUT_MS;
  }

  get api(): ActorSystem {
    return this;
  }

  nextId(): number {
    return ++this.ids;
  }

  spawn<M, R>(behavior: Behavior<M, R>, opts?: SpawnOptions): ActorRef<M, R> {
    if (this.down !== undefined) throw new SystemStoppedError(this.name);
    if (!isBehavior(behavior)) throw new InvalidSpecError('spawn() needs a behavior: an object with a handle(msg, ctx) method');
    if (opts?.name !== undefined) checkName(opts.name, 'actor name');
    const shutdownMs = opts?.shutdownMs ?? DEFAULT_SHUTDOWN_MS;
    if (!validShutdownMs(shutdownMs)) throw new InvalidSpecError(`shutdownMs must be a number >= 0 or Infinity, got ${String(shutdownMs)}`);
    return this.spawnActor(behavior, opts?.name, opts?.name !== undefined, shutdownMs, true);
  }

  spawnActor<M, R>(
    behavior: Behavior<M, R>,
    name: string | undefined,
    register: boolean,
    shutdownMs: number,
    root: boolean,
    suffix?: string,
  ): Actor<M, R> {
    const id = this.nextId();
    const actor = new Actor<M, R>(this, behavior, id, name ?? `actor#${id}`, register, shutdownMs, suffix);
    if (register) this.register(actor.name, actor);
    if (root) this.roots.add(actor);
    actor.start();
    return actor;
  }

  // Stops waiting for their microtask, in the order they began (finishStop handles its own errors).
  private readonly finishing = new MicrotaskBatch<Actor>(
    (actor) => actor.finishStop(),
    (actor, err) => this.logger.error({ actor: actor.name, err }, 'unexpected error while stopping an actor'),
  );

  finishLater(actor: Actor): void {
    this.finishing.add(actor);
  }

  async supervise(spec: SupervisorSpec, opts?: { name?: string }): Promise<SupervisorRef> {
    if (this.down !== undefined) throw new SystemStoppedError(this.name);
    if (opts?.name !== undefined) checkName(opts.name, 'supervisor name');
    const sup = this.newSupervisor(spec, { name: opts?.name, register: opts?.name !== undefined, root: true });
    this.roots.add(sup);
    await sup.start();
    return sup;
  }

  newSupervisor(spec: SupervisorSpec, opts: { name: string | undefined; register: boolean; root: boolean }): Supervisor {
    const id = this.nextId();
    const sup = new Supervisor(this, spec, { id, name: opts.name ?? `supervisor#${id}`, registered: opts.register, root: opts.root });
    if (opts.register) this.register(sup.name, sup);
    return sup;
  }

  register(name: string, entity: Actor | Supervisor): void {
    // An entry lives until its holder has fully stopped (exited() removes it), so a taken name is
    // never handed to a second incarnation while the first still runs terminate.
    if (this.names.has(name)) throw new NameTakenError(name);
    this.names.set(name, entity);
  }

  exited(entity: Registered): void {
    const e = entity as Actor | Supervisor;
    if (e.registered && this.names.get(e.name) === e) this.names.delete(e.name);
    this.roots.delete(e);
  }

  fatal(err: Error, supervisor: Supervisor): void {
    this.logger.error({ supervisor: supervisor.name, err }, 'root supervisor gave up');
    for (const l of [...this.fatalListeners]) {
      try {
        l(err, supervisor);
      } catch (listenerErr) {
        this.logger.error({ err: listenerErr }, "a 'fatal' listener threw");
      }
    }
  }

  whereis<M = any, R = any>(name: string): ActorRef<M, R> | undefined {
    const e = this.names.get(name);
    return e !== undefined && e.kind === 'actor' && e.alive ? (e as Actor<M, R>) : undefined;
  }

  whereisSupervisor(name: string): SupervisorRef | undefined {
    const e = this.names.get(name);
    return e !== undefined && e.kind === 'supervisor' && e.alive ? e : undefined;
  }

  registered(): string[] {
    return [...this.names.keys()];
  }

  shutdown(): Promise<void> {
    this.down ??= (async () => {
      const all = [...this.roots];
      for (let i = all.length - 1; i >= 0; i--) await all[i]!.stop('shutdown');
    })();
    return this.down;
  }

  on(event: 'fatal', listener: FatalListener): this {
    if (event !== 'fatal') throw new InvalidSpecError(`unknown event "${String(event)}"; the actor system emits only 'fatal'`);
    this.fatalListeners.push(listener);
    return this;
  }

  off(event: 'fatal', listener: FatalListener): this {
    const i = event === 'fatal' ? this.fatalListeners.indexOf(listener) : -1;
    if (i >= 0) this.fatalListeners.splice(i, 1);
    return this;
  }
}

/** Creates an actor system: a registry of names and the roots of its supervision trees. No I/O, no globals. */
export function createSystem(opts: SystemOptions = {}): ActorSystem {
  if (opts.name !== undefined) checkName(opts.name, 'system name');
  if (opts.callTimeoutMs !== undefined && !validShutdownMs(opts.callTimeoutMs)) {
    throw new InvalidSpecError(`callTimeoutMs must be a number >= 0 or Infinity, got ${String(opts.callTimeoutMs)}`);
  }
  return new System(opts);
}
