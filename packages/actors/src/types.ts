import type { Logger } from './logger.js';

/**
 * What an actor does. `handle` sees one message at a time, in arrival order: if it returns a
 * promise, the next message waits until that promise settles. A throw or rejection in `init` or
 * `handle` crashes this actor only (never the process).
 */
export interface Behavior<M = any, R = any> {
  /** Runs before the first message; messages sent meanwhile wait in the mailbox. A failure is a start failure. */
  init?(ctx: ActorContext<M, R>): void | Promise<void>;
  handle(msg: M, ctx: ActorContext<M, R>): R | Promise<R>;
  /**
   * Runs once when the actor stops after a successful init: with the `stop(reason)` reason, with
   * 'shutdown' when its supervisor stops it, or with the error it crashed with. Bounded by
   * `shutdownMs`, after which the actor is abandoned (logged at warn).
   */
  terminate?(reason: unknown, ctx: ActorContext<M, R>): void | Promise<void>;
}

export interface CallOptions {
  /** Default: the system's `callTimeoutMs` (5000). `Infinity` waits forever. */
  timeoutMs?: number;
}

/** How an actor or supervisor ended. `crashed` is true only for a throw/rejection (or a supervisor giving up). */
export interface ActorExit {
  reason: unknown;
  crashed: boolean;
}

export type ExitListener = (exit: ActorExit) => void;

export interface ActorRef<M = any, R = any> {
  readonly kind: 'actor';
  /** Registered name, or a generated one (`actor#12`, `<supervisor>/<child id>`) when unregistered. */
  readonly name: string;
  /** Unique within the system; a restarted child is a new actor with a new id (and a new ref). */
  readonly id: number;
  /** True from spawn until a stop or crash begins. */
  readonly alive: boolean;
  /** Messages waiting in the mailbox (not counting the one being handled). */
  readonly mailboxSize: number;
  /**
   * Sends `msg` and resolves with what `handle` returned. Rejects with TimeoutError after
   * `timeoutMs` (a late reply is dropped), ActorCrashedError if handling this message crashed the
   * actor, ActorStoppedError if the actor is gone or stopped before reaching this message.
   */
  call(msg: M, opts?: CallOptions): Promise<R>;
  /** Fire and forget. A cast to an actor that is not alive is dropped (logged at debug). */
  cast(msg: M): void;
  /**
   * Stops after the message in progress (if any): queued calls are rejected with ActorStoppedError,
   * queued casts dropped, then `terminate(reason)` runs. Resolves once stopped or abandoned; never
   * rejects. Do not await this from the actor's own handler (use `ctx.stop()`), it would wait for itself.
   */
  stop(reason?: unknown): Promise<void>;
  /** Calls `listener` once when the actor has fully stopped (at once if it already has). Returns an unsubscribe function. */
  monitor(listener: ExitListener): () => void;
}

export interface ActorContext<M = any, R = any> {
  readonly self: ActorRef<M, R>;
  readonly name: string;
  readonly system: ActorSystem;
  /** A child of the system logger bound to `{ actor: name }` (created on first use). */
  readonly logger: Logger;
  /** Aborted when the actor starts stopping or crashes, so long work in a handler can give up early. */
  readonly signal: AbortSignal;
  /** Stops this actor once the current handler returns (the non-blocking form of `self.stop()`). */
  stop(reason?: unknown): void;
  /** Casts `msg` to self after `ms`; cleared automatically when the actor stops. Returns a cancel function. */
  sendAfter(ms: number, msg: M): () => void;
  /** Casts `msg` to self every `ms`; cleared automatically when the actor stops. Returns a cancel function. */
  sendEvery(ms: number, msg: M): () => void;
}

export type RestartPolicy = 'permanent' | 'transient' | 'temporary';
export type Strategy = 'one_for_one' | 'one_for_all' | 'rest_for_one';

