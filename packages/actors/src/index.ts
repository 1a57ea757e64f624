/**
 * @partita/actors — actors with mailboxes, supervisors (one_for_one, one_for_all, rest_for_one) and a
 * name registry. No I/O and no dependencies; the runtime builds its Engine, Global and Workers on it.
 *
 * Decisions worth knowing (the tests pin each one down):
 * - Delivery is always asynchronous (a microtask), one message at a time in arrival order; an async
 *   handler holds the mailbox until it settles. Synchronous handlers run back to back, and the
 *   system yields to the event loop after 1000 messages or 5 ms, whichever comes first.
 * - `call` times out after the system's `callTimeoutMs` (default 5000) unless given `timeoutMs`
 *   (`Infinity` waits forever). A late reply is dropped (logged at debug).
 * - A crash (throw/rejection in init or handle) rejects the crashing call with ActorCrashedError, and
 *   every call still queued with ActorStoppedError: those messages were never handled, so they are
 *   safe to retry. Queued casts are dropped. A restarted child is a new actor with a new ref and an
 *   empty mailbox; nothing is carried over. Find it again with whereis(name) or supervisor.child(id).
 * - `stop()` lets the message in progress finish, rejects what is queued, then runs terminate; the
 *   whole stop is bounded by shutdownMs, after which the actor is abandoned with a warning.
 * - A registered name stays taken until its holder has fully stopped (terminate included), so a
 *   restarted child never overlaps its predecessor; whereis() returns only live actors.
 * - Only crashes are abnormal exits: `stop(reason)` with any reason is normal, so a transient child
 *   stopped that way is not restarted. Temporary and transient children that are not restarted are
 *   dropped from children(); terminateChild() drops the child too.
 */
export { createSystem } from './system.js';
export {
  ActorSystemError,
  TimeoutError,
  ActorCrashedError,
  ActorStoppedError,
  NameTakenError,
  SupervisorGaveUpError,
  ChildStartError,
  DuplicateChildError,
  InvalidSpecError,
  SystemStoppedError,
} from './errors.js';
export { noopLogger, type Logger, type LogFn } from './logger.js';
export { MicrotaskBatch } from './microtask-batch.js';
export { TurnBuffer } from './turn-buffer.js';
export type {
  ActorSystem,
  SystemOptions,
  SpawnOptions,
  Behavior,
  ActorContext,
  ActorRef,
  CallOptions,
  ActorExit,
  ExitListener,
  SupervisorSpec,
  ChildSpec,
  ChildInfo,
  SupervisorRef,
  RestartPolicy,
  Strategy,
  FatalListener,
} from './types.js';
