/**
 * Exit codes and how errors map to them. Documented in `partita --help`; scripts rely on them.
 */
import { describeError } from '@partita/core';

export const EXIT = {
  /** Done as asked. */
  OK: 0,
  /** Something failed at run time (Postgres unreachable, a bug, …). */
  ERROR: 1,
  /** Wrong command line, invalid config file, invalid job options. */
  USAGE: 2,
  /** No such job. */
  NOT_FOUND: 3,
  /** The job failed or was cancelled (status, status --wait). */
  JOB_UNSUCCESSFUL: 4,
  /** Conflict: the queue key is held by another job, or the job already finished (cancel). */
  CONFLICT: 5,
  /** Stopped at once by a second SIGINT / SIGTERM. */
  SIGINT: 130,
  SIGTERM: 143,
} as const;

export const EXIT_CODES_HELP = `Exit codes:
  0    ok
  1    runtime error (e.g. Postgres unreachable)
  2    usage or configuration error (bad arguments, invalid config file, invalid job options,
       an app YAML with problems, a topic no active graph subscribes to)
  3    not found (no job, schedule, workflow or app version with that id)
  4    the job failed or was cancelled (status, status --wait); the workflow failed or was interrupted (pub --wait)
  5    conflict (queue key held by another job; cancel of a job that already finished; an app version
       deployed again with other content)
  130  stopped at once by a second Ctrl-C (SIGINT); 143 by a second SIGTERM`;

/** A wrong command line. */
export class UsageError extends Error {
  readonly code = 'USAGE';
  constructor(
    message: string,
    /** The command whose help to point at. */
    readonly command?: string,
  ) {
    super(message);
    this.name = 'UsageError';
  }
}

/** A job id that names no job. */
export class NotFoundError extends Error {
  readonly code = 'NOT_FOUND';
  constructor(message: string) {
    super(message);
    this.name = 'NotFoundError';
  }
}

/** An error whose exit code is given. */
export class ExitError extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
    readonly code = 'ERROR',
  ) {
    super(message);
    this.name = 'ExitError';
  }
}

/** A client method this version of @partita/client does not have yet. */
export class NotAvailableError extends Error {
  readonly code = 'NOT_AVAILABLE';
  constructor(what: string) {
    super(
      `${what} is not available in this version of Partita (@partita/client has no such method); upgrade @partita/client and @partita/runtime`,
    );
    this.name = 'NotAvailableError';
  }
}

const USAGE_CODES = new Set([
  'USAGE',
  'CONFIG',
  'VALIDATION',
  'UNKNOWN_PARTITION',
  'UNKNOWN_QUEUE',
  'UNKNOWN_JOB_TYPE',
  'WORKFLOW_DEFINITION',
  'UNKNOWN_TOPIC',
]);
const NOT_FOUND_CODES = new Set(['NOT_FOUND', 'JOB_NOT_FOUND', 'UNKNOWN_SCHEDULE', 'UNKNOWN_PROCESS', 'WORKFLOW_NOT_FOUND']);
const UNSUCCESSFUL_CODES = new Set(['JOB_FAILED', 'JOB_CANCELLED', 'WORKFLOW_FAILED']);
const CONFLICT_CODES = new Set(['DUPLICATE_QUEUE_KEY', 'CONFLICT', 'VERSION_CONFLICT']);

/** The exit code an error means. Matched on `code` (Partita errors carry one), not instanceof. */
export function exitCodeOf(err: unknown): number {
  if (err instanceof ExitError) return err.exitCode;
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string') {
    if (USAGE_CODES.has(code)) return EXIT.USAGE;
    if (NOT_FOUND_CODES.has(code)) return EXIT.NOT_FOUND;
    if (UNSUCCESSFUL_CODES.has(code)) return EXIT.JOB_UNSUCCESSFUL;
    if (CONFLICT_CODES.has(code)) return EXIT.CONFLICT;
  }
  return EXIT.ERROR;
}

/** A one-paragraph message for people: connection errors get a hint, stacks stay out. */
export function messageOf(err: unknown): string {
  const d = describeError(err);
  const code = (err as { code?: unknown })?.code;
  if ((code === 'ECONNREFUSED' || /ECONNREFUSED/.test(d.message)) && !/PostgreSQL running/.test(d.message)) {
    return `${d.message}: nothing accepts connections there; is PostgreSQL running and is the URL right?`;
  }
  if (code === '3D000') return `${d.message}; create the database or fix the URL`;
  if (code === '28P01' || code === '28000') return `${d.message}; check the user and password in the URL`;
  if (err instanceof AggregateError && err.errors.length > 0) return messageOf(err.errors[0]);
  return d.message || d.name;
}

export function codeOf(err: unknown): string {
  const code = (err as { code?: unknown })?.code;
  return typeof code === 'string' ? code : 'ERROR';
}
