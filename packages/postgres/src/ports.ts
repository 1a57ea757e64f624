import type { JobStore } from './store.js';
import type { LeaseStore } from './leases.js';

/**
 * Storage ports: the parts of JobStore each caller uses, so the engine, Global, the seat, the lease
 * keeper, the client and the admin tools depend on what they call rather than on the whole store
 * (and a test may hand them a small fake). Each port is a list of JobStore's members, derived from
 * the call sites; JobStore implements them all. The lists are values too, so a test can check a
 * store (or a fake) has every member at run time.
 */

/** What the engine calls for its partition, plus the job-lease half the lease keeper runs for it. */
export const ENGINE_STORE = [
  'claimCounted',
  'claimRateLimited',
  'complete',
  'fail',
  'release',
  'updateProgress',
  'heartbeat',
  'rescueExpired',
  'rescueDeadNodes',
  'loadControl',
  'withTransaction',
] as const satisfies readonly (keyof JobStore)[];

/** What a partition's Global (runtime/src/global/global.ts) and its seat call. */
export const GLOBAL_STORE = [
  'loadControl',
  'adoptControl',
  'changeControl',
  'cancel',
  'getJob',
  'liveJobs',
  'queueKeyHolder',
  'clearQueueKey',
  'executionKeys',
  'executionKeyHolder',
  'releaseExecutionKey',
] as const satisfies readonly (keyof JobStore)[];

/** What @partita/client calls. */
export const CLIENT_STORE = [
  'enqueue',
  'enqueueHandedOff',
  'notifyEnqueued',
  'assertKnownPartition',
  'knownQueues',
  'jobTypes',
  'getJob',
  'jobsByKey',
  'listJobs',
  'liveJobCounts',
  'queueHeads',
  'queueKeyHolder',
  'queueKeyHolders',
  'release',
  'cancel',
  'retryJobs',
  'cancelMatching',
  'deleteMatching',
  'countMatching',
  'loadControl',
  'changeControl',
  'nodesSeen',
  'requestRollCall',
  'appliedMigrations',
  'migrate',
  'close',
  // Layers over the client (schedules(client) of @partita/processes) enqueue a job in the
  // transaction that records why it exists.
  'withTransaction',
] as const satisfies readonly (keyof JobStore)[];

/**
 * What assembling and running a node takes besides the ports above (node.ts, the lease keeper's
 * maintenance, the CLI's node services): migrations, history upkeep, the node registry, and the
 * pool and schema that the persister, partition leases and health checks are built on.
 */
export const ADMIN_STORE = [
  'pool',
  'schema',
  'migrate',
  'appliedMigrations',
  'ensureHistoryPartitions',
  'pruneHistory',
  'pruneRateBuckets',
  'jobsPages',
  'registerQueues',
  'registerJobTypes',
  'leaveNodes',
  // A node's roll-call answers (runtime quorum.ts).
  'queuedJobCounts',
  'close',
] as const satisfies readonly (keyof JobStore)[];

/** The lease operations (name-keyed, fenced: leases.ts) the seats call. */
export const LEASE_STORE = ['acquire', 'renew', 'release', 'holder', 'raiseEpoch'] as const satisfies readonly (keyof LeaseStore)[];

export interface EngineStore extends Pick<JobStore, (typeof ENGINE_STORE)[number]> {}
export interface GlobalStore extends Pick<JobStore, (typeof GLOBAL_STORE)[number]> {}
export interface ClientStore extends Pick<JobStore, (typeof CLIENT_STORE)[number]> {}
export interface AdminStore extends Pick<JobStore, (typeof ADMIN_STORE)[number]> {}
export type { LeaseStore };
