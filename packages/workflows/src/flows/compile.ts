/**
 * A flow compiles to one workflow app: the main graph runs the chain of stages from the first queue
 * (each `nextQueue` a transition), each child queue's chain is a graph of its own, and a stage with
 * children is followed by one array fan-out `await` per child queue (the children's params are the
 * stage worker's output), joined before the next stage. A stage is a `worker` activity whose job type
 * (and job queue) is derived from flow and queue, so its claims, retries and timeouts are the job
 * engine's. Every stage writes the state merge into the workflow data in its transition.
 */
import { createHash } from 'node:crypto';
import { FlowDefinitionError } from './errors.js';

export interface FlowQueueOptions<LookupKey extends string = string> {
  name: string;
  /** Params attributes indexed for getJobsByKey (string/number: one key; array: one per element). */
  lookupAttributes?: LookupKey[];
  nextQueue?: string;
  children?: { queue: string }[];
  /** Attempts of this stage's job before the flow fails (default 1). */
  maxAttempts?: number;
  /** Delay between attempts (the job engine's backoff). */
  backoff?: { baseMs: number; maxMs: number };
  timeoutMs?: number;
}

// So that a stage's job queue (`flow-<name>--<queue>`) fits the job engine's 64 characters.
const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,23}$/;
const QUEUE = /^[A-Za-z0-9_-]{1,32}$/;

export type QueueRole = 'plain' | 'parent' | 'child';

export interface CompiledFlow {
  appId: string;
  version: string;
  /** The app as YAML (flow-style JSON under `app:`), what deploy() takes. */
  yaml: string;
  mainTopic: string;
  /** Queue name → its role and where it sits. */
  queues: Map<string, { role: QueueRole; graph: string; options: FlowQueueOptions }>;
  /** Activity id → the stage (queue) it belongs to. */
  stageOf: Map<string, string>;
  /** Child queue → the data key its fan-in writes the children's records to, and the ids. */
  childKeys: Map<string, { items: string; ids: string }>;
  /** Graph topic → the first queue of its chain. */
  rootOf: Map<string, string>;
}

export const jobTypeOf = (flow: string, queue: string) => `flow.${flow}.${queue}`;
export const jobQueueOf = (flow: string, queue: string) => `flow-${flow}--${queue}`;
const stageActivity = (queue: string) => `q_${queue}`;
const fanActivity = (queue: string, i: number) => `f_${queue}_${i}`;
/**
 * The id the executor gives the `index`th child of a parent stage's fan-out number `fan`: its fan-out
 * ids are `<workflow>-<activity><dimension>-<index>`, and a flow's activities run in dimension ''.
 */
export const childIdOf = (parentId: string, parentQueue: string, fan: number, index: number) =>
  `${parentId}-${fanActivity(parentQueue, fan)}-${index}`;
export const childItemsKey = (queue: string) => `children__${queue}`;
export const childIdsKey = (queue: string) => `childIds__${queue}`;

export function checkFlowName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || !NAME.test(name))
    throw new FlowDefinitionError(
      String(name),
      'the name must be 1-24 letters, digits, "_" or "-", starting with a letter (it names the workflow app and the job types)',
      'name',
    );
}

