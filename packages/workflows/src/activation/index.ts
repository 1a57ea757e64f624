export {
  runActivation,
  inflightActivations,
  DEFAULT_ACTIVATION_DELAY_MS,
  DEFAULT_ACTIVATION_RETRIES,
  type ActivationOptions,
  type ActivationResult,
} from './activate.js';
export { startActivationMember, type ActivationMember, type ActivationMemberOptions } from './member.js';
export { QuorumNotReachedError, ActivationInProgressError } from './errors.js';
