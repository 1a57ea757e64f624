/**
 * The quorum's wire contract: message kinds and payloads that clients and nodes exchange over the
 * bus (subjects come from `subjects.*` in this package). Both sides import it from here, so neither
 * the node nor the client has to depend on the other for its wire format.
 *
 *   subject                                  kind       payload                         who answers
 *   partita.<c>.wake.<partition>.<queue>     wake       null                            every node serving it
 *   partita.<c>.idle.<partition>.<queue>     idle       IdleAdvert                      clients (hand-off targets)
 *   partita.<c>.node.<nodeId>                handoff    Handoff                         that node
 *   partita.<c>.event.<p>.<q>.<type>.<kind>  job.<kind> JobEvent                        subscribers
 *   partita.<c>.rollcall                     rollcall   {}   (gather)                   every node: MemberProfile
 *   partita.<c>.cancel.<partition>           cancel     CancelBroadcast                 every node serving it
 *   partita.<c>.throttle                     control    ControlBroadcast (all rules)    every node serving its partition
 *   partita.<c>.pause.<partition>            control    ControlBroadcast                every node serving it
 *   partita.<c>.quorum.<topic…>              quorum     anything (user data)            user subscribers
 */

export const WAKE_KIND = 'wake';
export const IDLE_KIND = 'idle';
export const HANDOFF_KIND = 'handoff';
export const ROLL_CALL_KIND = 'rollcall';
export const CANCEL_KIND = 'cancel';
export const CONTROL_KIND = 'control';
export const QUORUM_KIND = 'quorum';

/**
 * An engine with free slots for a queue and nothing to claim: a client may enqueue its next job of
 * that queue straight into this node's hands (stored as the node's running attempt, leased for
 * `leaseMs`), skipping the wake-up and claim round trips. Sent again while the engine stays idle.
 */
export interface IdleAdvert {
  node: string;
  leaseMs: number;
  /** Free slots: jobs a client may hand this node on the strength of this advert; 0 takes it back. */
  free: number;
}

/** How long a client trusts an idle advert; engines repeat theirs at every poll while idle. */
export const IDLE_ADVERT_TTL_MS = 3000;

/**
 * The job of a hand-off: a claimed job (`ClaimedJob` of @partita/postgres extends it) less what a
 * hand-off never carries (no execution key, no cancel asked yet). Defined here because the wire
 * contract sits below the store.
 */
export interface HandoffJob {
  id: string;
  partition: string;
  queue: string;
  type: string;
  payload: unknown;
  priority: number;
  attempt: number;
  maxAttempts: number;
  timeoutMs: number | null;
  queueKey: string | null;
  /** The enqueuer's W3C trace context, when it was traced: perform's span is its child. */
  traceparent?: string | null;
  /**
   * The continuation the job is marked for (a workflow step's, say): its outcome must be written with
   * it. A node that does not run that continuation hands the job back rather than running it.
   * Absent (an older sender): unmarked.
   */
  continuation?: string | null;
}

/** A job enqueued straight into a node's hands: already its running attempt in Postgres. */
export interface Handoff {
  job: HandoffJob;
}

const isName = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isCount = (v: unknown, max: number) => typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= max;

/** Why an idle advert is malformed, or undefined when it is usable. */
export function idleAdvertProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'not an object';
  const a = data as Partial<Record<keyof IdleAdvert, unknown>>;
  if (!isName(a.node)) return 'node must be a node id';
  if (!isCount(a.leaseMs, 86_400_000) || (a.leaseMs as number) < 1) return 'leaseMs must be a positive whole number of ms';
  if (!isCount(a.free, 1_000_000)) return 'free must be a whole number of slots';
  return undefined;
}

/** Why a hand-off is malformed, or undefined when it is usable (msgpack nulls for absent values are accepted). */
export function handoffProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'not an object';
  const job = (data as { job?: unknown }).job;
  if (typeof job !== 'object' || job === null) return 'job must be an object';
  const j = job as Partial<Record<keyof Handoff['job'], unknown>>;
  if (typeof j.id !== 'string' || !/^[0-9a-f-]{36}$/i.test(j.id)) return 'job.id must be a job id';
  for (const k of ['partition', 'queue', 'type'] as const) if (!isName(j[k])) return `job.${k} must be a name`;
  if (typeof j.priority !== 'number' || !Number.isInteger(j.priority)) return 'job.priority must be an integer';
  if (!isCount(j.attempt, 1_000_000) || !isCount(j.maxAttempts, 1_000_000)) return 'job.attempt and job.maxAttempts must be whole numbers';
  if (j.timeoutMs !== null && !isCount(j.timeoutMs, 2_147_483_647)) return 'job.timeoutMs must be null or a whole number of ms';
  if (j.queueKey !== null && typeof j.queueKey !== 'string') return 'job.queueKey must be null or a string';
  if (j.continuation != null && !isName(j.continuation)) return 'job.continuation must be null or a continuation name';
  return undefined;
}

