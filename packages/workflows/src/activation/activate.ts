import { randomUUID } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { describeError, ValidationError, type Logger } from '@partita/core';
import {
  subjects,
  WF_ABANDON_KIND,
  WF_ACTIVATED_KIND,
  WF_INFLIGHT_KIND,
  WF_NOCACHE_KIND,
  WF_ROLL_CALL_KIND,
  MAX_NOCACHE_MS,
  activationAnswerProblem,
  inflightAnswerProblem,
  type ActivationAnswer,
  type ActivationNotice,
  type ActivationPhase,
  type ActivationRollCall,
  type InflightActivation,
  type InflightAnswer,
} from '@partita/protocol';
import type { Bus } from '@partita/nats';
import { ActivationInProgressError, QuorumNotReachedError } from './errors.js';

/** HotMesh's defaults (HMSH_QUORUM_DELAY_MS, HMSH_ACTIVATION_MAX_RETRY). */
export const DEFAULT_ACTIVATION_DELAY_MS = 250;
export const DEFAULT_ACTIVATION_RETRIES = 3;
/**
 * Least time given to acks: a member busy with a batch may take a few hundred ms to answer, and a
 * missed ack costs a whole round.
 */
const ACK_MIN_MS = 1000;
/**
 * Least time an activator gives other activators' in-flight answers before it starts: one that
 * misses it lets two activations run at once. With nobody activating there are no responders and
 * the question returns at once, so only a refusal waits it out. (500 ms let a second activator past
 * a busy first one on a loaded machine.)
 */
const INFLIGHT_MIN_MS = 2000;

export interface ActivationOptions {
  bus: Bus;
  cluster: string;
  logger: Logger;
  appId: string;
  version: string;
  /** Sets the active version in Postgres. Called once, only after every member acknowledged `nocache`. */
  flip: () => Promise<void>;
  /** Rounds after the first before QuorumNotReachedError; the delay doubles each round. Default 3. */
  retries?: number;
  /** How long each roll call and each ack gathers replies in the first round, in ms. Default 250. */
  delayMs?: number;
  /**
   * How long members stay in nocache mode without hearing `activated` or `abandon` (the activator
   * died). Default 30 s or 40 × delayMs, whichever is larger. The flip is not attempted once half of
   * it has gone by since `nocache` went out: members that gave up would cache the old version.
   */
  nocacheMs?: number;
}

export interface ActivationResult {
  activation: string;
  app: string;
  version: string;
  /** The nodes of the roll call (all of them acknowledged `nocache`). */
  members: string[];
  /** Members that acknowledged `activated`. */
  acknowledged: string[];
  /** Members that did not acknowledge `activated`; they are in nocache mode and see the new version on their next read. */
  missing: string[];
  /** Rounds it took (1 = the first). */
  rounds: number;
  ms: number;
}

/**
 * Activates `version` of `appId` on every workflow node at one moment (HotMesh's protocol, see
 * reference/workflows.md §1.5, on Partita's NATS quorum):
 *
 *  1. roll call three times (each gathers for the round's delay) until the three answers name the
 *     same non-empty set of nodes — HotMesh compares counts; comparing ids also catches a node that
 *     left while another joined;
 *  2. `nocache` until `version` to all of them, and wait for every member's ack (the member has told
 *     its executor to read the active version from Postgres on every use from then on);
 *  3. `flip()` — from this moment every member sees the new version on its next read;
 *  4. `activated`: members cache again; their acks are reported, a missing one is only logged (that
 *     member is still in nocache mode, so it reads the new version anyway).
 *
 * A round whose roll calls disagree, or whose `nocache` some member did not ack, sends `abandon` and
 * is retried with the delay doubled, `retries` times; then QuorumNotReachedError. Meanwhile this
 * activator answers `wf.inflight` queries, so a node that starts or reconnects during the activation
 * enters nocache mode for it before it reads the active version (the gap HotMesh had, `71253d9e`).
 * Before starting it asks the same, and refuses (ActivationInProgressError) when another activator
 * is switching the same app.
 */
