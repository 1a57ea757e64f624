/**
 * The workflow commands (deploy, activate, pub, hook, interrupt, workflow, workflows) as real `partita`
 * processes against a real `partita start` node (which loads workflowsPlugin), on real Postgres and
 * NATS, with the quick-start app of config/apps/orders; and the quick start itself (`partita demo`)
 * running its workflows to the end, the approval answered by the `partita hook` command it prints.
 */
import test, { type ExecutionContext } from 'ava';
import fs from 'node:fs/promises';
import path from 'node:path';
import { main, type Io } from '@partita/cli';
import { freshSchema, natsUrl, spawnNode, type SpawnedNode } from '../../../test/helpers/index.js';
import {
  CLI,
  ROOT,
  cliJson as json,
  runCli,
  startCliNode,
  tempDir,
  until,
  writeConfig,
  type CliResult,
} from '../../../test/fixtures/cli.js';

const APP_DIR = path.join(ROOT, 'config', 'apps', 'orders');
const JOBS = path.join(ROOT, 'config', 'jobs.js');

const small = { orderId: 'T-1', customer: 'ada', items: [{ sku: 'book', qty: 2, price: 12.5 }] };
const big = (orderId: string) => ({ orderId, customer: 'grace', items: [{ sku: 'laptop', qty: 1, price: 1299 }] });

interface Cluster {
  config: string;
  appFile: string;
  /** `partita ARGS -c config` as a real process. */
  cli(args: string[]): Promise<CliResult>;
  /** The same through main(argv, io) in this process: the command's code, exit code and output, without a process start each. */
  inProcess(args: string[]): Promise<CliResult>;
}

/** Runs the CLI's main() here, with what it writes captured (the tests' PARTITA_* settings left out, as runCli does). */
async function runInProcess(args: string[]): Promise<CliResult> {
  let stdout = '';
  let stderr = '';
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('PARTITA_') || /^PARTITA_(TEST_|PG_)/.test(k)));
  const io: Io = {
    out: (text) => void (stdout += text),
    err: (text) => void (stderr += text),
    stdoutTTY: false,
    stderrTTY: false,
    env: { ...env, NO_COLOR: '1' },
    cwd: ROOT,
    stdin: process.stdin,
  };
  const code = await main(args, io);
  return { code, signal: null, stdout, stderr };
}

/** A fresh schema, a copy of the orders app (deploy writes its merged JSON beside it), and a `partita start` node. */
async function cluster(t: ExecutionContext, prefix: string, opts: { node?: boolean } = {}): Promise<Cluster> {
  const db = await freshSchema(prefix);
  const tmp = await tempDir(prefix);
  const nats = await natsUrl();
  let node: SpawnedNode | undefined;
  t.teardown(async () => {
    if (node) {
      node.kill('SIGKILL');
      await node.exited;
    }
    await db.drop();
    await tmp.cleanup();
  });
  await fs.cp(APP_DIR, path.join(tmp.dir, 'orders'), { recursive: true, filter: (src) => !path.basename(src).startsWith('.partita.') });
  const config = await writeConfig(tmp.dir, {
    cluster: db.schema.replaceAll('_', '-'),
    postgres: { url: db.url, schema: db.schema },
    nats: { servers: [nats] },
    jobs: JOBS,
    engine: { pollMs: 100 },
    log: { level: 'warn' },
    partitions: { billing: { queues: { default: { concurrency: 8 }, invoices: { concurrency: 2 } } } },
  });
  if (opts.node !== false) node = await startCliNode(config, { onSpawn: (n) => (node = n) });
  return {
    config,
    appFile: path.join(tmp.dir, 'orders', 'app.yaml'),
    cli: (args) => runCli([...args, '-c', config], { timeoutMs: 60_000 }),
    inProcess: (args) => runInProcess([...args, '-c', config]),
  };
}

const waitingAt = async (c: Cluster, id: string, activity: string) =>
  until(
    `workflow ${id} to wait at ${activity}`,
    async () => {
      const r = await c.inProcess(['workflow', 'orders', id, '--json']);
      const w = json<{ timeline: { activities: { activity: string; state: string }[] } }>(r);
      return w.timeline.activities.some((a) => a.activity === activity && a.state === 'waiting') || undefined;
    },
    30_000,
    200,
  );

