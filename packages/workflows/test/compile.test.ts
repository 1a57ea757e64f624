import test from 'ava';
import { cp, readFile, readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  compileApp,
  compileDefinition,
  evaluateMapping,
  writeCompiled,
  type CompiledCondition,
  type MappingContext,
} from '../src/index.js';
import { mappingReads, parseMapping, type MapExpr } from '../src/mapping.js';
import { appDir } from './helpers.js';

const signupDir = fileURLToPath(new URL('./fixtures/signup/', import.meta.url));

test('the signup example compiles: $refs across three files merged, graphs, edges, hooks, cycles', async (t) => {
  const app = await compileApp(join(signupDir, 'app.yaml'));
  t.is(app.id, 'signup');
  t.is(app.version, '1');
  t.deepEqual(app.settings, { reminders: 3 });
  t.deepEqual(
    app.graphs.map((g) => g.subscribes),
    ['user.signup', 'user.remind'],
  );
  const [signup, remind] = app.graphs as [(typeof app.graphs)[0], (typeof app.graphs)[0]];

  // schemas/user.yaml#/signup, referenced from graphs/signup.yaml, referenced from app.yaml
  t.deepEqual(signup.input?.schema, {
    type: 'object',
    properties: { email: { type: 'string' }, plan: { type: 'string', enum: ['free', 'pro'] } },
    required: ['email', 'plan'],
  });
  t.is(signup.publishes, 'user.ready');
  t.is(signup.expire, 3600);
  t.is(signup.trigger, 't1');
  t.deepEqual(signup.order, ['t1', 'score', 'review', 'cool', 'remind', 'done']);

  const a = signup.activities;
  t.is(a['score']!.type, 'worker');
  t.is(a['score']!.topic, 'user.score');
  t.deepEqual(a['score']!.retry, { maximumAttempts: 3, backoffCoefficient: 2, maximumInterval: 10 });
  t.deepEqual(a['cool']!.parents, ['review', 'score']);
  t.deepEqual(a['cool']!.children, ['remind', 'done']);
  t.deepEqual(a['done']!.ancestors, ['cool', 'remind', 'review', 'score', 't1']);
  t.true(a['done']!.emit);
  t.deepEqual(a['review']!.hookTopics, ['user.reviewed']);
  t.deepEqual(a['cool']!.sleep, { kind: 'literal', value: 1 });
  t.is(a['remind']!.topic, 'user.remind');
  t.deepEqual(
    signup.hooks.map((h) => [h.topic, h.to]),
    [['user.reviewed', 'review']],
  );

  t.is(remind.activities['again']!.ancestor, 'loop');
  t.true(remind.activities['loop']!.cycle);
  t.deepEqual(remind.cycleTargets, { loop: ['again'] });
  t.is(remind.expire, 600);
  t.is(remind.publishes, undefined);
});

/** Is this transition taken? (gate and/or over the matches, as the executor will decide.) */
function taken(cond: CompiledCondition | undefined, ctx: MappingContext): boolean {
  if (!cond) return true;
  const results = cond.match.map((m) => evaluateMapping(m.expected, ctx) === evaluateMapping(m.actual, ctx));
  return cond.gate === 'or' ? results.some(Boolean) : results.every(Boolean);
}

test('compiled transition conditions and maps evaluate against workflow data', async (t) => {
  const app = await compileApp(join(signupDir, 'app.yaml'));
  const signup = app.graphs[0]!;
  const score = signup.activities['score']!;
  const ctx = (risk: number, plan: string): MappingContext => ({
    activities: { t1: { output: { data: { email: 'a@x.io', plan } } }, score: { output: { data: { risk } } } },
    app: { settings: app.settings },
  });
  const next = (risk: number) => score.transitions.filter((tr) => taken(tr.conditions, ctx(risk, 'free'))).map((tr) => tr.to);
  t.deepEqual(next(10), ['cool']);
  t.deepEqual(next(50), ['review']);
  const cool = signup.activities['cool']!;
  t.deepEqual(
    cool.transitions.filter((tr) => taken(tr.conditions, ctx(1, 'pro'))).map((tr) => tr.to),
    ['remind'],
  );
  t.deepEqual(evaluateMapping(signup.activities['remind']!.input!.maps!, ctx(1, 'pro')), { email: 'a@x.io', times: 3 });
  t.deepEqual(evaluateMapping(score.job!.maps!, { self: { output: { data: { risk: 42 } } } }), { risk: 42 });
  const rule = signup.hooks[0]!;
  t.true(taken(rule.conditions, { job: { metadata: { jid: 'w1' } }, self: { hook: { data: { id: 'w1' } } } }));
  t.false(taken(rule.conditions, { job: { metadata: { jid: 'w1' } }, self: { hook: { data: { id: 'w2' } } } }));
});

