/**
 * `schedules(client)`: schedules created and changed at run time, from any process with a client
 * (a node's own, `connect()`, the CLI). Everything goes through Postgres; the leader hears of a
 * change by a notification and fires by the new rules at once.
 */
import type { Client } from '@partita/client';
import { clientStore } from '@partita/client/internal';
import { resolveSchedule, UnknownScheduleError, type ScheduleSpec } from './spec.js';
import { ScheduleStore, type Occurrence, type ScheduleRecord, type TriggerResult } from './store.js';

export interface Schedules {
  /** Creates the schedule, or replaces the one with this id (counters and history stay). True when created. */
  create(spec: ScheduleSpec): Promise<boolean>;
  /** The same as create (DESIGN.md's name). */
  add(spec: ScheduleSpec): Promise<boolean>;
  /** Changes some fields of an existing schedule (UnknownScheduleError when there is none). */
  update(id: string, changes: Partial<Omit<ScheduleSpec, 'id'>>): Promise<void>;
  /** Deletes it and its occurrence history (jobs already enqueued stay). False when there was none. */
  remove(id: string): Promise<boolean>;
  /** Stops firing; what would fire meanwhile is not owed (neither run at resume nor counted missed). */
  pause(id: string): Promise<void>;
  resume(id: string): Promise<void>;
  /** Runs it now as an extra occurrence (overlap: skip still applies). */
  trigger(id: string): Promise<TriggerResult>;
  list(): Promise<ScheduleRecord[]>;
  get(id: string): Promise<ScheduleRecord | undefined>;
  /** Its latest occurrences, newest first. */
  occurrences(id: string, limit?: number): Promise<Occurrence[]>;
}

const stores = new WeakMap<Client, ScheduleStore>();

/** The schedules store over a client's pool and schema (one per client). */
export function scheduleStoreOf(client: Client): ScheduleStore {
  let store = stores.get(client);
  if (!store) {
    const s = clientStore(client);
    store = new ScheduleStore(s.pool, s.schema, s);
    stores.set(client, store);
  }
  return store;
}

export function schedules(client: Client): Schedules {
  const store = scheduleStoreOf(client);
  const create = async (spec: ScheduleSpec) => store.upsert(resolveSchedule(spec), 'api');
  return {
    create,
    add: create,
    async update(id, changes) {
      const current = await store.get(id);
      if (!current) throw new UnknownScheduleError(id);
      const spec: ScheduleSpec = {
        id,
        cron: current.cron,
        timezone: current.timezone,
        partition: current.partition,
        type: current.type,
        payload: current.payload,
        misfire: current.misfire,
        backfillMs: current.backfillMs,
        overlap: current.overlap,
        ...(current.queue !== undefined ? { queue: current.queue } : {}),
      };
      const merged = resolveSchedule({ ...spec, ...changes, id }, `update(${JSON.stringify(id)})`);
      await store.upsert(merged, 'api', current.paused);
    },
    remove: (id) => store.remove(id),
    pause: (id) => store.pause(id),
    resume: (id) => store.resume(id),
    trigger: (id) => store.trigger(id),
    list: () => store.list(),
    get: (id) => store.get(id),
    occurrences: (id, limit) => store.occurrences(id, limit),
  };
}
