/**
 * Named errors. Every message says what happened and what to do about it, because these
 * surface in CLI output and logs read by people who did not write the code.
 */
import { TimeoutError } from '@partita/actors';

/**
 * The one TimeoutError of the project lives in @partita/actors (which depends on nothing), so an
 * actor call's timeout and a client's are the same class whichever package it is imported from.
 */
export { TimeoutError };

export class PartitaError extends Error {
  /** Stable machine-readable code, e.g. for `--json` output and exit codes. */
  readonly code: string;
  constructor(code: string, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = new.target.name;
    this.code = code;
  }

  /**
   * TimeoutError cannot extend this class (it lives below core), yet it is a Partita error:
   * `err instanceof PartitaError` stays true for it. Subclasses keep the ordinary check.
   */
  static override [Symbol.hasInstance](value: unknown): boolean {
    return Function.prototype[Symbol.hasInstance].call(this, value) || (this === PartitaError && value instanceof TimeoutError);
  }
}

export class ValidationError extends PartitaError {
  /** Dotted path of the offending field, when there is one. */
  readonly path: string | undefined;
  constructor(message: string, path?: string) {
    super('VALIDATION', path ? `${path}: ${message}` : message);
    this.path = path;
  }
}

export class ConfigError extends PartitaError {
  readonly problems: ConfigProblem[];
  constructor(problems: ConfigProblem[]) {
    super('CONFIG', ConfigError.describe(problems));
    this.problems = problems;
  }
  static describe(problems: ConfigProblem[]): string {
    const lines = problems.map((p) => {
      const where = [p.file, p.line !== undefined ? String(p.line) : undefined].filter(Boolean).join(':');
      return `${where ? where + ': ' : ''}${p.path || '(root)'}: ${p.message}`;
    });
    return `invalid configuration (${problems.length} problem${problems.length === 1 ? '' : 's'}); fix these and start again:\n  ${lines.join('\n  ')}`;
  }
}
export interface ConfigProblem {
  file?: string;
  line?: number;
  /** Key path such as `partitions.billing.queues.default.concurrency`. */
  path: string;
  message: string;
}

export class UnknownPartitionError extends PartitaError {
  constructor(partition: string, known: string[] = []) {
    super(
      'UNKNOWN_PARTITION',
      `partition "${partition}" is not declared by any node of this cluster` +
        (known.length ? ` (known: ${known.join(', ')})` : '') +
        '; declare it under `partitions:` in the node config and start a node with it',
    );
  }
}

export class UnknownQueueError extends PartitaError {
  constructor(partition: string, queue: string, known: string[] = []) {
    super(
      'UNKNOWN_QUEUE',
      `queue "${queue}" is not declared in partition "${partition}"` +
        (known.length ? ` (known: ${known.join(', ')})` : '') +
        `; add it under partitions.${partition}.queues in the node config`,
    );
  }
}

export class UnknownJobTypeError extends PartitaError {
  readonly type: string;
  constructor(type: string, known: string[] = []) {
    super(
      'UNKNOWN_JOB_TYPE',
      `job type "${type}" is not defined by any node of this cluster` +
        (known.length ? ` (defined: ${known.slice(0, 20).join(', ')}${known.length > 20 ? ', …' : ''})` : '') +
        "; define it with defineJob(...) in a node's `jobs` and start that node, or, to enqueue it before " +
        'such a node starts (a rolling deploy), pass { allowUnknownType: true } (partita enqueue --allow-unknown-type)',
    );
    this.type = type;
  }
}

export class DuplicateQueueKeyError extends PartitaError {
  readonly queueKey: string;
  readonly heldBy: string | undefined;
  /** `refused`: what the key stopped, for the message (default: enqueuing another job with it). */
  constructor(queueKey: string, heldBy?: string, refused = 'enqueuing another with the same key') {
    super(
      'DUPLICATE_QUEUE_KEY',
      `queue key "${queueKey}" is already held${heldBy ? ` by job ${heldBy}` : ''}; ` +
        `wait for that job to finish or cancel it before ${refused}`,
    );
    this.queueKey = queueKey;
    this.heldBy = heldBy;
  }
}