const stateOf = async (c: Cluster, id: string) =>
  json<{ state: string; status: number; data: Record<string, unknown> }>(await c.inProcess(['workflow', 'orders', id, '--json']));

test.serial('--help lists the workflow commands, each with its usage', async (t) => {
  const top = await runCli(['--help']);
  t.is(top.code, 0);
  for (const c of ['deploy', 'activate', 'pub', 'hook', 'interrupt', 'workflow', 'workflows']) {
    t.regex(top.stdout, new RegExp(`^  ${c} `, 'm'), `lists ${c}`);
    const help = await runInProcess([c, '--help']);
    t.is(help.code, 0);
    t.true(help.stdout.startsWith(`Usage: partita ${c}`), help.stdout);
  }
  const missing = await runInProcess(['pub', 'orders']);
  t.is(missing.code, 2);
  t.regex(missing.stderr, /missing TOPIC/);
});

test.serial('deploy, activate, pub --wait, hook, workflow, workflows and interrupt against a partita start node', async (t) => {
  const c = await cluster(t, 'wfcli');
  // Each command runs once as a real process; repeats and polls go through main() in this process.

  const deployed = await c.cli(['deploy', c.appFile]);
  t.is(deployed.code, 0, deployed.stderr);
  t.regex(deployed.stdout, /^deployed orders version 1$/m);
  await fs.access(path.join(path.dirname(c.appFile), '.partita.orders.1.json'));
  t.deepEqual(json(await c.inProcess(['deploy', c.appFile, '--json'])), { id: 'orders', version: '1' }, 'the same content again: a no-op');
  const activated = await c.cli(['activate', 'orders', '1']);
  t.is(activated.code, 0, activated.stderr);
  t.regex(activated.stdout, /activated orders version 1/);

  // A small order runs to the end on its own: price → charge → ship (child: pack, sleep) → done.
  const out = await c.cli(['pub', 'orders', 'order.placed', JSON.stringify(small), '-p', 'billing', '--wait', '--timeout', '40s']);
  t.is(out.code, 0, out.stderr);
  const output = json<Record<string, unknown>>(out);
  t.like(output, { orderId: 'T-1', customer: 'ada', total: 29.9, outcome: 'shipped' });
  t.regex(String(output.tracking), /^PX/);

  // A big one waits for a person; `partita hook` answers it.
  const pub = await c.cli(['pub', 'orders', 'order.placed', JSON.stringify(big('T-2')), '-p', 'billing', '--search', 'customer=grace']);
  t.is(pub.code, 0, pub.stderr);
  const id = pub.stdout.trim();
  t.regex(id, /^[0-9a-f-]{36}$/);
  await waitingAt(c, id, 'approval');
  const human = await c.cli(['workflow', 'orders', id]);
  t.regex(human.stdout, /^status +running \(1 open activity\)$/m);
  t.regex(human.stdout, /^approval +– +hook +waiting/m);
  const hooked = await c.cli(['hook', 'orders', 'order.approval', JSON.stringify({ id, approved: true, by: 'cli-test' })]);
  t.is(hooked.code, 0, hooked.stderr);
  t.is(hooked.stdout.trim(), id, 'prints the workflow it resumed');
  await until('the approved order to finish', async () => (await stateOf(c, id)).state === 'done' || undefined, 30_000, 200);
  const done = await stateOf(c, id);
  t.like(done.data, { approved: true, approvedBy: 'cli-test', outcome: 'shipped' });
  const timeline = await c.inProcess(['workflow', 'orders', id]);
  for (const a of ['t1', 'price', 'approval', 'charge', 'ship', 'done']) t.regex(timeline.stdout, new RegExp(`^${a} +– +\\w+ +done`, 'm'));

  // Listing: newest first, by status, searchable field and topic.
  const all = json<{ id: string; topic: string; state: string }[]>(await c.inProcess(['workflows', 'orders', '--json']));
  t.is(all.filter((w) => w.topic === 'order.placed').length, 2);
  t.is(all.filter((w) => w.topic === 'order.ship').length, 2, 'the children are listed too');
  t.deepEqual(
    json<{ id: string }[]>(await c.inProcess(['workflows', 'orders', '--status', 'done', '--search', 'customer=grace', '--json'])).map(
      (w) => w.id,
    ),
    [id],
  );
  t.deepEqual(json(await c.inProcess(['workflows', 'orders', '--status', 'running,pending', '--json'])), []);
  t.is(json<unknown[]>(await c.inProcess(['workflows', 'orders', '--topic', 'order.ship', '--limit', '1', '--json'])).length, 1);
  const table = await c.cli(['workflows', 'orders']);
  t.regex(table.stdout, new RegExp(`^${id} +order\\.placed +1 +done `, 'm'));

  // interrupt: a finished workflow is a message (exit 0); a waiting one is interrupted.
  const late = await c.cli(['interrupt', 'orders', id]);
  t.is(late.code, 0, late.stderr);
  t.regex(late.stdout, /had already finished \(done\): nothing to interrupt/);
  t.like(json(await c.inProcess(['interrupt', 'orders', id, '--json'])), { interrupted: false, state: 'done' });
  const id2 = (await c.inProcess(['pub', 'orders', 'order.placed', JSON.stringify(big('T-3')), '-p', 'billing'])).stdout.trim();
  await waitingAt(c, id2, 'approval');
  const stopped = await c.cli(['interrupt', 'orders', id2, '--reason', 'customer cancelled']);
  t.is(stopped.code, 0, stopped.stderr);
  t.is(stopped.stdout.trim(), `interrupted ${id2}`);
  t.like(await stateOf(c, id2), { state: 'interrupted', status: -1_000_000_000 });

  // A hook that finds nobody waiting is kept: said, not an error; a workflow that waits later takes it.
  const id3 = '0bd7d7d4-0000-4000-8000-000000000003';
  const kept = await c.cli(['hook', 'orders', 'order.approval', JSON.stringify({ id: id3, approved: false })]);
  t.is(kept.code, 0, kept.stderr);
  t.regex(kept.stdout, /no workflow of orders was waiting for order\.approval.*the signal is kept/);
  t.deepEqual(json(await c.inProcess(['hook', 'orders', 'order.approval', JSON.stringify({ id: 'nobody', approved: true }), '--json'])), {
    id: null,
    kept: true,
  });
  t.is((await c.inProcess(['pub', 'orders', 'order.placed', JSON.stringify(big('T-4')), '-p', 'billing', '--id', id3])).stdout.trim(), id3);
  await until('the early rejection to reach T-4', async () => (await stateOf(c, id3)).state === 'done' || undefined, 30_000, 200);
  t.like((await stateOf(c, id3)).data, { approved: false, outcome: 'rejected' });
});

