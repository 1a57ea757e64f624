/**
 * What only layers built on the executor (src/flows) need; not exported from the package's index.
 */
import type { PubExtra, PubOptions, WorkflowApp } from './app.js';

export type { PubExtra } from './app.js';
export type { Queryable } from './db.js';
export { MIGRATIONS_DIR as WORKFLOWS_MIGRATIONS_DIR } from './db.js';

/** `pub`, with rows of the caller's own tables written in the pub's transaction (batched per group). */
export function pubWith(app: WorkflowApp, topic: string, data: unknown, opts: PubOptions, extra: PubExtra): Promise<string> {
  return app.pubWith(topic, data, opts, extra);
}