export class JobFailedError extends PartitaError {
  readonly jobId: string;
  readonly errors: unknown[];
  constructor(jobId: string, errors: unknown[] = [], lastMessage?: string) {
    super('JOB_FAILED', `job ${jobId} failed${lastMessage ? `: ${lastMessage}` : ''}; see client.job(id).errors for every attempt`);
    this.jobId = jobId;
    this.errors = errors;
  }
}

/**
 * A job's result (or progress value) that cannot be stored as JSON: NaN, a BigInt, a Map, a
 * cycle, or a value Postgres refused. The attempt fails with it (and is retried like any failure),
 * so the bad value costs only its own job.
 */
export class UnstorableResultError extends PartitaError {
  /** Where in the value the problem is (`result.total`), when known. */
  readonly path: string | undefined;
  constructor(message: string, path?: string) {
    super('UNSTORABLE_RESULT', path ? `${path}: ${message}` : message);
    this.path = path;
  }
}

export class JobCancelledError extends PartitaError {
  readonly jobId: string;
  constructor(jobId: string) {
    super('JOB_CANCELLED', `job ${jobId} was cancelled and has no result`);
    this.jobId = jobId;
  }
}

export class StaleEpochError extends PartitaError {
  constructor(partition: string, epoch: number, current: number) {
    super(
      'STALE_EPOCH',
      `save for partition "${partition}" from lease epoch ${epoch} refused: epoch ${current} has taken over; ` +
        'this node lost the partition lease and must stop acting as its leader',
    );
  }
}

/**
 * A write made on behalf of a lease holder was fenced off: the lease ran out, was released or was
 * taken over (a higher epoch). The writer is no longer the leader and must stop acting as one.
 */
export class LeaseLostError extends PartitaError {
  readonly lease: string;
  readonly epoch: number;
  constructor(lease: string, epoch: number, current?: { holder: string; epoch: number }) {
    const now =
      current === undefined
        ? 'it was never taken'
        : current.epoch !== epoch
          ? `epoch ${current.epoch} (held by ${current.holder}) has taken over`
          : 'it had expired or was released';
    super(
      'LEASE_LOST',
      `write for lease "${lease}" at epoch ${epoch} refused: ${now}; this node no longer holds the lease and must ` +
        'stop acting as its leader (it takes part again when it wins the lease back)',
    );
    this.lease = lease;
    this.epoch = epoch;
  }
}

export class BusUnavailableError extends PartitaError {
  constructor(what: string, options?: { cause?: unknown }) {
    super(
      'BUS_UNAVAILABLE',
      `${what}: the message bus (NATS) is not connected; check that nats-server is reachable, jobs keep running meanwhile`,
      options,
    );
  }
}

export class NotLeaderError extends PartitaError {
  constructor(partition: string) {
    super(
      'NOT_LEADER',
      `this node does not hold the Global lease of partition "${partition}"; retry, the request will be routed to the current leader`,
    );
  }
}

export class PersisterError extends PartitaError {
  constructor(message: string, options?: { cause?: unknown }) {
    super('PERSISTER', message, options);
  }
}

/** Turns anything thrown into something with a message and a stack, for logs and job error records. */
export function describeError(err: unknown): { name: string; message: string; stack?: string; code?: string } {
  if (err instanceof Error) {
    const code = (err as { code?: unknown }).code;
    return {
      name: err.name,
      message: err.message,
      ...(err.stack ? { stack: err.stack } : {}),
      ...(typeof code === 'string' ? { code } : {}),
    };
  }
  return { name: 'NonError', message: typeof err === 'string' ? err : safeStringify(err) };
}

function safeStringify(value: unknown): string {
  try {
    return JSON.stringify(value) ?? String(value);
  } catch {
    return String(value);
  }
}

/** A node plugin that cannot join the node: a bad definition, a clash with another plugin, a failed migration or start. */
export class PluginError extends PartitaError {
  readonly plugin: string;
  constructor(plugin: string, message: string, options?: { cause?: unknown }) {
    super('PLUGIN', `plugin "${plugin}": ${message}`, options);
    this.plugin = plugin;
  }
}

/** Two HTTP routes claim the same method and path on one server. */
export class RouteConflictError extends PartitaError {
  readonly method: string;
  readonly path: string;
  constructor(method: string, path: string, owners: [string, string]) {
    super('ROUTE_CONFLICT', `${method} ${path} is mounted by both ${owners[0]} and ${owners[1]}; give one of them another path`);
    this.method = method;
    this.path = path;
  }
}
