/**
 * One run of a background process on the node that claimed it. It walks a sorted snapshot of the
 * active items, then of the cleanup items, saving its state through progress(); a timer renews
 * its lease while a long item runs, so a slow item is not taken over at the next slot boundary.
 * Every write is fenced by owner and epoch: once a write or a renewal finds the run no longer owns
 * the process, the run stops and writes nothing more (`conflict`).
 */
import { describeError, type Logger } from '@partita/core';
import type { ErrorAction, ProcessContext, ProcessState, ProgressResult, ResolvedProcess, RunState, Work, WorkStatus } from './define.js';
import { addStat, aggregate, mergeWork, newRunStatus, newWorkStatus, recordError } from './state.js';
import type { ClaimedRun, ProcessStore } from './store.js';

export type RunOutcome = RunState | 'conflict' | 'released';

type Def = ResolvedProcess<any, any>;

export class ProcessRun {
  readonly state: ProcessState<any, any>;
  private readonly controller = new AbortController();
  private conflicted = false;
  private stopReason: 'paused' | 'shutdown' | undefined;
  private aborted = false;
  /** An addError answered 'abort': the run ends aborted after the current item, whatever the worker does next. */
  private budgetSpent = false;
  private ended = false;
  /**
   * performance.now() of the last save: progressMs is timed on the monotonic clock, so a wall clock
   * stepped back does not hold the saves back for as long (a take-over would redo more items).
   */
  private lastSavedAt = performance.now();
  private mergeRequested = false;
  private readonly dirty = new Set<string>();
  private writing: Promise<unknown> = Promise.resolve();
  private renewTimer: NodeJS.Timeout | undefined;
  private readonly ctx: ProcessContext<any, any>;

  constructor(
    private readonly store: ProcessStore,
    private readonly def: Def,
    owner: string,
    private readonly claim: ClaimedRun,
    private readonly logger: Logger,
    private readonly hooks: { errorAdded?: () => void } = {},
  ) {
    // A resumed run goes on from what its last owner saved (possibly nothing yet).
    const run = claim.resumed && claim.run ? { ...claim.run } : newRunStatus(claim.runNo, claim.startedAt);
    if (claim.resumed) run.resumes++;
    this.state = {
      name: def.name,
      owner,
      epoch: claim.epoch,
      settings: claim.settings,
      settingsVersion: claim.runSettingsVersion,
      scheduleMs: claim.scheduleMs,
      run,
      active: new Map(),
      cleanup: new Map(),
    };
    const self = this;
    this.ctx = {
      state: this.state,
      get settings() {
        return self.state.settings;
      },
      signal: this.controller.signal,
      logger,
      progress: () => this.progress(false),
      addError: (err, workName) => this.addError(err, workName),
      addStats: (count, name, workName) => this.addStats(count, name, workName),
    };
  }

  get epoch(): number {
    return this.state.epoch;
  }

  /** An admin change was announced: merge it at the next progress(), whatever progressMs says. */
  requestMerge(): void {
    this.mergeRequested = true;
  }

  /** The node stops: end the run after the current item, saved but unfinished (another node resumes it). */
  stop(): void {
    this.stopReason ??= 'shutdown';
    this.controller.abort(new Error('the node is stopping'));
  }

  async execute(): Promise<RunOutcome> {
    const { def, state } = this;
    const stored = await this.store.work(def.name, ['active', 'cleanup']);
    for (const w of stored) {
      const status = w.status && w.status.runNo === state.run.runNo ? w.status : undefined;
      if (w.list === 'active') state.active.set(w.name, { name: w.name, params: w.params, modifiedAt: w.modifiedAt.toISOString(), status });
      else state.cleanup.set(w.name, { since: w.listedAt.toISOString(), status });
    }
    // The admin changes between the claim and this read are in it; merged from here.
    if (this.claim.settingsVersion > state.settingsVersion) this.mergeRequested = true;
    this.renewTimer = setInterval(() => void this.renew(), Math.max(50, def.leaseMs / 3));
    this.renewTimer.unref();
    // Both snapshots now: what a merge adds or unregisters during the run waits for the next one.
    const activeSnapshot = [...state.active.keys()].sort();
    const cleanupSnapshot = [...state.cleanup.keys()].sort();
    try {
      await this.walkActive(activeSnapshot);
      if (!this.controller.signal.aborted) await this.walkCleanup(cleanupSnapshot);
      return await this.end();
    } finally {
      clearInterval(this.renewTimer);
    }
  }

