import { readFileSync } from 'node:fs';
import { hostname } from 'node:os';
import type { ActorRef } from '@partita/actors';
import { COUNT_REUSE_FACTOR, describeError, ReusedRead, type Logger } from '@partita/core';
import {
  CANCEL_KIND,
  MAX_CANCEL_IDS,
  MAX_THROTTLE_MS,
  ROLL_CALL_KIND,
  WAKE_KIND,
  HANDOFF_KIND,
  handoffProblem,
  queueThrottle,
  type Handoff,
  type CancelBroadcast,
  type ControlBroadcast,
  type MemberProfile,
  type QueueProfile,
  type ThrottleRule,
} from '@partita/protocol';
import type { AdminStore, ClaimedJob, EngineStore } from '@partita/postgres';
import type { Bus, MessageInfo } from '@partita/nats';
import { subjects } from '@partita/protocol';
import type { EngineControl, EngineMsg, EngineStats } from './engine/messages.js';

/** Hands back jobs this node cannot run, and counts queued jobs (its pool and schema) for roll-call answers. */
export type QuorumStore = Pick<EngineStore, 'release'> & Pick<AdminStore, 'queuedJobCounts'>;

export interface QuorumOptions {
  bus: Bus;
  cluster: string;
  nodeId: string;
  partitions: Record<string, { queues: Record<string, { concurrency: number }> }>;
  engines: () => Map<string, ActorRef<EngineMsg, unknown> | undefined>;
  logger: Logger;
  /** For the queued counts of roll-call answers (one grouped count, cached a second). */
  store?: QuorumStore;
  /** When the node started (ms since the epoch), for uptime; default: when the member started. */
  startedAt?: number;
}

/**
 * A node's membership in the quorum. Calling it (or `leave()`) unsubscribes everything.
 */
export interface QuorumMember {
  (): Promise<void>;
  leave(): Promise<void>;
  /**
   * This node's roll-call answer. `counts: false` leaves the cluster-wide queued counts out (null):
   * the profile a heartbeat stores, where a count over the jobs table every few seconds per node
   * would cost more than it tells (a roll call from Postgres counts once for all nodes).
   */
  profile(options?: { counts?: boolean }): Promise<MemberProfile>;
}

const STATS_TIMEOUT_MS = 500;
const QUEUED_CACHE_MS = 1000;
/** A roll call waits at most this long for a fresh queued count (else: the last one, or null). */
const QUEUED_WAIT_MS = 100;
const CPU_SAMPLE_MS = 2000;

/**
 * Joins the quorum: the bus subscriptions that turn cluster messages into messages to this node's
 * engines.
 *
 *  - wake (`partita.<c>.wake.<partition>.<queue>`): the idle engine claims at once.
 *  - cancel (`partita.<c>.cancel.<partition>`, `{ ids }`): `{ t: 'cancel', ids }` to the engine;
 *    an engine not running those jobs ignores them (the heartbeat's cancel flag is the durable path).
 *  - roll call (`partita.<c>.rollcall`, gather): answers with the node's MemberProfile.
 *  - hand-off (`partita.<c>.node.<nodeId>`, `{ job }`): a job a client enqueued straight into this
 *    node, to the partition's engine (which runs it or hands it back).
 *
 * Pause/throttle broadcasts (`partita.<c>.pause.<partition>`, kind `control`) are applied by the
 * partition's GlobalSeat, which also re-reads them from Postgres and re-sends them to a restarted
 * engine; `controlProblem` below is the payload check to use there.
 *
 * Payloads are checked; a malformed one is logged (once a minute per kind) and dropped.
 */
