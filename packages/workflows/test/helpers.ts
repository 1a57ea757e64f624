import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import { connect, type Client } from '@partita/client';
import { startNode, type NodeOptions, type PartitaNode } from '@partita/runtime';
import { freshSchema, natsUrl, spawnNode, tempDataDir, type SpawnedNode, type TestSchema } from '../../../test/helpers/index.js';
import { compileApp, workflowsPlugin, WorkflowDefinitionError, type WorkflowIssue } from '../src/index.js';

/** Writes files (relative path → text) into a fresh directory removed after the test. */
export async function appDir(t: ExecutionContext, files: Record<string, string>): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'partita-wf-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  for (const [name, text] of Object.entries(files)) {
    await mkdir(dirname(join(dir, name)), { recursive: true });
    await writeFile(join(dir, name), text);
  }
  return dir;
}

/** A workflow node's settings in a test: its `default` queue's concurrency, its poll, and any other node option. */
export type WorkflowNodeOptions = Partial<NodeOptions> & { concurrency: number; pollMs?: number; stopGraceMs?: number };

/**
 * A node on `db` running the workflows plugin (replace `plugins` to give it options) with one
 * `default` queue, on real Postgres and NATS; it stops when the test ends (within `stopGraceMs`).
 */
export async function startWorkflowNode(
  t: ExecutionContext,
  db: TestSchema,
  { concurrency, pollMs = 100, stopGraceMs, ...options }: WorkflowNodeOptions,
): Promise<PartitaNode> {
  const node = await startNode({
    postgres: db.url,
    schema: db.schema,
    nats: await natsUrl(),
    cluster: db.schema.replaceAll('_', '-'),
    dataDir: tempDataDir(db.schema),
    persister: 'postgres',
    partitions: { default: { queues: { default: { concurrency } } } },
    engine: { pollMs },
    plugins: [workflowsPlugin()],
    ...options,
  });
  t.teardown(() => node.stop(stopGraceMs === undefined ? {} : { graceMs: stopGraceMs }));
  return node;
}

/** A client of its own on `db`'s cluster (the node's NATS and Postgres), closed when the test ends. */
export async function workflowClient(t: ExecutionContext, db: TestSchema): Promise<Client> {
  const client = await connect({
    postgres: { connectionString: db.url, max: 2 },
    schema: db.schema,
    nats: await natsUrl(),
    cluster: db.schema.replaceAll('_', '-'),
  });
  t.teardown(() => client.close());
  return client;
}

/**
 * A fresh schema `name_…` and a workflow node on it (startWorkflowNode). Teardowns run last
 * registered first: the node stops, then the schema is dropped; one the test registers after this
 * call (releasing a held job, say) runs before both.
 */
export async function workflowNode(
  t: ExecutionContext,
  name: string,
  options: WorkflowNodeOptions,
): Promise<{ db: TestSchema; node: PartitaNode }> {
  const db = await freshSchema(name);
  t.teardown(() => db.drop());
  return { db, node: await startWorkflowNode(t, db, options) };
}

/** Compiles and returns the issues of the WorkflowDefinitionError it must throw. */
export async function issuesOf(t: ExecutionContext, pathOrYaml: string): Promise<WorkflowIssue[]> {
  const err = await t.throwsAsync(compileApp(pathOrYaml), { instanceOf: WorkflowDefinitionError });
  return err?.issues ?? [];
}

/** A one-graph app as lines; `extra` replaces the graph body. */
export function oneGraph(body: string[]): string {
  return ['app:', '  id: demo', "  version: '1'", '  graphs:', ...body.map((l) => `    ${l}`), ''].join('\n');
}

/**
 * The kill tests' app: trigger → s1 → s2 → s3, each a worker of topic `step` whose job's `n` counts
 * one up on every attempt (so a step run twice shows). `input`: each step's input maps, as YAML
 * (optional); `publishes`: the graph's output topic (optional).
 */
export function counterChain(o: { id: string; subscribes: string; step: string; publishes?: string; input?: string }): string {
  const counter = (id: string) =>
    `        ${id}: { type: worker, topic: ${o.step},${o.input ? ` input: { maps: ${o.input} },` : ''} job: { maps: { n: { '@pipe': [['{$job.data.n}', 0], ['{@conditional.nullish}'], ['{@math.add}', 1]] } } } }`;
  return [
    'app:',
    `  id: ${o.id}`,
    "  version: '1'",
    '  graphs:',
    `    - subscribes: ${o.subscribes}`,
    ...(o.publishes ? [`      publishes: ${o.publishes}`] : []),
    '      activities:',
    '        t1: { type: trigger }',
    counter('s1'),
    counter('s2'),
    counter('s3'),
    '      transitions:',
    '        t1: [{ to: s1 }]',
    '        s1: [{ to: s2 }]',
    '        s2: [{ to: s3 }]',
    '',
  ].join('\n');
}

/**
 * Records every committed activity entry ('enter') and finish ('done') of the schema's workflows. A
 * record that moves (a finished workflow's records go to its expiry day's partition: a delete from
 * the open partition and an insert into the day's, the staged change laid over the row when the move
 * is the transition's own write) takes back the rows its first write recorded, and its insert
 * records them again, with 'done' when it arrives done: a move leaves the count as it was, and the
 * finish that travels with a move counts once.
 */