  private async walkActive(snapshot: readonly string[]): Promise<void> {
    const { state, def } = this;
    for (const name of snapshot) {
      if (this.controller.signal.aborted) return;
      const work: Work | undefined = state.active.get(name);
      if (!work) continue; // unregistered during the run: it went to cleanup on merge
      if (work.status?.runNo === state.run.runNo && work.status.state === 'completed') continue; // done before a take-over
      work.status = work.status?.runNo === state.run.runNo ? { ...work.status, state: 'active' } : newWorkStatus(state.run.runNo);
      this.dirty.add(name);
      addStat(state.run.stats, 'workItems', 1);
      try {
        await def.processActiveWork(this.ctx, name, work);
        if (this.conflicted) return;
        this.dirty.add(name); // a save during the item cleared it
        const status = state.active.get(name)?.status ?? work.status;
        if (this.budgetSpent) {
          status.state = 'aborted';
          status.finishedAt = new Date().toISOString();
          addStat(state.run.stats, 'workItemsAborted', 1);
          this.abortRun();
          return;
        }
        status.state = 'completed';
        status.finishedAt = new Date().toISOString();
        addStat(state.run.stats, 'workItemsCompleted', 1);
      } catch (err) {
        if (this.conflicted) return;
        this.dirty.add(name);
        const status: WorkStatus = state.active.get(name)?.status ?? work.status;
        status.finishedAt = new Date().toISOString();
        if (this.controller.signal.aborted && this.stopReason) {
          status.state = 'incomplete';
          return;
        }
        const action = this.addError(err, name);
        if (action === 'abort') {
          status.state = 'aborted';
          addStat(state.run.stats, 'workItemsAborted', 1);
          this.abortRun();
          return;
        }
        status.state = 'incomplete';
        addStat(state.run.stats, 'workItemsIncomplete', 1);
      }
      if ((await this.progress(false)) === 'conflict') return;
    }
  }

  private async walkCleanup(snapshot: readonly string[]): Promise<void> {
    const { state, def } = this;
    for (const name of snapshot) {
      if (this.controller.signal.aborted) return;
      const item = state.cleanup.get(name);
      if (!item || item.status?.cleaned) continue;
      item.status = newWorkStatus(state.run.runNo);
      this.dirty.add(name);
      try {
        await def.cleanupWork(this.ctx, name);
        if (this.conflicted) return;
        this.dirty.add(name);
        if (this.budgetSpent) {
          item.status.state = 'aborted';
          this.abortRun();
          return;
        }
        item.status.cleaned = true;
        item.status.state = 'completed';
        addStat(state.run.stats, 'workItemsCleaned', 1);
      } catch (err) {
        if (this.conflicted) return;
        this.dirty.add(name);
        item.status.finishedAt = new Date().toISOString();
        if (def.isGone?.(err)) {
          item.status.cleaned = true;
          item.status.state = 'completed';
          addStat(state.run.stats, 'workItemsCleaned', 1);
        } else {
          addStat(state.run.stats, 'workItemsDirty', 1);
          item.status.state = 'incomplete';
          if (this.addError(err, name) === 'abort') {
            item.status.state = 'aborted';
            this.abortRun();
            return;
          }
        }
      }
      if ((await this.progress(false)) === 'conflict') return;
    }
  }

  private abortRun(): void {
    this.aborted = true;
    this.controller.abort(new Error(`the run of ${this.def.name} went over its error budget`));
  }

  addError(err: unknown, workName?: string): ErrorAction {
    const { state, def } = this;
    let over = recordError(state.run.errors, err) > def.maxErrorsPerRun;
    const item = workName === undefined ? undefined : (state.active.get(workName)?.status ?? state.cleanup.get(workName)?.status);
    if (item && workName !== undefined) {
      this.dirty.add(workName);
      if (recordError(item.errors, err) > def.maxErrorsPerItem) over = true;
    }
    this.logger.warn({ process: def.name, work: workName, err: describeError(err).message }, 'background process error');
    this.hooks.errorAdded?.();
    if (over) this.budgetSpent = true;
    return over ? 'abort' : 'continue';
  }

  addStats(count: number, name: string, workName?: string): void {
    const { state } = this;
    if (workName === undefined) {
      addStat(state.run.stats, name, count);
      return;
    }
    addStat(state.run.stats, `work.${name}`, count);
    const item = state.active.get(workName)?.status ?? state.cleanup.get(workName)?.status;
    if (item) {
      addStat(item.stats, name, count);
      this.dirty.add(workName);
    }
  }

  /** One write at a time: the worker's progress() and the run's own are serialised. */
  private serial<T>(fn: () => Promise<T>): Promise<T> {
    const next = this.writing.then(fn, fn);
    this.writing = next.catch(() => undefined);
    return next;
  }

