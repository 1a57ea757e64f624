/** Retry backoff shared by claims and flushes: doubles from 100 ms up to 5 s. */
export const BACKOFF_MIN_MS = 100;
export const BACKOFF_MAX_MS = 5000;
export function nextBackoff(previousMs: number): number {
  return Math.min(BACKOFF_MAX_MS, Math.max(BACKOFF_MIN_MS, previousMs * 2));
}