export async function startQuorumMember(options: QuorumOptions): Promise<QuorumMember> {
  const { bus, cluster, engines, nodeId, logger } = options;
  const partitionNames = Object.keys(options.partitions);
  const startedAt = options.startedAt ?? Date.now();
  const offs: (() => Promise<void>)[] = [];
  const warned = new Map<string, number>();
  const malformed = (kind: string, subject: string, why: string) => {
    const now = Date.now();
    if (now - (warned.get(kind) ?? 0) < 60_000) return;
    warned.set(kind, now);
    logger.warn({ subject, kind, why }, 'dropped a malformed quorum message (logged once a minute per kind)');
  };

  // ── roll call ──────────────────────────────────────────────────────────────────────────────
  const queued = queuedCounter(options.store, partitionNames, logger);
  const cpu = cpuMeter();
  const version = runtimeVersion();
  const host = hostname();

  const profile = async (profileOptions: { counts?: boolean } = {}): Promise<MemberProfile> => {
    const refs = engines();
    const [stats, counts] = await Promise.all([
      Promise.all(
        partitionNames.map(async (p) => {
          const ref = refs.get(p);
          if (!ref?.alive) return undefined;
          try {
            return (await ref.call({ t: 'stats' }, { timeoutMs: STATS_TIMEOUT_MS })) as EngineStats;
          } catch {
            return undefined;
          }
        }),
      ),
      profileOptions.counts === false ? undefined : queued.get(),
    ]);
    const queues: QueueProfile[] = [];
    let running = 0;
    let queuedTotal: number | null = counts ? 0 : null;
    let throttleMs = 0;
    partitionNames.forEach((partition, i) => {
      const s = stats[i];
      const engineThrottle = s?.throttleMs ?? 0;
      const paused = new Set(s?.paused ?? []);
      if (engineThrottle < 0 || throttleMs < 0) throttleMs = -1;
      else throttleMs = Math.max(throttleMs, engineThrottle);
      for (const [queue, q] of Object.entries(options.partitions[partition]!.queues)) {
        const sq = s?.queues[queue];
        const c = counts?.get(`${partition}\u0000${queue}`);
        const qp: QueueProfile = {
          partition,
          queue,
          concurrency: q.concurrency,
          running: sq?.running ?? 0,
          prefetched: sq?.prefetched ?? 0,
          queued: counts ? (c?.queued ?? 0) : null,
          scheduled: counts ? (c?.scheduled ?? 0) : null,
          paused: paused.has(queue),
          stopped: (s?.stopped ?? []).includes(queue),
          throttleMs: engineThrottle,
          ...(sq?.rateLimit ? { rateLimit: sq.rateLimit } : {}),
        };
        running += qp.running;
        if (queuedTotal !== null) queuedTotal += qp.queued ?? 0;
        queues.push(qp);
      }
    });
    const mem = process.memoryUsage();
    const now = Date.now();
    return {
      id: nodeId,
      cluster,
      host,
      pid: process.pid,
      version,
      nodeVersion: process.version,
      partitions: partitionNames,
      queues,
      running,
      queued: queuedTotal,
      throttleMs,
      memory: { rss: mem.rss, heapUsed: mem.heapUsed, heapTotal: mem.heapTotal, external: mem.external },
      cpuPercent: cpu.percent(),
      uptimeMs: now - startedAt,
      startedAt: new Date(startedAt),
      at: new Date(now),
    };
  };

  // ── subscriptions ──────────────────────────────────────────────────────────────────────────
  try {
    for (const partition of partitionNames) {
      // Wake-ups: an enqueue anywhere in the cluster makes this node's idle engine claim at once.
      offs.push(
        await bus.subscribe(
          subjects.wakePattern(cluster, partition),
          (_data, msg) => {
            const queue = subjects.parseWake(msg.subject)?.queue;
            engines()
              .get(partition)
              ?.cast({ t: 'wake', ...(queue ? { queues: [queue] } : {}) });
          },
          { kinds: [WAKE_KIND] },
        ),
      );
      // Cancel: abort these jobs if they run here (the heartbeat's cancel flag is the durable fallback).
      offs.push(
        await bus.subscribe(
          subjects.cancel(cluster, partition),
          (data: CancelBroadcast, msg) => {
            const problem = cancelProblem(data);
            if (problem) return malformed(CANCEL_KIND, msg.subject, problem);
            engines()
              .get(partition)
              ?.cast({ t: 'cancel', ids: [...data.ids] });
          },
          { kinds: [CANCEL_KIND] },
        ),
      );
    }
    // Hand-offs: jobs clients enqueued straight into this node (it advertised itself idle).
    offs.push(
      await bus.subscribe(
        subjects.node(cluster, nodeId),
        (data: Handoff, msg) => {
          const problem = handoffProblem(data);
          if (problem) return malformed(HANDOFF_KIND, msg.subject, problem);
          const job: ClaimedJob = { ...data.job, executionKey: null, cancelRequested: false, continuation: data.job.continuation ?? null };
          const engine = engines().get(job.partition);
          if (engine?.alive) return engine.cast({ t: 'handoff', job });
          // No engine for it here (not served, or restarting): back to the queue, for any node to claim.
          options.store
            ?.release(nodeId, [{ id: job.id, attempt: job.attempt }])
            .then(() => bus.publish(subjects.wake(cluster, job.partition, job.queue), WAKE_KIND, null))
            .catch((err) =>
              logger.warn(
                { jobId: job.id, err: describeError(err).message },
                'handing back a job this node cannot run failed; it is rescued when its lease expires',
              ),
            );
        },
        { kinds: [HANDOFF_KIND] },
      ),
    );
    offs.push(
      await bus.subscribe(subjects.rollCall(cluster), (_data: unknown, msg: MessageInfo) => (msg.expectsReply ? profile() : undefined), {
        kinds: [ROLL_CALL_KIND],
      }),
    );
  } catch (err) {
    cpu.stop();
    await Promise.all(offs.map((off) => off().catch(() => undefined)));
    throw err;
  }

  let left: Promise<void> | undefined;
  const leave = () => {
    left ??= (async () => {
      cpu.stop();
      await Promise.all(offs.map((off) => off().catch((e) => logger.debug({ err: describeError(e).message }, 'unsubscribe failed'))));
    })();
    return left;
  };
  return Object.assign(leave, { leave, profile });
}

