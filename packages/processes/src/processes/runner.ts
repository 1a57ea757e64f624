/**
 * The processes on one node: for each, a timer that wakes at the next slot boundary (multiples of
 * the stored schedule since the epoch) plus jitter, first after initialWaitMs, and tries to claim a
 * run. All nodes try; the claim is one fenced UPDATE, so one wins. Between slots a node looks again
 * when an unfinished run's lease runs out (its owner died: the run is resumed from its saved
 * progress) and when a trigger or an admin change is announced on the bus.
 */
import { randomUUID } from 'node:crypto';
import { describeError, type Logger } from '@partita/core';
import type { Bus } from '@partita/nats';
import type { ResolvedProcess } from './define.js';
import { msToNextSlot } from './define.js';
import { ProcessRun, type RunOutcome } from './run.js';
import type { ProcessStore } from './store.js';

/** What admin changes announce: { process, what }. */
export interface ProcessAnnouncement {
  process: string;
  what: 'changed' | 'trigger' | 'pause' | 'resume';
}

export const ANNOUNCE_KIND = 'process.announce';
export const announceSubject = (cluster: string) => `partita.${cluster}.process.announce`;

/** What the owner of a run says when it starts and when it ends (a dashboard's page refreshes on it). */
export interface ProcessRunEvent {
  process: string;
  runNo: number;
  phase: 'started' | 'ended';
  outcome?: RunOutcome;
}

export const RUN_EVENT_KIND = 'process.run';
export const runEventSubject = (cluster: string) => `partita.${cluster}.process.run`;
/** Every process subject of a cluster: the announcements and the run events. */
export const processPattern = (cluster: string) => `partita.${cluster}.process.*`;

interface Slot {
  def: ResolvedProcess<any, any>;
  timer?: NodeJS.Timeout;
  run?: ProcessRun;
  running?: Promise<void>;
  waking?: boolean;
}

export interface RunnerOptions {
  store: ProcessStore;
  bus: Bus | undefined;
  nodeId: string;
  logger: Logger;
  processes: readonly ResolvedProcess<any, any>[];
  /** Called after each run with its outcome (tests and metrics). */
  onRunEnd?: (process: string, outcome: RunOutcome) => void;
  /** What the node's Prometheus metrics count (metrics.ts). */
  observer?: RunObserver;
}

/** Hooks for metrics: a run claimed and ended on this node, and each error added to a run. */
export interface RunObserver {
  owned(process: string, owning: boolean): void;
  runEnded(process: string, outcome: RunOutcome, durationMs: number): void;
  errorAdded(process: string): void;
}

export class ProcessRunner {
  /** The owner written on claims: the node id, made unique per start so a restarted node is a new owner. */
  readonly owner: string;
  private readonly slots = new Map<string, Slot>();
  private unsubscribe: (() => Promise<void>) | undefined;
  private stopped = false;

  constructor(private readonly options: RunnerOptions) {
    this.owner = `${options.nodeId}/${randomUUID().slice(0, 8)}`;
    for (const def of options.processes) this.slots.set(def.name, { def });
  }

  async start(): Promise<void> {
    const { store, bus, logger } = this.options;
    for (const { def } of this.slots.values()) await store.define(def.name, def.scheduleMs, def.settings);
    if (bus) {
      this.unsubscribe = await bus.subscribe<ProcessAnnouncement>(
        announceSubject(bus.cluster),
        (data) => {
          if (typeof data?.process !== 'string' || typeof data.what !== 'string') {
            logger.warn({ data }, 'dropped a malformed process announcement');
            return;
          }
          this.announced(data);
        },
        { kinds: [ANNOUNCE_KIND] },
      );
    }
    for (const slot of this.slots.values()) {
      // A run left unfinished (its owner died) or a trigger waiting is looked at before initialWaitMs.
      const peek = await store.peek(slot.def.name);
      let first = slot.def.initialWaitMs;
      if (peek?.unfinished && peek.leaseExpiresAt)
        first = Math.min(first, Math.max(0, peek.leaseExpiresAt.getTime() - peek.dbNow.getTime()) + 20);
      if (peek?.triggered && !peek.unfinished) first = Math.min(first, Math.random() * 200);
      this.arm(slot, first);
    }
    if (this.slots.size) logger.info({ processes: [...this.slots.keys()], owner: this.owner }, 'background processes scheduled');
  }

