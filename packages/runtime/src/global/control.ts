import type { EngineControl } from '../engine.js';
import type { ThrottleRule } from './types.js';
import type { ControlState } from './global.js';

/**
 * What one engine obeys of a partition's control state. The engine has one throttle, so the most
 * specific matching rule wins (node+queue over node over queue over partition-wide); among equally
 * specific rules a stop (-1) wins, then the longest pause. A queue rule therefore slows the whole
 * engine that serves that queue.
 */
export function engineControl(state: ControlState, nodeId: string, queues: string[]): EngineControl {
  const served = new Set(queues);
  let best: ThrottleRule[] = [];
  let bestRank = -1;
  for (const rule of state.throttles) {
    if (rule.node !== undefined && rule.node !== nodeId) continue;
    if (rule.queue !== undefined && !served.has(rule.queue)) continue;
    const rank = (rule.node !== undefined ? 2 : 0) + (rule.queue !== undefined ? 1 : 0);
    if (rank > bestRank) {
      bestRank = rank;
      best = [rule];
    } else if (rank === bestRank) {
      best.push(rule);
    }
  }
  const throttleMs = best.length === 0 ? 0 : best.some((r) => r.ms < 0) ? -1 : Math.max(...best.map((r) => r.ms));
  return { paused: state.paused.filter((q) => served.has(q)), throttleMs };
}
