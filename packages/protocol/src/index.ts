/**
 * The wire contract of a Partita cluster: subject names, message kinds, payload types and the checks
 * a receiver runs on them. Nodes, clients and the bus all import it from here (dependency direction:
 * core ← protocol ← postgres/nats ← client ← runtime), so no side depends on another for its format.
 */
export * as subjects from './subjects.js';
export { matchSubject, matchTokens, validateToken, validateSubject, validatePattern, isValidSubject, isValidPattern } from './subjects.js';
export {
  JOB_EVENT_KINDS,
  TERMINAL_EVENT_KINDS,
  eventTypeToken,
  eventTypeFromToken,
  eventSubscriptionPattern,
  jobEventSubject,
  publishJobEvent,
  publishJobEvents,
  jobEventsOf,
  eventMessageKind,
  eventBatchMessageKind,
  eventMessageKinds,
  isJobEvent,
  jsonForm,
  type JobEvent,
  type JobEventKind,
  type EventFilter,
  type EventPublisher,
  type EventPublishProblem,
} from './events.js';
export {
  WAKE_KIND,
  IDLE_KIND,
  HANDOFF_KIND,
  IDLE_ADVERT_TTL_MS,
  idleAdvertProblem,
  handoffProblem,
  type IdleAdvert,
  type Handoff,
  type HandoffJob,
  ROLL_CALL_KIND,
  CANCEL_KIND,
  CONTROL_KIND,
  QUORUM_KIND,
  MAX_CANCEL_IDS,
  MAX_THROTTLE_MS,
  queueThrottle,
  isMemberProfile,
  type CancelBroadcast,
  type ControlBroadcast,
  type ThrottleRule,
  type MemberProfile,
  type QueueProfile,
} from './quorum.js';
export type { GlobalRequest } from './global.js';
export {
  WF_ROLL_CALL_KIND,
  WF_NOCACHE_KIND,
  WF_ACTIVATED_KIND,
  WF_ABANDON_KIND,
  WF_INFLIGHT_KIND,
  WF_NOTICE_KINDS,
  MAX_NOCACHE_MS,
  activationRollCallProblem,
  activationNoticeProblem,
  activationAnswerProblem,
  inflightAnswerProblem,
  type ActivationNoticeKind,
  type ActivationRollCall,
  type ActivationAnswer,
  type ActivationNotice,
  type ActivationPhase,
  type InflightActivation,
  type InflightAnswer,
} from './workflows.js';
