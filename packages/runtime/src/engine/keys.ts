import { keyFromRule } from '@partita/core';
import type { ClaimedJob } from '@partita/postgres';
import type { ResolvedJobDefinition } from '../define.js';

/**
 * The execution key a job's definition derives from its payload: `key` when there is one,
 * `error` when the rule cannot be applied to this payload (the job then runs without a key).
 */
const NO_KEY: { key?: string; error?: unknown } = Object.freeze({});

export function deriveExecutionKey(
  job: Pick<ClaimedJob, 'type' | 'payload'>,
  def: ResolvedJobDefinition | undefined,
): { key?: string; error?: unknown } {
  if (!def?.executionKey) return NO_KEY;
  try {
    const key = keyFromRule(def.executionKey, job.payload, { type: job.type, which: 'executionKey' });
    return typeof key === 'string' && key.length > 0 ? { key } : NO_KEY;
  } catch (error) {
    return { error };
  }
}
