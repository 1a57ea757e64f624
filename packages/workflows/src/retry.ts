/**
 * A worker activity's `retry: { maximumAttempts, backoffCoefficient, maximumInterval }`.
 *
 * With only `maximumAttempts`, the step's job retries itself: maxAttempts is the activity's, the
 * delays are the job definition's backoff. With a `backoffCoefficient` or `maximumInterval`, the
 * executor owns the retries, so the delays follow the activity (HotMesh's rule: after attempt n,
 * wait min(coefficient^n, maximumInterval) seconds) whatever job type it runs: each attempt is a job
 * of one attempt, and a failed one's transition enqueues the next, scheduled after the delay, in the
 * transaction that records the failure (exactly once, like any transition).
 */
import type { RetryPolicy } from './model.js';

/** HotMesh's defaults for the settings an activity's `retry` leaves out. */
export const RETRY_DEFAULTS = { maximumAttempts: 3, backoffCoefficient: 10, maximumInterval: 120 } as const;

/** Does the executor retry this activity's step (rather than the job its own way)? */
export function executorRetries(retry: RetryPolicy | undefined): boolean {
  return retry?.backoffCoefficient !== undefined || retry?.maximumInterval !== undefined;
}

/** The step job's maxAttempts: one when the executor retries, else the activity's maximumAttempts, if any. */
export function stepAttempts(retry: RetryPolicy | undefined): { maxAttempts?: number } {
  if (executorRetries(retry)) return { maxAttempts: 1 };
  return retry?.maximumAttempts ? { maxAttempts: retry.maximumAttempts } : {};
}

/** Ms to wait after attempt `attempt` (1-based) failed, by the activity's settings. */
export function retryDelayMs(retry: RetryPolicy, attempt: number): number {
  const coefficient = retry.backoffCoefficient ?? RETRY_DEFAULTS.backoffCoefficient;
  const cap = retry.maximumInterval ?? RETRY_DEFAULTS.maximumInterval;
  return Math.round(Math.min(coefficient ** Math.max(1, attempt), cap) * 1000);
}

/** Does another attempt follow attempt `attempt` (1-based, counted over the activity's jobs)? */
export function attemptsRemain(retry: RetryPolicy, attempt: number): boolean {
  return attempt < (retry.maximumAttempts ?? RETRY_DEFAULTS.maximumAttempts);
}