  progress(force: boolean): Promise<ProgressResult> {
    if (this.conflicted) return Promise.resolve('conflict');
    if (this.ended) return Promise.resolve('none'); // a stray call after the run's end writes nothing
    if (!force && !this.mergeRequested && performance.now() - this.lastSavedAt < this.def.progressMs) return Promise.resolve('none');
    return this.serial(() => this.write('save'));
  }

  private loseOwnership(how: string): 'conflict' {
    if (!this.conflicted) {
      this.conflicted = true;
      this.logger.warn({ process: this.def.name, epoch: this.state.epoch }, `lost ownership of the run (${how}); it writes nothing more`);
      this.controller.abort(new Error(`the run of ${this.def.name} lost ownership to another node`));
    }
    return 'conflict';
  }

  private async renew(): Promise<void> {
    if (this.conflicted) return;
    try {
      const held = await this.store.renew(this.def.name, this.state.owner, this.state.epoch, this.def.leaseMs);
      if (!held) this.loseOwnership('lease renewal refused');
    } catch (err) {
      this.logger.warn({ process: this.def.name, err: describeError(err).message }, 'renewing the run lease failed; retrying');
    }
  }

  private statuses(): [string, WorkStatus | undefined][] {
    const out: [string, WorkStatus | undefined][] = [];
    for (const name of this.dirty) {
      const status = this.state.active.get(name)?.status ?? this.state.cleanup.get(name)?.status;
      if (status) out.push([name, status]);
    }
    return out;
  }

  /** A fenced write: save (progress), finish (end of run) or release (node stopping). */
  private async write(kind: 'save' | 'finish' | 'release', final?: RunState): Promise<ProgressResult> {
    if (this.conflicted) return 'conflict';
    const { store, state, def } = this;
    const wasMergeRequested = this.mergeRequested;
    this.mergeRequested = false;
    try {
      return await store.transaction(async (client) => {
        const row = await store.lock(client, def.name);
        if (!row || row.owner !== state.owner || row.epoch !== state.epoch) return this.loseOwnership('another node claimed it');
        let merged = false;
        if (row.settingsVersion > state.settingsVersion) {
          mergeWork(state, await store.work(def.name, ['active', 'cleanup'], client));
          state.settings = row.settings;
          state.scheduleMs = row.scheduleMs;
          state.settingsVersion = row.settingsVersion;
          merged = true;
        }
        if (row.paused && kind === 'save' && !this.stopReason) {
          this.stopReason = 'paused';
          this.controller.abort(new Error(`${def.name} was paused`));
        }
        state.run.progressAt = new Date().toISOString();
        await store.saveStatuses(client, def.name, this.statuses());
        if (kind === 'save') await store.save(client, def.name, state.owner, state.epoch, state.run, state.settingsVersion, def.leaseMs);
        else if (kind === 'release') await store.release(client, def.name, state.owner, state.epoch, state.run, state.settingsVersion);
        else {
          state.run.state = final!;
          state.run.finishedAt = state.run.progressAt;
          const cleaned = [...state.cleanup].filter(([, c]) => c.status?.cleaned).map(([n]) => n);
          // Both ends by the database's clock (the claim took startedAt from it), whatever this node's says.
          const total = aggregate(
            await store.aggregateOf(client, def.name),
            state.run,
            Math.max(0, row.dbNow.getTime() - new Date(state.run.startedAt).getTime()),
          );
          await store.finish(client, def.name, state.owner, state.epoch, state.run, state.settingsVersion, final!, total);
          await store.dropCleaned(client, def.name, cleaned);
          await store.pruneDropped(client, def.name, def.dropRetentionMs);
        }
        this.dirty.clear();
        this.lastSavedAt = performance.now();
        return merged ? 'merged' : 'updated';
      });
    } catch (err) {
      this.mergeRequested ||= wasMergeRequested;
      if (kind !== 'save') throw err;
      // A failed save is an error of the run (as in the Go code), and the state is saved next time.
      this.addError(new Error(`saving progress failed: ${describeError(err).message}`));
      return 'none';
    }
  }

  private async end(): Promise<RunOutcome> {
    this.ended = true;
    if (this.conflicted) return 'conflict';
    if (this.stopReason === 'shutdown') {
      await this.serial(() => this.write('release'));
      return this.conflicted ? 'conflict' : 'released';
    }
    const items = [...this.state.active.values()].map((w) => w.status?.state);
    const dirty = [...this.state.cleanup.values()].some((c) => c.status && !c.status.cleaned);
    const state: RunState = this.aborted
      ? 'aborted'
      : this.stopReason === 'paused' || dirty || items.includes('incomplete')
        ? 'incomplete'
        : 'completed';
    await this.serial(() => this.write('finish', state));
    return this.conflicted ? 'conflict' : state;
  }
}