export async function runActivation(options: ActivationOptions): Promise<ActivationResult> {
  const { bus, cluster, appId, version, flip } = options;
  const retries = options.retries ?? DEFAULT_ACTIVATION_RETRIES;
  const delayMs = options.delayMs ?? DEFAULT_ACTIVATION_DELAY_MS;
  if (!Number.isInteger(retries) || retries < 0) throw new ValidationError('must be a whole number (0 or more)', 'retries');
  if (!Number.isFinite(delayMs) || delayMs < 1) throw new ValidationError('must be a positive number of ms', 'delayMs');
  const nocacheMs = Math.min(MAX_NOCACHE_MS, Math.round(options.nocacheMs ?? Math.max(30_000, delayMs * 40)));
  if (!(nocacheMs >= 1)) throw new ValidationError('must be a positive number of ms', 'nocacheMs');
  const activation = randomUUID();
  const logger = options.logger.child({ app: appId, version, activation });
  const began = performance.now();

  // Answers come at once when nobody runs an activation (no responders), so a long window costs nothing then.
  const others = await inflightActivations(bus, cluster, Math.max(delayMs, INFLIGHT_MIN_MS), logger);
  const rival = others.find((a) => a.app === appId && a.activation !== activation);
  if (rival) throw new ActivationInProgressError(appId, version, rival.version);

  let phase: ActivationPhase = 'rollcall';
  let nocacheAt = 0;
  const offInflight = await bus.subscribe(
    subjects.wfActivations(cluster),
    (): InflightAnswer => ({
      activations: [
        {
          activation,
          app: appId,
          version,
          phase,
          expiresInMs: Math.max(1, phase === 'rollcall' ? nocacheMs : Math.round(nocacheMs - (performance.now() - nocacheAt))),
        },
      ],
    }),
    { kinds: [WF_INFLIGHT_KIND] },
  );
  const notice = (extra: Partial<ActivationNotice> = {}): ActivationNotice => ({ activation, app: appId, version, ...extra });
  const abandon = () => {
    phase = 'rollcall';
    bus.publish(subjects.wfActivate(cluster), WF_ABANDON_KIND, notice());
  };

  let lastCounts: number[] = [];
  let why = '';
  try {
    for (let round = 0; round <= retries; round++) {
      const delay = delayMs * 2 ** round;
      const calls: Set<string>[] = [];
      for (let i = 0; i < 3; i++) {
        const call: ActivationRollCall = { activation, app: appId, version };
        calls.push(await answers(bus, subjects.wfRollCall(cluster), WF_ROLL_CALL_KIND, call, delay, activation, logger));
      }
      lastCounts = calls.map((c) => c.size);
      const members = calls[2]!;
      if (members.size === 0 || !calls.every((c) => sameSet(c, members))) {
        why = members.size === 0 ? 'no workflow node answered the roll call' : 'the roll calls did not name the same nodes three times';
        logger.info({ round: round + 1, counts: lastCounts, delayMs: delay }, `activation round failed: ${why}; retrying`);
        continue;
      }

      phase = 'nocache';
      nocacheAt = performance.now();
      // Acks end the gather as soon as every member answered; the window only bounds a missing one.
      const ackMs = Math.max(delay * 4, ACK_MIN_MS);
      const acked = await collectAcks(
        bus,
        subjects.wfActivate(cluster),
        WF_NOCACHE_KIND,
        notice({ expiresInMs: nocacheMs }),
        members,
        ackMs,
        activation,
        logger,
      );
      const unacked = [...members].filter((n) => !acked.has(n));
      if (unacked.length > 0) {
        abandon();
        why = `node(s) ${unacked.join(', ')} did not acknowledge nocache`;
        logger.info({ round: round + 1, unacked, delayMs: delay }, `activation round failed: ${why}; retrying`);
        continue;
      }
      if (performance.now() - nocacheAt > nocacheMs / 2) {
        abandon();
        why = `the nocache acks took longer than half of nocacheMs (${nocacheMs} ms)`;
        logger.info({ round: round + 1 }, `activation round failed: ${why}; retrying`);
        continue;
      }

      phase = 'flipping';
      try {
        await flip();
      } catch (err) {
        // The flip's outcome is unknown to us, not to Postgres: members leaving nocache re-read it.
        abandon();
        throw err;
      }
      phase = 'activated';
      const confirmed = await collectAcks(
        bus,
        subjects.wfActivate(cluster),
        WF_ACTIVATED_KIND,
        notice(),
        members,
        ackMs,
        activation,
        logger,
      );
      const missing = [...members].filter((n) => !confirmed.has(n));
      const ms = Math.round(performance.now() - began);
      if (missing.length > 0) {
        logger.warn(
          { missing, nodes: [...members].sort() },
          'activated; some nodes did not acknowledge it (they are in nocache mode and read the new version)',
        );
      } else {
        logger.info({ members: members.size, nodes: [...members].sort(), rounds: round + 1, ms }, 'activated');
      }
      return {
        activation,
        app: appId,
        version,
        members: [...members].sort(),
        acknowledged: [...confirmed].sort(),
        missing: missing.sort(),
        rounds: round + 1,
        ms,
      };
    }
    throw new QuorumNotReachedError(appId, version, retries + 1, lastCounts, why);
  } finally {
    await offInflight().catch((err) => logger.debug({ err: describeError(err).message }, 'unsubscribe failed'));
  }
}

