/**
 * @partita/processes: cron schedules kept in Postgres, and background processes in the Go `process`
 * model (a node plugin and client APIs).
 */
export { processesPlugin, PLUGIN_NAME, SCHEDULES_LEASE, type ProcessesPluginOptions, type ProcessesConfig } from './plugin.js';
export { schedules, type Schedules } from './schedules/client.js';
export { resolveSchedule, UnknownScheduleError, DEFAULT_BACKFILL_MS, type ScheduleSpec, type ResolvedSchedule } from './schedules/spec.js';
export { parseCron, occurrencesBetween, isRepeatedLocalTime, type CronSchedule } from './schedules/cron.js';
export { planFiring, WALK_LIMIT, FIRE_LIMIT, type MisfirePolicy, type OverlapPolicy, type Plan, type PlanInput } from './schedules/plan.js';
export { ScheduleStore, type ScheduleRecord, type Occurrence, type FiringResult, type TriggerResult } from './schedules/store.js';
export {
  defineProcess,
  msToNextSlot,
  type ProcessDefinition,
  type ResolvedProcess,
  type ProcessContext,
  type ProcessState,
  type ProgressResult,
  type ErrorAction,
  type ErrorRecord,
  type RunState,
  type RunStatus,
  type Work,
  type WorkStatus,
  type ItemState,
} from './processes/define.js';
export { processes, type Processes, type ProcessRecord, type ProcessWorkRecord } from './processes/client.js';
export { UnknownProcessError } from './processes/errors.js';
export { mergeWork, recordError, KEPT_ERRORS } from './processes/state.js';
export type { RunOutcome } from './processes/run.js';
export { RUN_EVENT_KIND, runEventSubject, processPattern, ANNOUNCE_KIND, type ProcessRunEvent } from './processes/runner.js';
