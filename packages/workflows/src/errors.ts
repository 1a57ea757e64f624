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