// ── control: pure parts ──────────────────────────────────────────────────────────────────────

/**
 * What one engine (one partition on one node) must obey, given the partition's control state.
 * The engine calls this on every control state it receives; a stop (-1) of one queue pauses that
 * queue without stopping the engine's other queues.
 *
 * Per queue, the throttle is the most specific rule that targets it:
 *   node + queue  >  node (all its queues)  >  queue (on every node)  >  partition-wide;
 * rules for other nodes are ignored; several rules at the same level: the most restrictive wins
 * (-1, else the largest ms). No rule: 0.
 *
 * The engine has one throttle, not one per queue, so:
 *  - a queue whose throttle is -1 is treated as paused (no claims for it; its prefetched jobs are
 *    handed back) — a stop of one queue never stops the others;
 *  - throttleMs = the largest throttle among the queues still claiming (paused ones do not
 *    count): a queue-level throttle also slows the engine's other queues, never the reverse;
 *  - when no queue claims any more and at least one is stopped, throttleMs = -1.
 *
 * `paused` lists the engine's queues that are paused or stopped, sorted.
 */
export function effectiveControl(
  state: Pick<ControlBroadcast, 'paused' | 'throttles'>,
  nodeId: string,
  queues: readonly string[],
): Required<EngineControl> {
  const pausedSet = new Set(state.paused);
  const paused: string[] = [];
  let throttleMs = 0;
  let stopped = false;
  let active = 0;
  for (const queue of [...queues].sort()) {
    const ms = queueThrottle(state.throttles, nodeId, queue);
    if (ms < 0) stopped = true;
    if (ms < 0 || pausedSet.has(queue)) {
      paused.push(queue);
      continue;
    }
    active++;
    throttleMs = Math.max(throttleMs, ms);
  }
  if (active === 0 && stopped) throttleMs = -1;
  return { paused, throttleMs };
}

export { queueThrottle };

/** The engine's queues that a throttle of -1 stops on this node (effectiveControl lists them as paused too), sorted. */
export function stoppedQueues(state: Pick<ControlBroadcast, 'throttles'>, nodeId: string, queues: readonly string[]): string[] {
  return [...queues].sort().filter((queue) => queueThrottle(state.throttles, nodeId, queue) < 0);
}

const isName = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 256;

/**
 * Why a control broadcast (`{ partition, paused, throttles, epoch?, seq? }`) is malformed, or
 * undefined when it is usable. Normalises in place what msgpack senders may write as null for
 * "absent" (a rule's queue/node, epoch, seq). Check every broadcast with it before it reaches an
 * engine: a rule that is null or has a non-numeric ms would otherwise crash or confuse it.
 */
