import type { ActorRef } from '@partita/actors';
import { describeError, type Logger } from '@partita/core';
import type { ControlRow, EngineStore, Notice } from '@partita/postgres';
import type { EngineMsg } from './engine/messages.js';
import type { SeatMsg } from './global/seat.js';

export interface NoticeRouterOptions {
  store: Pick<EngineStore, 'loadControl'>;
  partitions: readonly string[];
  engineOf(partition: string): ActorRef<EngineMsg, unknown> | undefined;
  seatOf(partition: string): ActorRef<SeatMsg, void> | undefined;
  /** Store this node's profile now (a heartbeat), for a roll call without the bus. */
  beat(): void;
  logger: Logger;
}

/**
 * Turns the Postgres notifications of processes without the bus into messages to this node's
 * actors. A pause must hold for a job enqueued after it. The claim makes sure of that itself (it
 * reads the control row in the statement that takes jobs, so a claim that sees the job sees the
 * pause, whatever this engine has heard); the router spares the engine the claim: the two
 * notifications arrive in that order, but the pause needs a read of the control row while the
 * wake-up needs nothing. So while a partition's control row is being read, its wake-ups wait and
 * reach the engine through the seat, after the control state the read found.
 */
export function noticeRouter(options: NoticeRouterOptions): { onNotice(notice: Notice): void; onReconnected(): void } {
  const { store, engineOf, seatOf, logger } = options;
  const known = new Set(options.partitions);
  /** Partitions whose control row is being read: whether to read again, and the wake-ups held back. */
  const reading = new Map<string, { again: boolean; wakes: (string[] | undefined)[] }>();

  const wake = (partition: string, queues: string[] | undefined) => engineOf(partition)?.cast({ t: 'wake', ...(queues ? { queues } : {}) });

  function readControl(partition: string): void {
    const pending = reading.get(partition);
    if (pending) {
      pending.again = true; // the read in flight may predate this change
      return;
    }
    const state = { again: false, wakes: [] as (string[] | undefined)[] };
    reading.set(partition, state);
    const finish = (row: ControlRow | undefined) => {
      reading.delete(partition);
      const flush = () => {
        for (const queues of state.wakes) wake(partition, queues);
      };
      const seat = seatOf(partition);
      if (row && seat?.alive) seat.cast({ t: 'row', row, after: flush });
      else flush();
    };
    const round = (): void => {
      store.loadControl(partition).then(
        (row) => {
          if (!state.again) return finish(row);
          state.again = false;
          round();
        },
        (err) => {
          logger.debug(
            { partition, err: describeError(err).message },
            'reading pause/throttle state on a notice failed; the seat re-reads it shortly',
          );
          finish(undefined);
        },
      );
    };
    round();
  }

  return {
    onNotice(notice) {
      if (notice.kind === 'rollcall') return options.beat();
      if (!known.has(notice.partition)) return;
      if (notice.kind === 'control') return readControl(notice.partition);
      const held = reading.get(notice.partition);
      if (held) held.wakes.push(notice.queues);
      else wake(notice.partition, notice.queues);
    },
    onReconnected() {
      // Notifications sent while the connection was down are lost: claim and re-read now.
      for (const partition of known) {
        readControl(partition);
        wake(partition, undefined);
      }
    },
  };
}
