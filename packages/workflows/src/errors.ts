import { PartitaError } from '@partita/core';

/** One problem in an app definition, located in the file the user wrote. */
export interface WorkflowIssue {
  /** Path of the YAML file (as resolved), or `<inline>` for a YAML string. */
  file: string;
  /** 1-based line of the key the problem is about (or of its nearest enclosing key in the file). */
  line: number;
  /** Key path inside that file, e.g. `activities.score.topic`. */
  key: string;
  message: string;
  /** What to do about it. */
  hint?: string;
}

export function formatIssue(i: WorkflowIssue): string {
  return `${i.file}:${i.line}:${i.key || '(root)'}: ${i.message}${i.hint ? ` (${i.hint})` : ''}`;
}

/**
 * An app definition that cannot be deployed. Every problem found is listed, not only the first, so
 * a user fixes the whole file in one pass.
 */
export class WorkflowDefinitionError extends PartitaError {
  readonly issues: WorkflowIssue[];
  constructor(issues: WorkflowIssue[]) {
    super(
      'WORKFLOW_DEFINITION',
      `invalid workflow app (${issues.length} problem${issues.length === 1 ? '' : 's'}); fix these and deploy again:\n  ${issues.map(formatIssue).join('\n  ')}`,
    );
    this.issues = issues;
  }
}

/**
 * A mapping or `@pipe` failed while being evaluated (a function threw, e.g. `json.parse` of a
 * non-JSON string). Carries the function so the message points at the row to fix.
 */
export class MappingEvaluationError extends PartitaError {
  readonly fn: string | undefined;
  constructor(message: string, fn?: string, options?: { cause?: unknown }) {
    super('MAPPING_EVALUATION', fn ? `@pipe function ${fn}: ${message}` : message, options);
    this.fn = fn;
  }
}

/** `pub` to a topic that no graph of the app's active version subscribes to. */
export class UnknownTopicError extends PartitaError {
  readonly topic: string;
  constructor(app: string, topic: string, known: readonly string[], version?: string) {
    super(
      'UNKNOWN_TOPIC',
      version === undefined
        ? `app ${app} has no active version, so nothing subscribes to ${topic}; deploy it and call activate(version) first`
        : `no graph of app ${app} version ${version} subscribes to ${topic}${known.length ? ` (topics: ${known.join(', ')})` : ''}; check the topic or activate the version that has it`,
    );
    this.topic = topic;
  }
}

/** The same app id and version deployed again with other content. */
export class VersionConflictError extends PartitaError {
  constructor(app: string, version: string) {
    super(
      'VERSION_CONFLICT',
      `app ${app} version ${version} is already deployed with other content; deployed versions are immutable (running workflows are pinned to them): give the app a new version`,
    );
  }
}

/** pub() with the id of a workflow that exists (running, or finished and not yet expired). */
export class DuplicateWorkflowError extends PartitaError {
  constructor(id: string) {
    super('DUPLICATE_WORKFLOW', `a workflow with id ${id} already exists; pub it with another id, or none to get a fresh one`);
  }
}

/** A workflow id (or app version) the store does not have. */
export class WorkflowNotFoundError extends PartitaError {
  constructor(what: string) {
    super('WORKFLOW_NOT_FOUND', `${what} was not found; check the id (finished workflows are removed after their graph's expire)`);
  }
}

/** A workflow ended because one of its steps failed for good or it was interrupted. */
export class WorkflowFailedError extends PartitaError {
  readonly id: string;
  readonly status: number;
  readonly output: unknown;
  constructor(id: string, status: number, output: unknown) {
    super(
      'WORKFLOW_FAILED',
      status === INTERRUPTED
        ? `workflow ${id} was interrupted${isReason(output) ? `: ${output.reason}` : ''}`
        : `workflow ${id} failed: ${JSON.stringify(output)}; see export(id) for the activity that failed`,
    );
    this.id = id;
    this.status = status;
    this.output = output;
  }
}

/** `pub` with `pending`: stored, its trigger held until `resume(id)`. */
export const PENDING = -1;
export const INTERRUPTED = -1_000_000_000;
/** A step failed for good (its job exhausted its attempts): the workflow stops there. */
export const FAILED = -1_000_000_001;

function isReason(v: unknown): v is { reason: string } {
  return typeof v === 'object' && v !== null && typeof (v as { reason?: unknown }).reason === 'string';
}

/**
 * An `await` with `items` (a fan-out) whose mapping did not give an array at run time: the activity
 * fails with it (its record's error and the workflow's failed output carry `{ name, code, message }`).
 */
export class FanOutItemsError extends PartitaError {
  constructor(graph: string, activity: string, got: string) {
    super(
      'FANOUT_ITEMS',
      `await ${activity} of graph ${graph}: items gave ${got}, not an array; map items to an array (an empty one starts no child)`,
    );
  }
}

/** The stored form of a FanOutItemsError (activity errors are JSON). */
export function fanOutItemsError(graph: string, act: { id: string }, got: unknown): { name: string; code: string; message: string } {
  const kind = got === null ? 'null' : got === undefined ? 'nothing (undefined)' : `a ${typeof got} ${JSON.stringify(got).slice(0, 80)}`;
  const err = new FanOutItemsError(graph, act.id, kind);
  return { name: err.name, code: err.code, message: err.message };
}
