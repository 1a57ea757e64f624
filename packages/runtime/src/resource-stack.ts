import { describeError, type Logger } from '@partita/core';

interface Step {
  name: string;
  release: () => unknown;
}

/**
 * What a node holds, in the order it took it: start-up pushes each resource as it is acquired, and
 * one unwind (a failed start or a stop) releases them in reverse. A release that fails is logged and
 * remembered, and the rest still run, so one broken close never leaks what lies under it.
 */
export class AsyncResourceStack {
  private readonly steps: Step[] = [];
  private unwinding: Promise<void> | undefined;
  private readonly logger: Logger | undefined;

  constructor(options: { logger?: Logger } = {}) {
    this.logger = options.logger;
  }

  /** Pushes a resource already acquired, with how to release it; returns the resource. */
  use<T>(name: string, resource: T, release: (resource: T) => unknown): T {
    this.push(name, () => release(resource));
    return resource;
  }

  /** Pushes a release that is not tied to one value (leave a table, flip a flag). */
  defer(name: string, release: () => unknown): void {
    this.push(name, release);
  }

  /** How many releases are waiting. */
  get size(): number {
    return this.steps.length;
  }

  /** The names of the waiting releases, in the order they will run. */
  pending(): string[] {
    return this.steps.map((s) => s.name).reverse();
  }

  /**
   * Releases everything, last acquired first. Every release runs even when an earlier one fails;
   * the failures are thrown together afterwards (the one error itself when there is only one).
   * Calling it again returns the same promise.
   */
  unwind(): Promise<void> {
    this.unwinding ??= this.run();
    return this.unwinding;
  }

  private push(name: string, release: () => unknown): void {
    if (this.unwinding) throw new Error(`cannot add "${name}" to a resource stack that is already unwinding; release it yourself`);
    if (typeof release !== 'function') throw new TypeError(`the release of "${name}" must be a function`);
    this.steps.push({ name, release });
  }

  private async run(): Promise<void> {
    const errors: Error[] = [];
    for (let step = this.steps.pop(); step; step = this.steps.pop()) {
      const started = Date.now();
      try {
        await step.release();
        this.logger?.debug({ resource: step.name, ms: Date.now() - started }, 'released');
      } catch (err) {
        const error = err instanceof Error ? err : new Error(String(err));
        errors.push(Object.assign(error, { resource: step.name }));
        this.logger?.warn({ resource: step.name, err: describeError(err).message }, 'release failed; releasing the rest anyway');
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1)
      throw new AggregateError(
        errors,
        `${errors.length} releases failed: ${errors.map((e) => `${(e as Error & { resource: string }).resource} (${e.message})`).join('; ')}`,
      );
  }
}