/** Kill running jobs of a partition, wherever they run (nodes not running them ignore it). */
export interface CancelBroadcast {
  ids: string[];
}

/** Longest id list a node accepts in one cancel broadcast (more is a malformed message). */
export const MAX_CANCEL_IDS = 10_000;

/**
 * A throttle rule of a partition: `ms` to wait before each claim (-1: no claims at all). Targets:
 * neither queue nor node = the whole partition; `queue` = that queue on every node; `node` = every
 * queue of that node; both = that queue on that node.
 */
export interface ThrottleRule {
  ms: number;
  queue?: string;
  node?: string;
}

/** The throttle of one queue on one node: the most specific matching rule (node + queue > node > queue > partition-wide; at one level the most restrictive; no rule: 0). */
export function queueThrottle(rules: readonly ThrottleRule[], nodeId: string, queue: string): number {
  let bestLevel = -1;
  let best = 0;
  for (const r of rules) {
    if (r.node !== undefined && r.node !== nodeId) continue;
    if (r.queue !== undefined && r.queue !== queue) continue;
    const level = (r.node !== undefined ? 2 : 0) + (r.queue !== undefined ? 1 : 0);
    if (level > bestLevel) {
      bestLevel = level;
      best = r.ms;
    } else if (level === bestLevel) {
      best = best < 0 || r.ms < 0 ? -1 : Math.max(best, r.ms);
    }
  }
  return best;
}

/** Largest throttle accepted, in ms (one hour); -1 stops claiming until lifted. */
export const MAX_THROTTLE_MS = 3_600_000;

/**
 * The full control state of one partition, as Global broadcasts it after every change (and nodes
 * read it when they start). It is a snapshot, not a delta: a node replaces what it had.
 * `epoch` (Global's lease epoch) and `seq` (a counter within the epoch), when given, let a node
 * ignore a broadcast older than the one it already applied.
 */
export interface ControlBroadcast {
  partition: string;
  paused: string[];
  throttles: ThrottleRule[];
  epoch?: number;
  seq?: number;
}

export interface QueueProfile {
  partition: string;
  queue: string;
  concurrency: number;
  /** Jobs running on this node. */
  running: number;
  /** Claimed by this node, waiting for a free slot. */
  prefetched: number;
  /** Due jobs waiting in Postgres for any node (cluster-wide; cached up to a second). Null when unknown. */
  queued: number | null;
  /** Jobs with a future runAt (cluster-wide, same cache). Null when unknown. */
  scheduled: number | null;
  /** Claims nothing: paused, or stopped by a throttle of -1 (then `stopped` is true as well). */
  paused: boolean;
  /** Stopped by a throttle of -1 on this node: `throttle off` lifts it, resume does not. */
  stopped: boolean;
  /** This node's effective throttle for the queue's partition engine (ms before each claim; -1 stopped). */
  throttleMs: number;
  /**
   * The queue's rate limit, as this node's engine last saw its cluster-wide bucket: tokens left
   * (null before its first claim, and per key) and due jobs the limit held back then; limited per
   * key, the keys that were at their limit.
   */
  rateLimit?: { limit: number; periodMs: number; key?: string; tokensLeft: number | null; held: number; limitedKeys?: number };
}

/** What a node answers to a roll call. */
export interface MemberProfile {
  id: string;
  cluster: string;
  host: string;
  pid: number;
  /** @partita/runtime version. */
  version: string;
  nodeVersion: string;
  partitions: string[];
  queues: QueueProfile[];
  /** Jobs running on this node, all partitions. */
  running: number;
  /** Due jobs waiting in Postgres in this node's queues (cluster-wide), null when unknown. */
  queued: number | null;
  /** Largest effective throttle over this node's engines (-1 when any engine is stopped). */
  throttleMs: number;
  memory: { rss: number; heapUsed: number; heapTotal: number; external: number };
  /** Share of one core used by the process over the last few seconds (100 = one core busy). */
  cpuPercent: number;
  uptimeMs: number;
  startedAt: Date;
  /** When the answer was made (node's clock). */
  at: Date;
}

export function isMemberProfile(value: unknown): value is MemberProfile {
  if (typeof value !== 'object' || value === null) return false;
  const p = value as Record<string, unknown>;
  return typeof p.id === 'string' && Array.isArray(p.partitions) && Array.isArray(p.queues) && typeof p.running === 'number';
}