export interface ChildSpec<M = any, R = any> {
  /** Unique among the supervisor's children. */
  id: string;
  /** Makes a fresh behavior (or a nested supervisor spec) for every start and restart. */
  start: () => Behavior<M, R> | SupervisorSpec;
  /** permanent (default): always restarted; transient: only after a crash; temporary: never. */
  restart?: RestartPolicy;
  /** Time allowed for terminate on stop before the child is abandoned. Default 5000 for actors, Infinity for supervisors. */
  shutdownMs?: number;
  /** Register the child (every incarnation) under this name, for `system.whereis()`. Unregistered by default. */
  name?: string;
}

export interface SupervisorSpec {
  strategy: Strategy;
  /** Max restarts tolerated within `periodMs` (sliding window); one more and the supervisor gives up. Default 3. */
  intensity?: number;
  /** Default 5000. */
  periodMs?: number;
  children: ChildSpec[];
}

export interface ChildInfo {
  id: string;
  /** The current incarnation (a supervisor for a nested SupervisorSpec). */
  ref: ActorRef | SupervisorRef;
  /** How many times this supervisor has restarted the child. */
  restarts: number;
}

export interface SupervisorRef {
  readonly kind: 'supervisor';
  readonly name: string;
  readonly id: number;
  readonly alive: boolean;
  /**
   * Starts (and supervises) one more child, after the current ones; resolves with its ref once its
   * init has completed. Rejects with ChildStartError (not retried), DuplicateChildError or ActorStoppedError.
   */
  startChild<M, R>(spec: ChildSpec<M, R> & { start: () => Behavior<M, R> }): Promise<ActorRef<M, R>>;
  startChild(spec: ChildSpec & { start: () => SupervisorSpec }): Promise<SupervisorRef>;
  startChild(spec: ChildSpec): Promise<ActorRef | SupervisorRef>;
  /**
   * startChild for a caller that does not wait for the child: no promise is made for it (a node
   * starts one worker per job this way). A start that fails calls `onFailed` with what startChild
   * would have rejected with (ChildStartError, DuplicateChildError, ActorStoppedError) and the spec,
   * never synchronously, so one shared callback serves every child.
   */
  launchChild<S extends ChildSpec>(spec: S, onFailed: (err: unknown, spec: S) => void): void;
  /** Stops the child and forgets its spec (it is not restarted). Resolves false if there was no such child. */
  terminateChild(id: string): Promise<boolean>;
  /** The current children in start order. */
  children(): ChildInfo[];
  /** The current ref of one child. */
  child(id: string): ActorRef | SupervisorRef | undefined;
  /** Stops the children in reverse start order, then itself. Never rejects. */
  stop(reason?: unknown): Promise<void>;
  monitor(listener: ExitListener): () => void;
}

export interface SpawnOptions {
  /** Register under this name; NameTakenError if a live actor or supervisor holds it. */
  name?: string;
  /** Time allowed for terminate (and a handler in progress) on stop. Default 5000. */
  shutdownMs?: number;
}

export interface SystemOptions {
  name?: string;
  logger?: Logger;
  /** Default `timeoutMs` of `call`. Default 5000. */
  callTimeoutMs?: number;
}

export type FatalListener = (err: Error, supervisor: SupervisorRef) => void;

export interface ActorSystem {
  readonly name: string;
  readonly logger: Logger;
  spawn<M, R>(behavior: Behavior<M, R>, opts?: SpawnOptions): ActorRef<M, R>;
  /** Starts a supervision tree; resolves once every child's init has completed, rejects with ChildStartError otherwise. */
  supervise(spec: SupervisorSpec, opts?: { name?: string }): Promise<SupervisorRef>;
  /** The live actor registered under `name` (supervisors: see whereisSupervisor). */
  whereis<M = any, R = any>(name: string): ActorRef<M, R> | undefined;
  whereisSupervisor(name: string): SupervisorRef | undefined;
  /** Names currently registered. */
  registered(): string[];
  /** Stops every top-level actor and supervision tree, most recently started first. Idempotent. */
  shutdown(): Promise<void>;
  /** 'fatal': a root supervisor gave up (its error is a SupervisorGaveUpError). */
  on(event: 'fatal', listener: FatalListener): this;
  off(event: 'fatal', listener: FatalListener): this;
}
