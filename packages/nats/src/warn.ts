import type { Logger } from '@partita/core';

/**
 * Logs a warning the first time something happens and then at most once per interval per key,
 * saying how many were suppressed meanwhile (those go to debug). A storm of garbage messages or
 * a long NATS outage must not flood the logs.
 */
export class WarnLimiter {
  private readonly seen = new Map<string, { at: number; suppressed: number }>();

  constructor(
    private readonly logger: Logger,
    private readonly intervalMs: number,
  ) {}

  /** `fields` may be a function: it is only called when something is actually logged. */
  warn(key: string, fields: Record<string, unknown> | (() => Record<string, unknown>), message: string): void {
    const get = typeof fields === 'function' ? fields : () => fields;
    const now = Date.now();
    const entry = this.seen.get(key);
    if (!entry) {
      if (this.seen.size > 1000) this.seen.clear(); // keys are bounded in practice; never leak
      this.seen.set(key, { at: now, suppressed: 0 });
      this.logger.warn(get(), message);
      return;
    }
    if (now - entry.at >= this.intervalMs) {
      const suppressed = entry.suppressed;
      entry.at = now;
      entry.suppressed = 0;
      this.logger.warn({ ...get(), suppressed }, suppressed > 0 ? `${message} (${suppressed} more since the last warning)` : message);
      return;
    }
    entry.suppressed++;
    if (this.logger.isLevelEnabled('debug')) this.logger.debug(get(), message);
  }
}
