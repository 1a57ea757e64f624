export { connect, Client, type ConnectOptions, type EnqueueManyItem, type EnqueueManyResult, type ClientHooks } from './client.js';
export {
  JOB_EVENT_KINDS,
  TERMINAL_EVENT_KINDS,
  eventTypeToken,
  eventTypeFromToken,
  eventSubscriptionPattern,
  jobEventSubject,
  publishJobEvent,
  eventMessageKind,
  eventMessageKinds,
  isJobEvent,
  jsonForm,
  type JobEvent,
  type JobEventKind,
  type EventFilter,
  type EventPublishProblem,
} from './events.js';
export {
  WAKE_KIND,
  ROLL_CALL_KIND,
  CANCEL_KIND,
  CONTROL_KIND,
  QUORUM_KIND,
  MAX_CANCEL_IDS,
  MAX_THROTTLE_MS,
  isMemberProfile,
  type CancelBroadcast,
  type ControlBroadcast,
  type ThrottleRule,
  type MemberProfile,
  type QueueProfile,
} from './quorum.js';
export { requestGlobal, isRetriable, globalApi, GLOBAL_REQUEST_TIMEOUT_MS, type GlobalRequest, type GlobalApi } from './global-api.js';