test.serial('bad input: JSON arguments, unknown app, version and topic, schemas, YAML problems, version conflicts', async (t) => {
  const c = await cluster(t, 'wfclibad', { node: false });

  // YAML problems: file:line:key (all of them), before any connection; --json lists them.
  const broken = path.join(path.dirname(c.appFile), 'graphs', 'order.yaml');
  const good = await fs.readFile(broken, 'utf8');
  await fs.writeFile(broken, good.replace('type: worker', 'type: wroker').replace(/to: ship$/m, 'to: shipp'));
  const bad = await c.cli(['deploy', c.appFile]); // a real process: the exit code as a shell sees it
  t.is(bad.code, 2);
  t.regex(bad.stderr, /invalid workflow app \(2 problems\)/);
  t.regex(bad.stderr, /graphs\/order\.yaml:13:activities\.price\.type: unknown activity type "wroker" \(did you mean worker\?\)/);
  t.regex(bad.stderr, /graphs\/order\.yaml:98:transitions\.charge\[0\]\.to: transition to shipp/);
  const badJson = await c.inProcess(['deploy', c.appFile, '--json']);
  const problems = JSON.parse(badJson.stderr).error.problems as { file: string; line: number; key: string }[];
  t.deepEqual(
    problems.map((p) => [path.basename(p.file), p.line, p.key]),
    [
      ['order.yaml', 13, 'activities.price.type'],
      ['order.yaml', 98, 'transitions.charge[0].to'],
    ],
  );
  const syntax = path.join(path.dirname(c.appFile), 'broken.yaml');
  await fs.writeFile(syntax, "app:\n  id: orders\n  version: '9'\n  graphs: [ {\n");
  const s = await c.inProcess(['deploy', syntax]);
  t.is(s.code, 2);
  t.regex(s.stderr, /broken\.yaml:5:\(root\): YAML syntax error at line 5/);
  const none = await c.inProcess(['deploy', path.join(path.dirname(c.appFile), 'missing.yaml')]);
  t.is(none.code, 2);
  t.regex(none.stderr, /missing\.yaml:1:\(root\): cannot read the app file/);

  // Deployed, then the same version with other content: a conflict.
  await fs.writeFile(broken, good);
  t.is((await c.inProcess(['deploy', c.appFile])).code, 0);
  await fs.writeFile(broken, good.replace('expire: 3600', 'expire: 60'));
  const conflict = await c.inProcess(['deploy', c.appFile]);
  t.is(conflict.code, 5);
  t.regex(conflict.stderr, /app orders version 1 is already deployed with other content.*give the app a new version/);

  const noVersion = await c.inProcess(['activate', 'orders', '7']);
  t.is(noVersion.code, 3);
  t.regex(noVersion.stderr, /app orders has no version 7: deploy it first/);
  const inactive = await c.inProcess(['pub', 'orders', 'order.placed', JSON.stringify(small)]);
  t.is(inactive.code, 2);
  t.regex(inactive.stderr, /app orders has no active version, so nothing subscribes to order\.placed/);
  t.is((await c.inProcess(['activate', 'orders', '1'])).code, 0);

  // Independent of each other: run side by side.
  const [
    badData,
    badHook,
    unknownApp,
    unknownTopic,
    unknownHookTopic,
    noPartition,
    input,
    hookData,
    unknownId,
    unknownInterrupt,
    hookStatus,
    hookCode,
  ] = await Promise.all([
    c.inProcess(['pub', 'orders', 'order.placed', '{"orderId": ']),
    c.inProcess(['hook', 'orders', 'order.approval', "{id: 'x'}"]),
    c.inProcess(['pub', 'shipping', 'order.placed', '{}']),
    c.inProcess(['pub', 'orders', 'order.cancelled', '{}', '--json']),
    c.inProcess(['hook', 'orders', 'order.approved', '{}']),
    c.inProcess(['pub', 'orders', 'order.placed', JSON.stringify(small)]),
    c.inProcess(['pub', 'orders', 'order.placed', '{"orderId":"x","items":[]}']),
    c.inProcess(['hook', 'orders', 'order.approval', '{"id":"x"}']),
    c.inProcess(['workflow', 'orders', 'no-such-workflow']),
    c.inProcess(['interrupt', 'orders', 'no-such-workflow']),
    c.inProcess(['hook', 'orders', 'order.approval', '{"id":"x","approved":true}', '--status', 'maybe']),
    c.inProcess(['hook', 'orders', 'order.approval', '{"id":"x","approved":true}', '--status', 'pending', '--code', '200']),
  ]);
  t.is(badData.code, 2);
  t.regex(badData.stderr, /the DATA \(the workflow input, 3rd\) argument must be JSON/);
  t.is(badHook.code, 2);
  t.regex(badHook.stderr, /the DATA \(the hook data, 3rd\) argument must be JSON/);
  t.is(unknownApp.code, 2);
  t.regex(unknownApp.stderr, /app shipping has no active version/);
  t.is(unknownTopic.code, 2);
  t.like(JSON.parse(unknownTopic.stderr).error, { code: 'UNKNOWN_TOPIC' });
  t.regex(
    JSON.parse(unknownTopic.stderr).error.message,
    /no graph of app orders version 1 subscribes to order\.cancelled \(topics: order\.placed, order\.ship\)/,
  );
  t.is(unknownHookTopic.code, 2);
  t.regex(unknownHookTopic.stderr, /order\.approved/);
  t.is(noPartition.code, 2);
  t.regex(noPartition.stderr, /partition "default" is not declared.*; or start the workflow in one of them with -p\/--partition NAME/);
  t.is(input.code, 2);
  t.regex(input.stderr, /customer: the input of order\.placed must have required property 'customer'/);
  t.is(hookData.code, 2);
  t.regex(hookData.stderr, /approved: the data of hook order\.approval must have required property 'approved'/);
  t.is(unknownId.code, 3);
  t.regex(unknownId.stderr, /workflow no-such-workflow of app orders was not found/);
  t.is(unknownInterrupt.code, 3);
  t.is(hookStatus.code, 2);
  t.regex(hookStatus.stderr, /--status must be success, pending or error, got "maybe"/);
  t.is(hookCode.code, 2);
  t.regex(hookCode.stderr, /a pending hook answers with code 202/);
  const status = await c.inProcess(['workflows', 'orders', '--status', 'finished']);
  t.is(status.code, 2);
  t.regex(status.stderr, /unknown --status finished; use pending, running, done, interrupted, failed/);
  const search = await c.inProcess(['workflows', 'orders', '--search', 'customer']);
  t.is(search.code, 2);
  t.regex(search.stderr, /--search takes key=value/);
});

