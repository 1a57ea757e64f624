export {
  JobStore,
  DEFAULT_SCHEMA,
  DEFAULT_PAYLOAD_LIMIT_BYTES,
  DEFAULT_MAX_RESCUES,
  type StoreOptions,
  type PgOptions,
  type NewJob,
  type EnqueueOutcome,
  type ClaimedJob,
  type ClaimRequest,
  type RegisteredJobType,
  type RateLimitedClaimRequest,
  type RateLimitOutcome,
  type Completion,
  type Recorded,
  type Failure,
  type RescuedJob,
  type CancelOutcome,
  type JobListFilter,
  type AppliedMigration,
  type JobMatch,
  type BulkOperation,
  type RetryOutcome,
  type BulkCancelOutcome,
  type ControlChange,
  type ControlRow,
  type Tx,
  isRowRefusal,
} from './store.js';
export { Notices, notifyChannel, parseNotice, type Notice, type NoticesOptions } from './notices.js';
export { migrate } from './migrate.js';
export { assertSchemaName, loadOps } from './sql.js';
export { Leases, PartitionLeases, globalLeaseName, type LeaseStore, type AcquiredLease, type LeaseHolder } from './leases.js';
export { PostgresGlobalState, type StoredGlobalState } from './global-state.js';
export { toJobRecord, type JobRow } from './rows.js';
