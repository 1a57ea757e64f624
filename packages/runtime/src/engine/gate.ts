/**
 * What stops the engine from taking jobs, apart from a drain: the partition's pauses and throttles
 * (unknown until loaded: a restart must not run a paused queue), and leases that are not being
 * renewed (every job taken then would be rescued elsewhere). Pure bookkeeping, fed the time.
 */
import type { ControlState } from '../global/global.js';
import { effectiveControl, stoppedQueues } from '../quorum.js';

export class ClaimGate {
  /** Queues paused, or stopped by a throttle of -1, or held on this node (node.stopQueues). */
  paused = new Set<string>();
  /** Of these, the ones the cluster-wide controls pause or stop. */
  controlPaused = new Set<string>();
  /** Queues this node alone has stopped running (node.stopQueues) until node.startQueues. */
  readonly held = new Set<string>();
  /** Ms to wait before each claim; -1: no queue claims. */
  throttleMs = 0;
  /** Of the paused queues, those a throttle of -1 stops. */
  stopped: string[] = [];
  /** The partition's pause/throttle state has been read. */
  controlKnown = false;
  private lastRenewalAt: number;
  private heartbeatFailing = false;
  /** Leases last renewed longer ago than this are going stale: two missed beats and a second. */
  private readonly renewalStaleMs: number;

  constructor(heartbeatMs: number, now: number) {
    this.renewalStaleMs = 2 * heartbeatMs + 1000;
    this.lastRenewalAt = now;
  }

  /** No claim at all: the controls are unknown, or a throttle stops every queue. */
  get claimsStopped(): boolean {
    return this.throttleMs < 0 || !this.controlKnown;
  }

  /**
   * A new control state for this node's `queues`. Returns whether claims were stopped before
   * (then claiming resumes at once).
   */
  control(state: ControlState, nodeId: string, queues: readonly string[]): { wasStopped: boolean } {
    const wasStopped = this.claimsStopped;
    this.controlKnown = true;
    const control = effectiveControl(state, nodeId, queues);
    this.stopped = stoppedQueues(state, nodeId, queues);
    this.controlPaused = new Set(control.paused);
    this.paused = new Set([...this.controlPaused, ...this.held]);
    this.throttleMs = control.throttleMs;
    return { wasStopped };
  }

  /** This node stops (true) or starts again (false) running these queues, whatever the controls say. */
  hold(queues: Iterable<string>, held: boolean): void {
    for (const q of queues)
      if (held) this.held.add(q);
      else this.held.delete(q);
    this.paused = new Set([...this.controlPaused, ...this.held]);
  }

  /**
   * Whether leases are being renewed: 'went-stale' the first time they are found failing or
   * overdue (say so once), then 'stale' until a renewal lands.
   */
  leases(now: number): 'renewing' | 'stale' | 'went-stale' {
    if (!this.heartbeatFailing && now - this.lastRenewalAt <= this.renewalStaleMs) return 'renewing';
    if (this.heartbeatFailing) return 'stale';
    this.heartbeatFailing = true;
    return 'went-stale';
  }

  /** How long since the last renewal, for the log. */
  sinceRenewal(now: number): number {
    return now - this.lastRenewalAt;
  }

  /** A renewal round failed: true when it is the first since leases were last renewed. */
  renewalFailed(): boolean {
    const first = !this.heartbeatFailing;
    this.heartbeatFailing = true;
    return first;
  }

  /** Leases were renewed: true when claims had stopped for failing renewals and resume now. */
  renewed(now: number): boolean {
    this.lastRenewalAt = now;
    const resumed = this.heartbeatFailing;
    this.heartbeatFailing = false;
    return resumed;
  }
}