export async function recordTransitions(s: TestSchema): Promise<void> {
  await s.pool.query(`
    CREATE TABLE "${s.schema}".test_transitions (workflow_id text NOT NULL, activity text NOT NULL, dimension text NOT NULL, kind text NOT NULL);
    CREATE INDEX ON "${s.schema}".test_transitions (workflow_id, activity, dimension, kind);
    CREATE FUNCTION "${s.schema}".test_record_transition() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'DELETE' THEN
        DELETE FROM "${s.schema}".test_transitions WHERE ctid = (
          SELECT ctid FROM "${s.schema}".test_transitions
          WHERE workflow_id = OLD.workflow_id AND activity = OLD.activity AND dimension = OLD.dimension AND kind = 'enter' LIMIT 1);
        IF OLD.state = 'done' THEN
          DELETE FROM "${s.schema}".test_transitions WHERE ctid = (
            SELECT ctid FROM "${s.schema}".test_transitions
            WHERE workflow_id = OLD.workflow_id AND activity = OLD.activity AND dimension = OLD.dimension AND kind = 'done' LIMIT 1);
        END IF;
        RETURN OLD;
      END IF;
      IF TG_OP = 'INSERT' THEN
        INSERT INTO "${s.schema}".test_transitions VALUES (NEW.workflow_id, NEW.activity, NEW.dimension, 'enter');
      END IF;
      IF NEW.state = 'done' AND (TG_OP = 'INSERT' OR OLD.state <> 'done') THEN
        INSERT INTO "${s.schema}".test_transitions VALUES (NEW.workflow_id, NEW.activity, NEW.dimension, 'done');
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_record_transition AFTER INSERT OR UPDATE OR DELETE ON "${s.schema}".wf_activities
      FOR EACH ROW EXECUTE FUNCTION "${s.schema}".test_record_transition();
  `);
}

/**
 * Asserts what recordTransitions recorded: `activities` entries and as many finishes, each of its own
 * activity run (workflow, activity, dimension), so none ran twice.
 */
export async function assertEachTransitionOnce(t: ExecutionContext, s: TestSchema, activities: number, message: string): Promise<void> {
  const { rows } = await s.pool.query(
    `SELECT kind, count(*)::int AS n, count(DISTINCT (workflow_id, activity, dimension))::int AS distinct_n
     FROM "${s.schema}".test_transitions GROUP BY kind ORDER BY kind`,
  );
  t.deepEqual(
    rows,
    [
      { kind: 'done', n: activities, distinct_n: activities },
      { kind: 'enter', n: activities, distinct_n: activities },
    ],
    message,
  );
}

/** Node processes of one test cluster (own schema, NATS, data dir) that a test starts and kills for real. */
export interface NodeProcesses {
  s: TestSchema;
  nats: string;
  cluster: string;
  /** Starts the fixture script as node `nodeId` and waits for its `ready <nodeId>` line. */
  start(nodeId: string): Promise<SpawnedNode>;
  /** A client of the same cluster, closed at teardown. */
  connect(): Promise<Client>;
}

/**
 * The set-up the kill tests share: a fresh schema, the fixture's environment under `prefix`
 * (`<prefix>_PG`, `_SCHEMA`, `_NATS`, `_CLUSTER`, `_NODE_ID`, `_DATA_DIR`, `_STEP_MS`), every node
 * SIGKILLed and the schema dropped at teardown.
 */
export async function nodeProcesses(
  t: ExecutionContext,
  opts: { name: string; script: string; prefix: string; stepMs: number },
): Promise<NodeProcesses> {
  const s = await freshSchema(opts.name.replaceAll('-', '_'));
  const nats = await natsUrl();
  const cluster = s.schema.replaceAll('_', '-');
  const dataDir = tempDataDir(opts.name);
  const nodes: SpawnedNode[] = [];
  const clients: Client[] = [];
  t.teardown(async () => {
    for (const n of nodes) n.kill('SIGKILL');
    for (const c of clients) await c.close();
    await s.drop();
  });
  const p = opts.prefix;
  return {
    s,
    nats,
    cluster,
    async start(nodeId) {
      const n = spawnNode(opts.script, {
        env: {
          [`${p}_PG`]: s.url,
          [`${p}_SCHEMA`]: s.schema,
          [`${p}_NATS`]: nats,
          [`${p}_CLUSTER`]: cluster,
          [`${p}_NODE_ID`]: nodeId,
          [`${p}_DATA_DIR`]: dataDir,
          [`${p}_STEP_MS`]: String(opts.stepMs),
          PARTITA_LOG_LEVEL: 'warn',
        },
      });
      nodes.push(n);
      await n.waitForOutput(`ready ${nodeId}`, { timeoutMs: 90_000 });
      return n;
    },
    async connect() {
      const c = await connect({ postgres: s.url, schema: s.schema, nats, cluster });
      clients.push(c);
      return c;
    },
  };
}