test('mappingReads names what a mapping reads; a context of only that evaluates every mapping of the example the same', async (t) => {
  const pipe = parseMapping({
    x: {
      '@pipe': [
        ['{a.output.data.x}', '{$job.data.y}'],
        ['{@math.add}', '{b.input.data.z}'],
      ],
    },
    y: ['{$self.hook.data.id}', 'plain', 3],
  });
  t.deepEqual(pipe.problems, []);
  t.deepEqual(mappingReads([pipe.expr, undefined]), { activities: ['a', 'b'], self: true, job: true, app: false });
  t.deepEqual(mappingReads([parseMapping({ n: 1, at: '{@date.now}' }).expr]), { activities: [], self: false, job: false, app: false });

  const app = await compileApp(join(signupDir, 'app.yaml'));
  const data = { output: { data: { email: 'a@x.io', plan: 'pro', risk: 60, approved: true, sent: 2, times: 3 } } };
  let checked = 0;
  for (const graph of app.graphs) {
    const full: MappingContext = {
      activities: Object.fromEntries(Object.keys(graph.activities).map((id) => [id, data])),
      self: { ...data, hook: { data: { id: 'w1', approved: true } } },
      job: { data: { sent: 1 }, metadata: { jid: 'w1' } },
      app: { id: app.id, version: app.version, settings: app.settings },
    };
    const exprs: MapExpr[] = [];
    for (const act of Object.values(graph.activities)) {
      for (const e of [act.input?.maps, act.job?.maps, act.sleep]) if (e) exprs.push(e);
      for (const tr of act.transitions) for (const m of tr.conditions?.match ?? []) exprs.push(m.expected, m.actual);
    }
    for (const rule of graph.hooks) for (const m of rule.conditions?.match ?? []) exprs.push(m.expected, m.actual);
    for (const e of exprs) {
      const reads = mappingReads([e]);
      const only: MappingContext = {
        activities: Object.fromEntries(reads.activities.map((id) => [id, full.activities![id]!])),
        self: reads.self ? full.self : undefined,
        job: reads.job ? full.job : undefined,
        app: reads.app ? full.app : undefined,
      };
      t.deepEqual(evaluateMapping(e, only), evaluateMapping(e, full));
      checked += 1;
    }
  }
  t.true(checked > 10);
});

test('the example’s `sent` counter adds its row’s cell (Partita’s @pipe rule) and compiles without warnings', async (t) => {
  const app = await compileApp(join(signupDir, 'app.yaml'));
  t.deepEqual(app.warnings, []);
  const send = app.graphs[1]!.activities['send']!;
  t.deepEqual(evaluateMapping(send.job!.maps!, { job: { data: { sent: 2 } } }), { sent: 3 });
  t.deepEqual(evaluateMapping(send.job!.maps!, { job: { data: {} } }), { sent: 1 });
});

test('writeCompiled writes .partita.<id>.<version>.json beside the source; deterministic; hash tracks content', async (t) => {
  const dir = await appDir(t, {});
  await cp(signupDir, dir, { recursive: true });
  const app = await compileApp(join(dir, 'app.yaml'));
  const path = await writeCompiled(app);
  t.is(path, join(dir, '.partita.signup.1.json'));
  const text = await readFile(path, 'utf8');
  const written = JSON.parse(text);
  t.deepEqual(written, app.merged);
  // Keys sorted at every level.
  t.deepEqual(Object.keys(written.app), ['graphs', 'id', 'settings', 'version']);
  t.deepEqual(Object.keys(written.app.graphs[0]), [...Object.keys(written.app.graphs[0])].sort());
  t.false(text.includes('$ref'));
  t.false((await readdir(dir)).some((f) => f.endsWith('.tmp')));

  // Same content again: same bytes, same hash.
  const again = await compileApp(join(dir, 'app.yaml'));
  t.is(again.hash, app.hash);
  await writeCompiled(again);
  t.is(await readFile(path, 'utf8'), text);

  // The stored JSON compiles to the same app (the executor reloads versions from it).
  const reloaded = compileDefinition(written);
  t.is(reloaded.hash, app.hash);
  t.deepEqual(reloaded.graphs, app.graphs);

  // Same id and version, different content: a different hash (deploy refuses it later).
  const { writeFile } = await import('node:fs/promises');
  await writeFile(
    join(dir, 'schemas', 'user.yaml'),
    (await readFile(join(dir, 'schemas', 'user.yaml'), 'utf8')).replace('[email, plan]', '[email]'),
  );
  const changed = await compileApp(join(dir, 'app.yaml'));
  t.is(changed.version, app.version);
  t.not(changed.hash, app.hash);
});