export function compileFlow(name: string, queues: readonly FlowQueueOptions[], expireS: number): CompiledFlow {
  checkFlowName(name);
  if (!Array.isArray(queues) || queues.length === 0) throw new FlowDefinitionError(name, 'queues must list at least one queue');
  const byName = new Map<string, FlowQueueOptions>();
  queues.forEach((q, i) => {
    if (!q || typeof q.name !== 'string' || !QUEUE.test(q.name))
      throw new FlowDefinitionError(
        name,
        `queue ${JSON.stringify(q?.name)} needs a name of 1-32 letters, digits, "_" or "-"`,
        `queues.${i}.name`,
      );
    if (byName.has(q.name)) throw new FlowDefinitionError(name, `queue ${q.name} is listed twice`, `queues.${i}.name`);
    if (q.maxAttempts !== undefined && !(Number.isInteger(q.maxAttempts) && q.maxAttempts >= 1))
      throw new FlowDefinitionError(name, `queue ${q.name}: maxAttempts must be an integer ≥ 1`, `queues.${i}.maxAttempts`);
    byName.set(q.name, q);
  });
  for (const [i, q] of queues.entries()) {
    if (q.nextQueue !== undefined && !byName.has(q.nextQueue))
      throw new FlowDefinitionError(
        name,
        `queue ${q.name}: nextQueue ${q.nextQueue} is not one of the flow's queues`,
        `queues.${i}.nextQueue`,
      );
    for (const c of q.children ?? [])
      if (!byName.has(c?.queue))
        throw new FlowDefinitionError(
          name,
          `queue ${q.name}: child queue ${c?.queue} is not one of the flow's queues`,
          `queues.${i}.children`,
        );
  }

  const roles = new Map<string, { role: QueueRole; graph: string; options: FlowQueueOptions }>();
  const mainTopic = name;
  const stageOf = new Map<string, string>();
  const childKeys = new Map<string, { items: string; ids: string }>();
  const graphs: unknown[] = [];
  // Graph roots: the first queue, then every child queue (a child chain may have stages of its own).
  const roots: { queue: string; topic: string; child: boolean }[] = [{ queue: queues[0]!.name, topic: mainTopic, child: false }];
  const childRoots = new Set<string>();
  for (const q of queues) for (const c of q.children ?? []) childRoots.add(c.queue);
  for (const c of childRoots) roots.push({ queue: c, topic: `${name}.${c}`, child: true });
  if (childRoots.has(queues[0]!.name))
    throw new FlowDefinitionError(name, `the first queue ${queues[0]!.name} cannot also be a child queue`);
  // Children may have children (a child chain's stage fans out in turn), but no child queue may be
  // reached again below itself: its jobs would nest without end.
  const below = (queue: string): string[] => {
    const out: string[] = [];
    const seen = new Set<string>();
    for (let q: string | undefined = queue; q !== undefined && !seen.has(q); q = byName.get(q)!.nextQueue) {
      seen.add(q);
      for (const c of byName.get(q)!.children ?? []) out.push(c.queue);
    }
    return out;
  };
  for (const root of childRoots) {
    const stack = below(root);
    const visited = new Set<string>();
    while (stack.length > 0) {
      const c = stack.pop()!;
      if (c === root)
        throw new FlowDefinitionError(
          name,
          `child queue ${root} is reached again from its own children; children may nest, but not into a queue above them`,
        );
      if (visited.has(c)) continue;
      visited.add(c);
      stack.push(...below(c));
    }
  }

  for (const root of roots) {
    const activities: Record<string, unknown> = {};
    const transitions: Record<string, { to: string }[]> = {};
    const trigger = 't';
    activities[trigger] = {
      type: 'trigger',
      job: {
        maps: {
          params: `{${trigger}.output.data.params}`,
          state: `{${trigger}.output.data.params}`,
          ...(root.child ? { parent: `{${trigger}.output.data.parent}`, index: `{${trigger}.output.data.index}` } : {}),
        },
      },
    };
    let from = trigger;
    const seen = new Set<string>();
    for (let queue: string | undefined = root.queue; queue !== undefined; queue = byName.get(queue)!.nextQueue) {
      if (seen.has(queue))
        throw new FlowDefinitionError(name, `the nextQueue chain from ${root.queue} returns to ${queue}; a flow's stages cannot loop`);
      seen.add(queue);
      if (roles.has(queue))
        throw new FlowDefinitionError(
          name,
          `queue ${queue} is reached from two places (${roles.get(queue)!.graph} and ${root.topic}); give each stage its own queue`,
        );
      const options = byName.get(queue)!;
      const children = options.children ?? [];
      roles.set(queue, { role: children.length > 0 ? 'parent' : root.child ? 'child' : 'plain', graph: root.topic, options });
      const act = stageActivity(queue);
      stageOf.set(act, queue);
      activities[act] = {
        type: 'worker',
        topic: jobTypeOf(name, queue),
        queue: jobQueueOf(name, queue),
        emit: true,
        input: { maps: { id: '{$job.metadata.jid}', data: '{$job.data}' } },
        ...(options.maxAttempts && options.maxAttempts > 1 ? { retry: { maximumAttempts: options.maxAttempts } } : {}),
        ...(options.timeoutMs ? { timeout: options.timeoutMs / 1000 } : {}),
        job: {
          maps: {
            state: { '@pipe': [['{$job.data.state}', `{${act}.output.data.patch}`], ['{@object.assign}']] },
            stage: queue,
          },
        },
      };
      (transitions[from] ??= []).push({ to: act });
      if (children.length === 0) {
        from = act;
        continue;
      }
      const fans = children.map((c, i) => {
        const fan = fanActivity(queue, i);
        stageOf.set(fan, queue);
        childKeys.set(c.queue, { items: childItemsKey(c.queue), ids: childIdsKey(c.queue) });
        activities[fan] = {
          type: 'await',
          topic: `${name}.${c.queue}`,
          items: `{${act}.output.data.children.${c.queue}}`,
          input: { maps: { params: '{$item}', index: '{$index}', parent: '{$job.metadata.jid}' } },
          job: { maps: { [childItemsKey(c.queue)]: `{${fan}.output.data.items}`, [childIdsKey(c.queue)]: `{${fan}.output.data.ids}` } },
        };
        (transitions[act] ??= []).push({ to: fan });
        return fan;
      });
      const next = options.nextQueue;
      if (next === undefined) break;
      // Several fan-outs: the next stage is their join (entered when the last one is done).
      for (const fan of fans) (transitions[fan] ??= []).push({ to: stageActivity(next) });
      // The fan-outs already lead to the next stage: the loop's next round adds no edge of its own.
      from = '';
    }
    graphs.push({ subscribes: root.topic, expire: expireS, activities, transitions: stripEmpty(transitions) });
  }
  for (const q of queues)
    if (!roles.has(q.name))
      throw new FlowDefinitionError(name, `queue ${q.name} is never reached: make it the first queue, a nextQueue or a child queue`);

  const body = { id: `flow_${name}`, settings: {}, graphs };
  const version = createHash('sha256').update(JSON.stringify(body)).digest('hex').slice(0, 16);
  const appDef = { ...body, version };
  const rootOf = new Map(roots.map((r) => [r.topic, r.queue]));
  return { appId: body.id, version, yaml: `app: ${JSON.stringify(appDef)}\n`, mainTopic, queues: roles, stageOf, childKeys, rootOf };
}

/**
 * The stage a flow workflow of graph `topic` is in (or ended in), from its data alone: the data names
 * the last stage done (each stage's transition writes it); the one after it is the stage running,
 * except after a parent stage whose children have not all ended yet (their fan-ins write their keys).
 */
export function currentStage(flow: CompiledFlow, topic: string, data: Record<string, unknown>, finished: boolean): string | undefined {
  const done = typeof data.stage === 'string' ? data.stage : undefined;
  if (done === undefined) return flow.rootOf.get(topic);
  if (finished) return done;
  const q = flow.queues.get(done);
  if (!q) return done;
  const children = q.options.children ?? [];
  if (children.some((c) => !(childItemsKey(c.queue) in data))) return done;
  return q.options.nextQueue ?? done;
}

function stripEmpty(t: Record<string, { to: string }[]>): Record<string, { to: string }[]> {
  const out: Record<string, { to: string }[]> = {};
  for (const [k, v] of Object.entries(t)) if (k !== '' && v.length > 0) out[k] = v;
  return out;
}
