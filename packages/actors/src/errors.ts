/**
 * Named errors of the actor system. Each has a stable `code` (for logs, `--json` output and exit codes)
 * and a message that says what happened and what to do about it, because these surface in logs read
 * by people who did not write the code.
 *
 * They extend `Error` directly rather than a shared package base: @partita/actors depends on nothing,
 * and @partita/core re-exports `TimeoutError` from here so the project has exactly one such class.
 */

function describe(value: unknown): string {
  if (value instanceof Error) return value.message || value.name;
  if (typeof value === 'string') return value;
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** Base of every error thrown or rejected by @partita/actors, for a single `instanceof` check. */
export abstract class ActorSystemError extends Error {
  abstract readonly code: string;
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
  }
}

export class TimeoutError extends ActorSystemError {
  override readonly code = 'TIMEOUT' as const;
  readonly what: string;
  readonly timeoutMs: number;
  constructor(what: string, timeoutMs: number) {
    super(`${what} did not finish within ${timeoutMs} ms; raise timeoutMs or check that the other side is alive`);
    this.what = what;
    this.timeoutMs = timeoutMs;
  }
}

/** The handler (or init) crashed on the very message this caller sent; `cause` is what it threw. */
export class ActorCrashedError extends ActorSystemError {
  override readonly code = 'ACTOR_CRASHED' as const;
  readonly actor: string;
  constructor(actor: string, cause: unknown) {
    super(
      `actor "${actor}" crashed while handling this message: ${describe(cause)}; ` +
        'see `cause`; its supervisor (if any) restarts it with an empty mailbox, retry only if the message is safe to repeat',
      { cause },
    );
    this.actor = actor;
  }
}

/**
 * The actor (or supervisor) is not running, or stopped before it got to this message. The message
 * was never handled, so retrying against the live incarnation is safe.
 */
export class ActorStoppedError extends ActorSystemError {
  override readonly code = 'ACTOR_STOPPED' as const;
  readonly actor: string;
  /** Why it stopped: the `stop(reason)` reason, or what it crashed with. */
  readonly reason: unknown;
  constructor(actor: string, reason?: unknown, detail = 'is not running') {
    super(
      `"${actor}" ${detail}${reason !== undefined ? ` (reason: ${describe(reason)})` : ''}; ` +
        'the message was not handled — if it was restarted, get the new ref with whereis(name) or supervisor.children() and retry',
      reason instanceof Error ? { cause: reason } : undefined,
    );
    this.actor = actor;
    this.reason = reason;
  }
}

export class NameTakenError extends ActorSystemError {
  override readonly code = 'NAME_TAKEN' as const;
  readonly takenName: string;
  constructor(name: string) {
    super(
      `the name "${name}" is already registered to an actor or supervisor that has not finished stopping; ` +
        "pick another name, or await the holder's stop() before reusing it",
    );
    this.takenName = name;
  }
}

/** A supervisor saw more than `intensity` restarts within `periodMs` and stopped itself. */
export class SupervisorGaveUpError extends ActorSystemError {
  override readonly code = 'SUPERVISOR_GAVE_UP' as const;
  readonly supervisor: string;
  readonly childId: string;
  constructor(supervisor: string, intensity: number, periodMs: number, childId: string, cause: unknown) {
    super(
      `supervisor "${supervisor}" gave up: more than ${intensity} restart${intensity === 1 ? '' : 's'} within ${periodMs} ms ` +
        `(last: child "${childId}": ${describe(cause)}); fix what makes the child crash (see \`cause\`), ` +
        'or raise intensity/periodMs if such bursts are expected',
      { cause },
    );
    this.supervisor = supervisor;
    this.childId = childId;
  }
}

/** A child's `start()` threw, returned something unusable, or its `init` failed. */
export class ChildStartError extends ActorSystemError {
  override readonly code = 'CHILD_START_FAILED' as const;
  readonly supervisor: string;
  readonly childId: string;
  constructor(supervisor: string, childId: string, cause: unknown) {
    super(
      `child "${childId}" of supervisor "${supervisor}" failed to start: ${describe(cause)}; ` +
        'see `cause` — fix its start()/init, or make init tolerate what it depends on being unavailable',
      { cause },
    );
    this.supervisor = supervisor;
    this.childId = childId;
  }
}

export class DuplicateChildError extends ActorSystemError {
  override readonly code = 'DUPLICATE_CHILD' as const;
  readonly childId: string;
  constructor(supervisor: string, childId: string) {
    super(
      `supervisor "${supervisor}" already has a child with id "${childId}"; ` +
        'give each child a unique id, or terminateChild() the existing one first',
    );
    this.childId = childId;
  }
}

export class InvalidSpecError extends ActorSystemError {
  override readonly code = 'INVALID_SPEC' as const;
  constructor(message: string) {
    super(message);
  }
}

export class SystemStoppedError extends ActorSystemError {
  override readonly code = 'SYSTEM_STOPPED' as const;
  constructor(system: string) {
    super(`actor system "${system}" has been shut down; create a new system with createSystem() to start actors again`);
  }
}