/**
 * Sends a notice until every member acknowledged it or `windowMs` is over, and returns who did. Each
 * gather stops as soon as it has as many replies as members are missing; a reply from a node that
 * joined meanwhile (or a malformed one) can end it early, so it is sent again to the rest — members
 * acknowledge a repeated notice without acting on it twice.
 */
async function collectAcks(
  bus: Bus,
  subject: string,
  kind: string,
  data: unknown,
  members: Set<string>,
  windowMs: number,
  activation: string,
  logger: Logger,
): Promise<Set<string>> {
  const acked = new Set<string>();
  const end = performance.now() + windowMs;
  for (;;) {
    const missing = [...members].filter((n) => !acked.has(n)).length;
    const left = Math.round(end - performance.now());
    if (missing === 0 || left < 1) return acked;
    for (const n of await answers(bus, subject, kind, data, left, activation, logger, missing)) acked.add(n);
  }
}

/** Gathers for `delayMs` (or until `max` replies) and returns the nodes whose answer is well formed and about this activation. */
async function answers(
  bus: Bus,
  subject: string,
  kind: string,
  data: unknown,
  delayMs: number,
  activation: string,
  logger: Logger,
  max?: number,
): Promise<Set<string>> {
  let replies: unknown[];
  try {
    replies = await bus.gather<unknown>(subject, kind, data, max ? { delayMs, max } : { delayMs });
  } catch (err) {
    // Bus away: this round has no members; the next one may.
    logger.info({ err: describeError(err).message, kind }, 'activation gather failed');
    return new Set();
  }
  const nodes = new Set<string>();
  for (const r of replies) {
    if (r === null || r === undefined) continue; // a member that dropped the message as malformed
    const problem = activationAnswerProblem(r);
    if (problem) {
      logger.warn({ kind, why: problem }, 'dropped a malformed activation answer');
      continue;
    }
    const a = r as ActivationAnswer;
    if (a.activation === activation) nodes.add(a.node);
  }
  return nodes;
}

/** Activations under way in the cluster, as their activators describe them; [] when none or no bus. */
export async function inflightActivations(bus: Bus, cluster: string, delayMs: number, logger: Logger): Promise<InflightActivation[]> {
  let replies: unknown[];
  try {
    replies = await bus.gather<unknown>(subjects.wfActivations(cluster), WF_INFLIGHT_KIND, {}, { delayMs });
  } catch (err) {
    logger.info({ err: describeError(err).message }, 'asking for activations under way failed');
    return [];
  }
  const out: InflightActivation[] = [];
  for (const r of replies) {
    const problem = inflightAnswerProblem(r);
    if (problem) {
      logger.warn({ why: problem }, 'dropped a malformed in-flight activation answer');
      continue;
    }
    out.push(...(r as InflightAnswer).activations);
  }
  return out;
}

function sameSet(a: Set<string>, b: Set<string>): boolean {
  if (a.size !== b.size) return false;
  for (const x of a) if (!b.has(x)) return false;
  return true;
}
