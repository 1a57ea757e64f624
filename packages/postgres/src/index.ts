export {
  JobStore,
  DEFAULT_SCHEMA,
  DEFAULT_PAYLOAD_LIMIT_BYTES,
  DEFAULT_MAX_RESCUES,
  type StoreOptions,
  type PgOptions,
  type NewJob,
  type EnqueueOutcome,
  type LeasedOutcome,
  type LeasedSent,
  type ClaimedJob,
  type ClaimRequest,
  type RegisteredJobType,
  type RateLimitedClaimRequest,
  type RateLimitOutcome,
  type Completion,
  type CompleteOptions,
  type Completed,
  type TakeInto,
  type Recorded,
  type Failure,
  type RescuedJob,
  type CancelOutcome,
  type JobListFilter,
  type HeldExecutionKey,
  type Settled,
  type AppliedMigration,
  type JobMatch,
  type BulkOperation,
  type RetryOutcome,
  type BulkCancelOutcome,
  type ControlChange,
  type ControlRow,
  type Tx,
  isRowRefusal,
  isTransientDbError,
} from './store.js';
export {
  ChannelListener,
  Notices,
  notifyChannel,
  parseNotice,
  type ChannelListenerOptions,
  type Notice,
  type NoticesOptions,
} from './notices.js';
export { migrate, type MigrateOptions, type PluginMigrations } from './migrate.js';
export { loadOpsFrom, loadMigrationsFrom, type Migration } from './sql.js';
export { assertSchemaName } from './template.js';
export { GENERIC_PLAN_SETTINGS } from './plans.js';
export { encodeColumns, encodeColumnsJsonArrays, decodeTextArray, textArray, uuidArray, type ColumnType } from './binary.js';
export { loadOps, OP_NAMES, runOp, type OpName, type Statement } from './ops.js';
export {
  inTransaction,
  TransactionRolledBackError,
  type StatementConfig,
  type TransactionOptions,
  type TransactionTail,
} from './transaction.js';
export {
  ENGINE_STORE,
  GLOBAL_STORE,
  CLIENT_STORE,
  ADMIN_STORE,
  LEASE_STORE,
  type EngineStore,
  type GlobalStore,
  type ClientStore,
  type AdminStore,
  type LeaseStore,
} from './ports.js';
export { Leases, PartitionLeases, globalLeaseName, type AcquiredLease, type LeaseHolder } from './leases.js';
export { PostgresGlobalState, type StoredGlobalState } from './global-state.js';
export { toJobRecord, type JobRow } from './rows.js';
