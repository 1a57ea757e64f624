/**
 * startNode's `handleSignals`: SIGTERM/SIGINT stop the node gracefully, a second one exits at once.
 * Installed before the node starts, so a signal during startup (an initdb, a slow Postgres) is not
 * lost: the node stops as soon as it is up.
 */
import { describeError, type Logger } from '@partita/core';

export interface SignalHandling {
  /** Grace for running jobs when a signal stops the node (default engine.shutdownGraceMs). */
  graceMs?: number;
  /** Called when a signal starts the graceful stop; `stopped` settles when the node has stopped. */
  onStop?(event: { signal: NodeJS.Signals; stopped: Promise<void> }): void;
  /**
   * After the graceful stop, end the process (default true; exit code 0, or process.exitCode when set,
   * 1 when the stop failed), unless the program has a listener of its own for that signal: then it
   * decides. false: the caller ends the process.
   */
  exit?: boolean;
}

const SIGNALS = ['SIGTERM', 'SIGINT'] as const;
/** The shell's convention: 128 + signal number. */
const EXIT_CODE: Record<(typeof SIGNALS)[number], number> = { SIGINT: 130, SIGTERM: 143 };

export interface StopSignals {
  /** Logs go here once the node has a logger. */
  setLogger(logger: Logger): void;
  /** The node is up: a signal now stops it (at once, if one came while it was starting). */
  attach(stop: (options: { graceMs?: number }) => Promise<void>): void;
  /** Removes the listeners (the node stopped, or never started). */
  detach(): void;
}

export function catchStopSignals(handling: SignalHandling): StopSignals {
  let logger: Logger | undefined;
  let stop: ((options: { graceMs?: number }) => Promise<void>) | undefined;
  let first: NodeJS.Signals | undefined;
  let stopping = false;

  const begin = (signal: NodeJS.Signals) => {
    if (stopping || !stop) return;
    stopping = true;
    if (!handling.onStop) logger?.info({ signal }, 'signal: stopping gracefully; send it again to exit at once');
    const stopped = stop(handling.graceMs === undefined ? {} : { graceMs: handling.graceMs });
    handling.onStop?.({ signal, stopped });
    stopped.then(
      () => {
        detach();
        // The program asked to be stopped: end it, as the signal would have, but having stopped cleanly
        // (exit 0, and through process.exit so that 'exit' hooks such as the logger's flush run). A
        // listener of the program's own for that signal decides instead.
        if (handling.exit !== false && process.listenerCount(signal) === 0) process.exit();
      },
      (err: unknown) => {
        logger?.error({ err: describeError(err) }, 'graceful stop failed');
        detach();
        if (handling.exit !== false) process.exit(1);
      },
    );
  };

  const onSignal = (signal: NodeJS.Signals) => {
    if (first === undefined) {
      first = signal;
      if (stop) begin(signal);
      else logger?.info({ signal }, 'signal while starting: the node stops as soon as it is up; send it again to exit at once');
      return;
    }
    logger?.warn({ signal }, 'second signal: exiting at once; running jobs will be rescued when their leases expire');
    // 'exit' listeners still run: an embedded PostgreSQL this process owns is told to stop.
    process.exit(EXIT_CODE[signal as (typeof SIGNALS)[number]] ?? 1);
  };
  const detach = () => {
    for (const s of SIGNALS) process.removeListener(s, onSignal);
  };
  for (const s of SIGNALS) process.on(s, onSignal);

  return {
    setLogger(l) {
      logger = l;
    },
    attach(fn) {
      stop = fn;
      if (first) begin(first);
    },
    detach,
  };
}