test('key order and file layout do not change the hash; inline YAML compiles the same app', async (t) => {
  const merged = await compileApp(join(signupDir, 'app.yaml'));
  const inline = `app:\n  version: '1'\n  id: signup\n  settings: { reminders: 3 }\n  graphs: ${JSON.stringify((merged.merged as { app: { graphs: unknown } }).app.graphs)}\n`;
  const app = await compileApp(inline);
  t.is(app.hash, merged.hash);
  t.is(app.source, undefined);
  await t.throwsAsync(writeCompiled(app), { message: /pass \{ dir \}/ });
  const dir = await appDir(t, {});
  t.is(await writeCompiled(app, { dir }), join(dir, '.partita.signup.1.json'));
});

test('$ref merge: graph lists, pointers into files, refs inside refs, and a shared schema used twice', async (t) => {
  const dir = await appDir(t, {
    'app.yaml': [
      'app:',
      '  id: shop',
      '  version: 2',
      '  settings: { $ref: ./settings.yaml }',
      '  graphs:',
      '    - $ref: ./g/order.yaml',
      '',
    ].join('\n'),
    'settings.yaml': 'limit: 5\n',
    'g/order.yaml': [
      'subscribes: order.placed',
      'input: { schema: { $ref: ../s/types.yaml#/order } }',
      'output: { schema: { $ref: ../s/types.yaml#/order } }',
      'activities:',
      '  t1: { type: trigger }',
      '  pay: { $ref: ../a/pay.yaml }',
      'transitions:',
      '  t1: [{ to: pay }]',
      '',
    ].join('\n'),
    'a/pay.yaml': [
      'type: worker',
      'topic: payment.charge',
      'input:',
      '  maps:',
      "    amount: '{t1.output.data.total}'",
      "    limit: '{$app.settings.limit}'",
      '',
    ].join('\n'),
    's/types.yaml': ['order:', '  type: object', '  properties:', '    total: { type: number }', ''].join('\n'),
  });
  const app = await compileApp(join(dir, 'app.yaml'));
  t.is(app.version, '2');
  t.deepEqual(app.settings, { limit: 5 });
  const g = app.graphs[0]!;
  t.deepEqual(g.input?.schema, { type: 'object', properties: { total: { type: 'number' } } });
  t.deepEqual(g.output?.schema, g.input?.schema);
  t.is(g.activities['pay']!.topic, 'payment.charge');
  t.deepEqual(
    evaluateMapping(g.activities['pay']!.input!.maps!, {
      activities: { t1: { output: { data: { total: 9 } } } },
      app: { settings: app.settings },
    }),
    { amount: 9, limit: 5 },
  );
});

