/**
 * @partita/processes: cron schedules kept in Postgres (a node plugin and a client API). The
 * background-process half (defineProcess, processes(client)) will live in src/processes/.
 */
export { processesPlugin, PLUGIN_NAME, SCHEDULES_LEASE, type ProcessesPluginOptions, type ProcessesConfig } from './plugin.js';
export { schedules, type Schedules } from './schedules/client.js';
export { resolveSchedule, UnknownScheduleError, DEFAULT_BACKFILL_MS, type ScheduleSpec, type ResolvedSchedule } from './schedules/spec.js';
export { parseCron, occurrencesBetween, isRepeatedLocalTime, type CronSchedule } from './schedules/cron.js';
export { planFiring, WALK_LIMIT, FIRE_LIMIT, type MisfirePolicy, type OverlapPolicy, type Plan, type PlanInput } from './schedules/plan.js';
export { ScheduleStore, type ScheduleRecord, type Occurrence, type FiringResult, type TriggerResult } from './schedules/store.js';
