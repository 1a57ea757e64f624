import { PartitaError } from '@partita/core';

/**
 * An activation gave up: the workflow nodes never answered three roll calls in a row with the same
 * non-empty set, or some of them did not acknowledge the `nocache` notice, in every round. The active
 * version did not change.
 */
export class QuorumNotReachedError extends PartitaError {
  readonly app: string;
  readonly version: string;
  readonly attempts: number;
  /** Nodes that answered each roll call of the last round, in order. */
  readonly counts: number[];
  constructor(app: string, version: string, attempts: number, counts: number[], why: string) {
    super(
      'QUORUM_NOT_REACHED',
      `activating version "${version}" of workflow app "${app}" failed after ${attempts} rounds: ${why}` +
        ` (last roll-call counts ${counts.length ? counts.join(', ') : 'none'}). The active version is unchanged. Check that` +
        ' every node runs the workflows plugin and reaches NATS (`partita status`), then activate again; on a busy or' +
        ' flapping cluster give a larger delayMs or more retries',
    );
    this.app = app;
    this.version = version;
    this.attempts = attempts;
    this.counts = counts;
  }
}

/** Another activator is switching the same app right now; two at once would race each other's flip. */
export class ActivationInProgressError extends PartitaError {
  readonly app: string;
  readonly version: string;
  constructor(app: string, version: string, running: string) {
    super(
      'ACTIVATION_IN_PROGRESS',
      `workflow app "${app}" is being activated to version "${running}" by another process; wait until that ends` +
        ` (a few seconds) and activate "${version}" again if it is still wanted`,
    );
    this.app = app;
    this.version = version;
  }
}