test('every activity type compiles into the model the executor reads', async (t) => {
  const yaml = `app:
  id: kinds
  version: '3'
  settings: { pause: 5 }
  graphs:
    - subscribes: order.placed
      publishes: order.done
      persistent: true
      activities:
        t1:
          type: trigger
          stats: { id: '{$self.input.data.orderId}', key: '{$self.input.data.customer}' }
        work:
          type: worker
          topic: order.charge
          queue: payments
          timeout: 30
          retry: { maximumAttempts: 5 }
        child:
          type: await
          topic: order.ship
          await: false
        nap:
          type: hook
          sleep: '{$app.settings.pause}'
        wait:
          type: hook
          cycle: true
          hook: { schema: { type: object, properties: { ok: { type: boolean } } } }
        tell:
          type: signal
          subtype: all
          topic: ship.update
          code: 202
          signal: { maps: { status: shipped } }
          resolver: { maps: { key_name: order, key_value: '{t1.output.data.orderId}' } }
        again:
          type: cycle
          ancestor: wait
        stop:
          type: interrupt
          topic: order.ship
          target: '{child.output.data.job_id}'
          reason: cancelled
          descend: true
      transitions:
        t1: [{ to: work }]
        work:
          - to: child
            conditions: { code: 202 }
          - to: nap
            conditions: { gate: or, match: [{ expected: true, actual: '{work.output.data.ok}' }, { expected: 1, actual: 1 }] }
        nap: [{ to: wait }]
        wait: [{ to: tell }, { to: again, conditions: { match: [{ expected: false, actual: '{wait.hook.data.ok}' }] } }]
        child: [{ to: stop }]
      hooks:
        order.answer: [{ to: wait }]
    - subscribes: order.ship
      activities:
        s1: { type: trigger }
        parked: { type: hook }
      transitions:
        s1: [{ to: parked }]
      hooks:
        ship.update:
          - to: parked
            conditions: { match: [{ expected: '{s1.output.data.order}', actual: '{$self.hook.data.order}' }] }
`;
  const app = await compileApp(yaml);
  const g = app.graphs[0]!;
  const a = g.activities;
  t.true(g.persistent);
  t.deepEqual(Object.keys(a['t1']!.stats!).sort(), ['id', 'key']);
  t.is(evaluateMapping(a['t1']!.stats!['id']!, { self: { input: { data: { orderId: 'o-1' } } } }), 'o-1');
  t.like(a['work'], { topic: 'order.charge', queue: 'payments', timeout: 30, retry: { maximumAttempts: 5 } });
  t.like(a['child'], { type: 'await', topic: 'order.ship', await: false });
  t.is(evaluateMapping(a['nap']!.sleep!, { app: { settings: app.settings } }), 5);
  t.deepEqual(a['wait']!.hook, { schema: { type: 'object', properties: { ok: { type: 'boolean' } } } });
  t.like(a['tell'], { subtype: 'all', topic: 'ship.update', code: 202 });
  t.deepEqual(evaluateMapping(a['tell']!.resolver!.maps!, { activities: { t1: { output: { data: { orderId: 'o-1' } } } } }), {
    key_name: 'order',
    key_value: 'o-1',
  });
  t.like(a['stop'], { type: 'interrupt', topic: 'order.ship', throw: true, descend: true, code: 410 });
  t.is(evaluateMapping(a['stop']!.reason!, {}), 'cancelled');
  t.deepEqual(
    a['work']!.transitions.map((tr) => [tr.to, tr.conditions?.gate, tr.conditions?.code]),
    [
      ['child', 'and', 202],
      ['nap', 'or', undefined],
    ],
  );
  t.deepEqual(g.cycleTargets, { wait: ['again'] });
  t.deepEqual(a['wait']!.hookTopics, ['order.answer']);
  t.deepEqual(app.graphs[1]!.activities['parked']!.hookTopics, ['ship.update']);
  t.deepEqual(app.warnings, []);
});

test('unknown keys on graphs and activities are warnings with a suggestion', async (t) => {
  const yaml = [
    'app:',
    '  id: w',
    "  version: '1'",
    '  graphs:',
    '    - subscribes: w.go',
    '      expires: 10',
    '      activities:',
    '        t1: { type: trigger }',
    '        h1: { type: hook, slep: 3 }',
    '      transitions:',
    '        t1: [{ to: h1 }]',
    '',
  ].join('\n');
  const app = await compileApp(yaml);
  t.deepEqual(
    app.warnings.map((w) => [w.line, w.key, w.hint]),
    [
      [6, 'app.graphs[0].expires', 'did you mean expire?'],
      [9, 'app.graphs[0].activities.h1.slep', 'did you mean sleep?'],
    ],
  );
});

test("HotMesh's activity keys that Partita does not carry out are warnings, not silently dropped", async (t) => {
  const yaml = [
    'app:',
    '  id: w',
    "  version: '1'",
    '  graphs:',
    '    - subscribes: w.go',
    '      activities:',
    '        t1: { type: trigger }',
    '        h1: { type: hook, escalation: { role: admin }, title: Approval }',
    '        s1: { type: signal, topic: w.h, scrub: true }',
    '      transitions:',
    '        t1: [{ to: h1 }, { to: s1 }]',
    '      hooks:',
    '        w.h: [{ to: h1 }]',
    '',
  ].join('\n');
  const app = await compileApp(yaml);
  t.deepEqual(
    app.warnings.map((w) => [w.line, w.key]),
    [
      [8, 'app.graphs[0].activities.h1.escalation'],
      [9, 'app.graphs[0].activities.s1.scrub'],
    ],
  );
  t.regex(app.warnings[0]!.message, /escalation is a HotMesh key that Partita does not carry out/);
});