export function controlProblem(state: unknown): string | undefined {
  if (typeof state !== 'object' || state === null || Array.isArray(state)) return 'not an object';
  const s = state as Partial<Record<keyof ControlBroadcast, unknown>>;
  if (!isName(s.partition)) return 'partition must be a name';
  if (!Array.isArray(s.paused) || s.paused.length > 10_000 || !s.paused.every(isName)) return 'paused must be an array of queue names';
  if (!Array.isArray(s.throttles) || s.throttles.length > 10_000) return 'throttles must be an array';
  for (const r of s.throttles as unknown[]) {
    if (typeof r !== 'object' || r === null) return 'a throttle rule is not an object';
    const rule = r as Partial<Record<keyof ThrottleRule, unknown>>;
    if (typeof rule.ms !== 'number' || !Number.isInteger(rule.ms) || rule.ms < -1 || rule.ms > MAX_THROTTLE_MS) {
      return `throttle ms must be an integer from -1 to ${MAX_THROTTLE_MS}`;
    }
    if (rule.queue !== undefined && rule.queue !== null && !isName(rule.queue)) return 'throttle queue must be a name';
    if (rule.node !== undefined && rule.node !== null && !isName(rule.node)) return 'throttle node must be a node id';
    // msgpack has no undefined: a sender may write null for "no target".
    if (rule.queue === null) delete rule.queue;
    if (rule.node === null) delete rule.node;
  }
  for (const k of ['epoch', 'seq'] as const) {
    const v = s[k];
    if (v !== undefined && v !== null && (typeof v !== 'number' || !Number.isFinite(v))) return `${k} must be a number`;
    if (v === null) delete s[k];
  }
  return undefined;
}

function cancelProblem(data: unknown): string | undefined {
  if (typeof data !== 'object' || data === null) return 'not an object';
  const ids = (data as { ids?: unknown }).ids;
  if (
    !Array.isArray(ids) ||
    ids.length > MAX_CANCEL_IDS ||
    !ids.every((id) => typeof id === 'string' && id.length > 0 && id.length <= 64)
  ) {
    return 'ids must be an array of job ids';
  }
  return undefined;
}

// ── roll-call helpers ────────────────────────────────────────────────────────────────────────

interface QueuedCounts {
  get(): Promise<Map<string, { queued: number; scheduled: number }> | undefined>;
}

/**
 * Due and scheduled jobs per partition/queue of this node, cluster-wide: one grouped count over the
 * claim index, reused for at least QUEUED_CACHE_MS and for COUNT_REUSE_FACTOR times what it took (a count
 * over a million queued jobs is not run again by every roll call); a refresh is waited on for at
 * most QUEUED_WAIT_MS, past which the last count (or null) answers and the refresh serves the next.
 */
function queuedCounter(store: QuorumStore | undefined, partitions: string[], logger: Logger): QueuedCounts {
  if (!store) return { get: async () => undefined };
  const counts = new ReusedRead(
    async () =>
      new Map(
        (await store.queuedJobCounts(partitions)).map((r) => [
          `${r.partition}\u0000${r.queue}`,
          { queued: r.queued, scheduled: r.scheduled },
        ]),
      ),
    { minMs: QUEUED_CACHE_MS, factor: COUNT_REUSE_FACTOR },
  );
  return {
    async get() {
      const fresh = counts.get().catch((err: unknown) => {
        logger.debug({ err: describeError(err).message }, 'roll call: counting queued jobs failed');
        return undefined;
      });
      let timer: NodeJS.Timeout | undefined;
      const waited = await Promise.race([fresh, new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), QUEUED_WAIT_MS)))]);
      clearTimeout(timer);
      return waited ?? counts.last;
    },
  };
}

/** CPU use of the process, as a share of one core, over the last sample period (2 s). */
function cpuMeter(): { percent(): number; stop(): void } {
  let last = { usage: process.cpuUsage(), at: process.hrtime.bigint() };
  let percent = (() => {
    const u = last.usage;
    const upMicros = process.uptime() * 1e6;
    return upMicros > 0 ? ((u.user + u.system) / upMicros) * 100 : 0;
  })();
  const timer = setInterval(() => {
    const usage = process.cpuUsage();
    const at = process.hrtime.bigint();
    const wallMicros = Number(at - last.at) / 1000;
    if (wallMicros > 0) percent = ((usage.user - last.usage.user + usage.system - last.usage.system) / wallMicros) * 100;
    last = { usage, at };
  }, CPU_SAMPLE_MS);
  timer.unref();
  return {
    percent: () => Math.round(percent * 10) / 10,
    stop: () => clearInterval(timer),
  };
}

let version: string | undefined;
function runtimeVersion(): string {
  if (version === undefined) {
    try {
      version =
        (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version?: string }).version ?? 'unknown';
    } catch {
      version = 'unknown';
    }
  }
  return version;
}
