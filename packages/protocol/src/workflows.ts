/**
 * The workflow layer's wire contract for version activation (HotMesh's protocol on our quorum, made
 * safe for nodes that start or reconnect while it runs). Subjects come from `subjects.wf*`.
 *
 *   subject                        kind            payload              who answers
 *   partita.<c>.wf.rollcall        wf.rollcall     ActivationRollCall   every workflow node: ActivationAnswer
 *   partita.<c>.wf.activate        wf.nocache      ActivationNotice     every workflow node: ActivationAnswer (ack)
 *   partita.<c>.wf.activate        wf.activated    ActivationNotice     every workflow node: ActivationAnswer (ack)
 *   partita.<c>.wf.activate        wf.abandon      ActivationNotice     nobody (plain publish)
 *   partita.<c>.wf.activations     wf.inflight     {}                   every running activator: InflightAnswer
 *
 * Order of one activation: three roll calls with the same non-empty set of nodes → `nocache` (until
 * `version`), acked by all of them → the active version is flipped in Postgres → `activated`, acked.
 * A round that does not get every ack sends `abandon` and is retried with a doubled delay.
 */

export const WF_ROLL_CALL_KIND = 'wf.rollcall';
export const WF_NOCACHE_KIND = 'wf.nocache';
export const WF_ACTIVATED_KIND = 'wf.activated';
export const WF_ABANDON_KIND = 'wf.abandon';
export const WF_INFLIGHT_KIND = 'wf.inflight';
export const WF_NOTICE_KINDS = [WF_NOCACHE_KIND, WF_ACTIVATED_KIND, WF_ABANDON_KIND] as const;
export type ActivationNoticeKind = (typeof WF_NOTICE_KINDS)[number];

/** Asked of every workflow node before an activation: "who is there?". */
export interface ActivationRollCall {
  /** Id of this activation (a uuid the activator made). */
  activation: string;
  app: string;
  version: string;
}

/** A node's answer to a roll call, and its ack of a notice. */
export interface ActivationAnswer {
  node: string;
  activation: string;
}

/**
 * `nocache`: stop trusting the cached active version of `app`; read it from Postgres on every use
 * until it is `version` (HotMesh's `until_version`), and drop back to that after `expiresInMs` if
 * neither `activated` nor `abandon` came (the activator died). `activated`: `version` is active now.
 * `abandon`: this activation stopped before the flip; the active version did not change.
 */
export interface ActivationNotice {
  activation: string;
  app: string;
  version: string;
  /** `nocache` only: how long the node stays in nocache mode without hearing the end. */
  expiresInMs?: number;
}

export type ActivationPhase = 'rollcall' | 'nocache' | 'flipping' | 'activated';

/** One activation under way, as its activator describes it to a node that (re)joins. */
export interface InflightActivation {
  activation: string;
  app: string;
  version: string;
  phase: ActivationPhase;
  /** Whole ms left before nodes in nocache for it give up on it (as in its `nocache` notice). */
  expiresInMs: number;
}

export interface InflightAnswer {
  activations: InflightActivation[];
}

/** Longest nocache a notice may ask for (ten minutes): a larger value is a malformed message. */
export const MAX_NOCACHE_MS = 600_000;

const isName = (v: unknown) => typeof v === 'string' && v.length > 0 && v.length <= 256;
const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isMs = (v: unknown) => typeof v === 'number' && Number.isInteger(v) && v >= 1 && v <= MAX_NOCACHE_MS;
const PHASES: readonly string[] = ['rollcall', 'nocache', 'flipping', 'activated'];

/** Why a roll call is malformed, or undefined when it is usable. */
export function activationRollCallProblem(data: unknown): string | undefined {
  if (!isObject(data)) return 'not an object';
  for (const k of ['activation', 'app', 'version'] as const) if (!isName(data[k])) return `${k} must be a non-empty string`;
  return undefined;
}

/** Why a notice is malformed, or undefined. `nocache` must carry expiresInMs; msgpack's null for "absent" is removed in place. */
export function activationNoticeProblem(kind: string, data: unknown): string | undefined {
  if (!(WF_NOTICE_KINDS as readonly string[]).includes(kind)) return `unknown notice kind ${JSON.stringify(kind)}`;
  if (!isObject(data)) return 'not an object';
  for (const k of ['activation', 'app', 'version'] as const) if (!isName(data[k])) return `${k} must be a non-empty string`;
  if (data.expiresInMs === null) delete data.expiresInMs;
  if (kind === WF_NOCACHE_KIND && !isMs(data.expiresInMs)) return `expiresInMs must be a whole number of ms from 1 to ${MAX_NOCACHE_MS}`;
  if (data.expiresInMs !== undefined && !isMs(data.expiresInMs))
    return `expiresInMs must be a whole number of ms from 1 to ${MAX_NOCACHE_MS}`;
  return undefined;
}

/** Why a node's answer (to a roll call or a notice) is malformed, or undefined. */
export function activationAnswerProblem(data: unknown): string | undefined {
  if (!isObject(data)) return 'not an object';
  if (!isName(data.node)) return 'node must be a node id';
  if (!isName(data.activation)) return 'activation must be an activation id';
  return undefined;
}

/** Why an activator's answer to an in-flight query is malformed, or undefined. */
export function inflightAnswerProblem(data: unknown): string | undefined {
  if (!isObject(data)) return 'not an object';
  if (!Array.isArray(data.activations) || data.activations.length > 1000) return 'activations must be an array';
  for (const a of data.activations as unknown[]) {
    if (!isObject(a)) return 'an activation is not an object';
    for (const k of ['activation', 'app', 'version'] as const) if (!isName(a[k])) return `activation ${k} must be a non-empty string`;
    if (typeof a.phase !== 'string' || !PHASES.includes(a.phase)) return `activation phase must be one of ${PHASES.join(', ')}`;
    if (!isMs(a.expiresInMs)) return `activation expiresInMs must be a whole number of ms from 1 to ${MAX_NOCACHE_MS}`;
  }
  return undefined;
}