/**
 * `partita demo` on a copy of the quick-start config: its jobs and the orders workflows run to the end, the
 * approval sent by the `partita hook` command the demo prints, run as printed. `embedded`: no postgres: in
 * the config (as in config/partita.yaml), so the demo's node starts its own PostgreSQL and the hook command
 * finds it through the data dir.
 */
async function quickStart(t: ExecutionContext, embedded: boolean): Promise<void> {
  const db = embedded ? undefined : await freshSchema('wfclidemo');
  const tmp = await tempDir(embedded ? 'wfclidemo-emb' : 'wfclidemo');
  const dataDir = path.join(tmp.dir, '.partita');
  let demo: SpawnedNode | undefined;
  t.teardown(async () => {
    if (demo?.kill('SIGKILL')) await demo.exited;
    // A demo killed before it stopped leaves its embedded PostgreSQL running: stop it here.
    const pid = Number((await fs.readFile(path.join(dataDir, 'pg', 'postmaster.pid'), 'utf8').catch(() => '')).split('\n')[0]);
    if (pid > 0) {
      try {
        process.kill(pid, 'SIGQUIT');
      } catch {
        /* not running */
      }
    }
    await db?.drop();
    await tmp.cleanup();
  });
  const config = await writeConfig(tmp.dir, {
    cluster: embedded ? 'quick-start' : db!.schema.replaceAll('_', '-'),
    ...(db ? { postgres: { url: db.url, schema: db.schema }, nats: { servers: [await natsUrl()] } } : {}),
    dataDir,
    jobs: JOBS,
    log: { level: 'warn' },
    partitions: {
      billing: { queues: { default: { concurrency: 10 }, invoices: { concurrency: 4 } } },
      emails: { queues: { default: { concurrency: 20 } } },
    },
  });
  demo = spawnNode(CLI, {
    args: ['demo', '-c', config, '--json', '--answer-after', '0', '--timeout', '150s'],
    env: { NO_COLOR: '1' },
  });
  const waiting = await demo.waitForOutput(/\{"event":"workflow-waiting".*\}\n/, { timeoutMs: 120_000 });
  const event = JSON.parse(String(waiting).trim()) as { id: string; topic: string; command: string };
  t.is(event.topic, 'order.approval');
  const printed = /^npx partita hook orders order\.approval '(.*)' -c (.*)$/.exec(event.command);
  t.truthy(printed, event.command);
  t.is(path.resolve(ROOT, printed![2]!), config);
  // Run the command as printed (what a person pastes), from the directory the -c path is relative to.
  const answered = await runCli(['hook', 'orders', 'order.approval', printed![1]!, '-c', printed![2]!]);
  t.is(answered.code, 0, answered.stderr);
  t.is(answered.stdout.trim(), event.id);
  const exit = await demo.exited;
  const lines = demo
    .output()
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, any>);
  t.is(exit.code, 0, demo.output());
  const summary = lines.find((l) => l.event === 'summary')!;
  t.like(summary, { jobs: 18, workflows: 3, failed: 0, finished: 21 });
  const done = lines.filter((l) => l.event === 'workflow-done');
  t.is(done.length, 3);
  t.like(done.find((l) => l.id === event.id)?.data, { orderId: 'A-1002', approved: true, approvedBy: 'you', outcome: 'shipped' });
  t.false(
    lines.some((l) => l.event === 'workflow-hook-sent-by-demo'),
    'with --answer-after 0 the demo never answers itself',
  );
}

test.serial('the quick start: partita demo runs the orders app to the end, its approval answered by the partita hook it prints', (t) =>
  quickStart(t, false),
);

test.serial('the quick start on the embedded PostgreSQL (no postgres: configured, as npm start from a fresh clone)', (t) =>
  quickStart(t, true),
);
