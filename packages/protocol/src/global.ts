import type { ThrottleRule } from './quorum.js';

/** Requests a partition's Global serves (the `op` is the bus message kind). */
export type GlobalRequest =
  | { op: 'cancelJob'; id: string }
  | { op: 'isCancelled'; id: string }
  | { op: 'queueKeyTaken'; key: string }
  | { op: 'releaseQueueKey'; key: string }
  | { op: 'executionKeyHeld'; key: string }
  | { op: 'releaseExecutionKey'; key: string }
  | { op: 'pause'; queue: string }
  | { op: 'resume'; queue: string }
  | { op: 'pausedQueues' }
  | { op: 'throttle'; rule: ThrottleRule }
  | { op: 'control' }
  | { op: 'snapshot' };