  /** The run under way on this node, if any (tests, HTTP). */
  runOf(name: string): ProcessRun | undefined {
    return this.slots.get(name)?.run;
  }

  private announced(a: ProcessAnnouncement): void {
    const slot = this.slots.get(a.process);
    if (!slot || this.stopped) return;
    if (slot.run) {
      if (a.what === 'changed' || a.what === 'pause') slot.run.requestMerge();
      return;
    }
    if (a.what === 'trigger' || a.what === 'resume') this.arm(slot, Math.random() * 50);
  }

  private arm(slot: Slot, delayMs: number): void {
    if (this.stopped) return;
    clearTimeout(slot.timer);
    slot.timer = setTimeout(() => void this.wake(slot), Math.max(0, delayMs));
    slot.timer.unref();
  }

  private async wake(slot: Slot): Promise<void> {
    if (this.stopped || slot.run || slot.waking) return;
    slot.waking = true;
    const { store, logger } = this.options;
    const { def } = slot;
    try {
      const claim = await store.claim(def.name, this.owner, def.leaseMs);
      if (claim) {
        const run = new ProcessRun(store, def, this.owner, claim, logger.child({ process: def.name, epoch: claim.epoch }), {
          errorAdded: () => this.options.observer?.errorAdded(def.name),
        });
        slot.run = run;
        this.options.observer?.owned(def.name, true);
        logger.info({ process: def.name, run: claim.runNo, epoch: claim.epoch, resumed: claim.resumed }, 'background process run started');
        this.publishRun({ process: def.name, runNo: claim.runNo, phase: 'started' });
        slot.running = this.execute(slot, run);
        return;
      }
      await this.armNext(slot);
    } catch (err) {
      logger.warn(
        { process: def.name, err: describeError(err).message },
        'claiming a background process run failed; trying at the next slot',
      );
      this.arm(slot, Math.min(def.scheduleMs, 10_000));
    } finally {
      slot.waking = false;
    }
  }

  private async execute(slot: Slot, run: ProcessRun): Promise<void> {
    const { logger, observer } = this.options;
    const began = performance.now();
    let outcome: RunOutcome;
    try {
      outcome = await run.execute();
    } catch (err) {
      outcome = 'incomplete';
      logger.error({ process: slot.def.name, err: describeError(err).message }, 'a background process run failed to save its end');
    }
    slot.run = undefined;
    observer?.owned(slot.def.name, false);
    observer?.runEnded(slot.def.name, outcome, performance.now() - began);
    const level = outcome === 'completed' || outcome === 'released' ? 'info' : 'warn';
    logger[level](
      { process: slot.def.name, run: run.state.run.runNo, outcome, stats: run.state.run.stats },
      `background process run ${outcome}`,
    );
    this.publishRun({ process: slot.def.name, runNo: run.state.run.runNo, phase: 'ended', outcome });
    this.options.onRunEnd?.(slot.def.name, outcome);
    if (!this.stopped) await this.armNext(slot).catch(() => this.arm(slot, slot.def.scheduleMs));
  }

  private publishRun(event: ProcessRunEvent): void {
    const { bus, logger } = this.options;
    try {
      bus?.publish(runEventSubject(bus.cluster), RUN_EVENT_KIND, event);
    } catch (err) {
      logger.warn({ process: event.process, err: describeError(err).message }, 'the run event was not published');
    }
  }

  /** Next look: the next slot plus jitter, or sooner when an unfinished run's lease runs out or a trigger waits. */
  private async armNext(slot: Slot): Promise<void> {
    const { def } = slot;
    const peek = await this.options.store.peek(def.name);
    const scheduleMs = peek?.scheduleMs ?? def.scheduleMs;
    const now = peek?.dbNow.getTime() ?? Date.now();
    let delay = msToNextSlot(now, scheduleMs) + Math.random() * def.jitterMs;
    if (peek?.unfinished && peek.leaseExpiresAt) delay = Math.min(delay, peek.leaseExpiresAt.getTime() - now + 20 + Math.random() * 200);
    if (peek?.triggered && !peek.unfinished) delay = Math.min(delay, 200 + Math.random() * 200);
    this.arm(slot, delay);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const slot of this.slots.values()) {
      clearTimeout(slot.timer);
      slot.run?.stop();
    }
    await Promise.all([...this.slots.values()].map((s) => s.running?.catch(() => undefined)));
    await this.unsubscribe?.().catch(() => undefined);
  }
}
