import test, { type ExecutionContext } from 'ava';
import { join } from 'node:path';
import { compileApp, type WorkflowIssue } from '../src/index.js';
import { appDir, issuesOf } from './helpers.js';

const APP = ['app:', '  id: demo', "  version: '1'", '  settings: { retries: 2 }', '  graphs:', '    - $ref: ./graph.yaml', ''].join('\n');

/** Writes app.yaml + graph.yaml (and more files) and returns the issues, with file names relative to the dir. */
async function issues(t: ExecutionContext, graph: string[], more: Record<string, string> = {}, app = APP): Promise<WorkflowIssue[]> {
  const dir = await appDir(t, { 'app.yaml': app, 'graph.yaml': graph.join('\n') + '\n', ...more });
  return (await issuesOf(t, join(dir, 'app.yaml'))).map((i) => ({ ...i, file: i.file.slice(dir.length + 1) }));
}

/** Exactly one issue, at file:line:key, whose message matches. */
function one(t: ExecutionContext, found: WorkflowIssue[], where: string, message: RegExp, hint?: RegExp): void {
  t.is(found.length, 1, JSON.stringify(found));
  const i = found[0]!;
  t.is(`${i.file}:${i.line}:${i.key}`, where);
  t.regex(i.message, message);
  if (hint) t.regex(i.hint ?? '', hint);
}

// Lines of graph.yaml are 1-based: the first line of each list is line 1.
const base = (over: Partial<Record<'activities' | 'transitions' | 'head', string[]>> = {}) => [
  ...(over.head ?? ['subscribes: demo.start']),
  'activities:',
  ...(over.activities ?? ['  t1:', '    type: trigger', '  a1:', '    type: worker', '    topic: demo.work']),
  'transitions:',
  ...(over.transitions ?? ['  t1:', '    - to: a1']),
];

test('the base graph is valid', async (t) => {
  const dir = await appDir(t, { 'app.yaml': APP, 'graph.yaml': base().join('\n') });
  const app = await compileApp(join(dir, 'app.yaml'));
  t.deepEqual(app.graphs[0]!.order, ['t1', 'a1']);
});

test('unknown activity type, with a suggestion', async (t) => {
  const found = await issues(t, base({ activities: ['  t1:', '    type: trigger', '  a1:', '    type: wroker', '    topic: demo.work'] }));
  one(t, found, 'graph.yaml:6:activities.a1.type', /unknown activity type "wroker"/, /did you mean worker/);
});

test('transition to a missing activity', async (t) => {
  const found = await issues(t, base({ transitions: ['  t1:', '    - to: a1', '  a1:', '    - to: a9'] }));
  one(t, found, 'graph.yaml:12:transitions.a1[0].to', /transition to a9, which is not an activity/, /did you mean a1/);
});

test('transitions from a missing activity', async (t) => {
  const found = await issues(t, base({ transitions: ['  t1:', '    - to: a1', '  b1:', '    - to: a1'] }));
  one(t, found, 'graph.yaml:11:transitions.b1', /transitions from b1, which is not an activity/);
});

test('a loop through transitions without a cycle activity', async (t) => {
  const found = await issues(
    t,
    base({
      activities: ['  t1:', '    type: trigger', '  a1:', '    type: worker', '    topic: demo.work', '  a2:', '    type: hook'],
      transitions: ['  t1:', '    - to: a1', '  a1:', '    - to: a2', '  a2:', '    - to: a1'],
    }),
  );
  one(t, found, 'graph.yaml:16:transitions.a2[0].to', /loop \(a1 → a2 → a1\)/, /type: cycle, ancestor: a1/);
});

test('a cycle whose ancestor is not marked cycle: true, or is not upstream', async (t) => {
  const acts = (ancestor: string, mark: boolean) => [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: hook',
    ...(mark ? ['    cycle: true'] : []),
    '  a2:',
    '    type: worker',
    '    topic: demo.work',
    '  c1:',
    '    type: cycle',
    `    ancestor: ${ancestor}`,
  ];
  const tr = ['  t1:', '    - to: a1', '  a1:', '    - to: a2', '  a2:', '    - to: c1'];
  one(
    t,
    await issues(t, base({ activities: acts('a1', false), transitions: tr })),
    'graph.yaml:12:activities.c1.ancestor',
    /a1 is not marked `cycle: true`/,
    /add `cycle: true` to activity a1/,
  );
  // x is on another branch: not upstream of c1.
  const branch = [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: hook',
    '    cycle: true',
    '  a2:',
    '    type: worker',
    '    topic: demo.work',
    '  x:',
    '    type: hook',
    '    cycle: true',
    '  c1:',
    '    type: cycle',
    '    ancestor: x',
  ];
  const found = await issues(
    t,
    base({ activities: branch, transitions: ['  t1:', '    - to: a1', '    - to: x', '  a1:', '    - to: a2', '  a2:', '    - to: c1'] }),
  );
  one(t, found, 'graph.yaml:16:activities.c1.ancestor', /cycle ancestor x is not upstream of c1/);
});

test('mapping paths naming no activity, or an activity not upstream', async (t) => {
  const acts = [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: worker',
    '    topic: demo.work',
    '    input:',
    '      maps:',
    "        x: '{t2.output.data.x}'",
    "        y: '{a2.output.data.y}'",
    '  a2:',
    '    type: hook',
  ];
  const found = await issues(t, base({ activities: acts, transitions: ['  t1:', '    - to: a1', '  a1:', '    - to: a2'] }));
  t.is(found.length, 2, JSON.stringify(found));
  t.is(`${found[0]!.file}:${found[0]!.line}:${found[0]!.key}`, 'graph.yaml:10:activities.a1.input.maps.x');
  t.regex(found[0]!.message, /names activity t2, which is not in this graph/);
  t.regex(found[0]!.hint!, /did you mean \{t1\.output\.data\.x\}/);
  t.is(`${found[1]!.file}:${found[1]!.line}:${found[1]!.key}`, 'graph.yaml:11:activities.a1.input.maps.y');
  t.regex(found[1]!.message, /reads activity a2, which is not upstream of a1/);
});

test('mapping paths into app settings that do not exist', async (t) => {
  const acts = [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: worker',
    '    topic: demo.work',
    '    input:',
    '      maps:',
    "        r: '{$app.settings.retrys}'",
  ];
  one(t, await issues(t, base({ activities: acts })), 'graph.yaml:10:activities.a1.input.maps.r', /app settings have no retrys/);
});

test('unknown @pipe function, located at its row', async (t) => {
  const acts = [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: worker',
    '    topic: demo.work',
    '    job:',
    '      maps:',
    '        n:',
    "          '@pipe':",
    "            - ['{t1.output.data.n}', 1]",
    "            - ['{@math.plus}']",
  ];
  one(
    t,
    await issues(t, base({ activities: acts })),
    'graph.yaml:13:activities.a1.job.maps.n.@pipe[1][0]',
    /unknown @pipe function \{@math\.plus\}/,
    /math\.|family/,
  );
});

test('bad JSON Schemas: in the graph and in a $ref’d schema file, located at the bad keyword', async (t) => {
  const head = [
    'subscribes: demo.start',
    'input:',
    '  schema:',
    '    $ref: ./schemas.yaml#/in',
    'output:',
    '  schema:',
    '    type: object',
    '    required: yes',
  ];
  const found = await issues(t, base({ head }), {
    'schemas.yaml': ['in:', '  type: object', '  properties:', '    email:', '      type: strng', ''].join('\n'),
  });
  t.is(found.length, 2, JSON.stringify(found));
  const [outSchema, inSchema] = found.sort((a, b) => (a.file < b.file ? -1 : 1)) as [WorkflowIssue, WorkflowIssue];
  t.is(`${outSchema.file}:${outSchema.line}:${outSchema.key}`, 'graph.yaml:8:output.schema.required');
  t.regex(outSchema.message, /invalid JSON Schema: \/required must be array/);
  t.is(`${inSchema.file}:${inSchema.line}:${inSchema.key}`, 'schemas.yaml:5:in.properties.email.type');
  t.regex(inSchema.message, /invalid JSON Schema/);
});

test('a hook schema that is not a schema', async (t) => {
  const acts = ['  t1:', '    type: trigger', '  a1:', '    type: hook', '    hook:', '      schema: [1, 2]'];
  one(t, await issues(t, base({ activities: acts })), 'graph.yaml:8:activities.a1.hook.schema', /a schema is a JSON Schema mapping/);
});

test('a graph without a trigger; a graph with two', async (t) => {
  one(
    t,
    await issues(t, base({ activities: ['  a1:', '    type: worker', '    topic: demo.work'], transitions: [] })),
    'graph.yaml:2:activities',
    /no trigger activity/,
  );
  const two = await issues(
    t,
    base({
      activities: ['  t1:', '    type: trigger', '  t2:', '    type: trigger', '  a1:', '    type: hook'],
      transitions: ['  t1:', '    - to: a1'],
    }),
  );
  t.truthy(two.find((i) => i.key === 'activities.t2.type' && i.line === 6 && /2 triggers/.test(i.message)));
});

test('duplicate subscribed topics and hook topics across graphs', async (t) => {
  const app = ['app:', '  id: demo', "  version: '1'", '  graphs:', '    - $ref: ./graph.yaml', '    - $ref: ./other.yaml', ''].join('\n');
  const hooked = (sub: string) =>
    [
      `subscribes: ${sub}`,
      'activities:',
      '  t1: { type: trigger }',
      '  h1: { type: hook }',
      'transitions:',
      '  t1: [{ to: h1 }]',
      'hooks:',
      '  demo.signal:',
      '    - to: h1',
      '',
    ].join('\n');
  const dir = await appDir(t, { 'app.yaml': app, 'graph.yaml': hooked('demo.start'), 'other.yaml': hooked('demo.start') });
  const found = (await issuesOf(t, join(dir, 'app.yaml'))).map((i) => `${i.file.slice(dir.length + 1)}:${i.line}:${i.key}: ${i.message}`);
  t.deepEqual(found, [
    'other.yaml:1:subscribes: topic demo.start is already subscribed by graph 0',
    'other.yaml:8:hooks.demo.signal: hook topic demo.signal is already used by graph 0',
  ]);
});

test('match conditions of a bad shape; gate other than and|or', async (t) => {
  const tr = [
    '  t1:',
    '    - to: a1',
    '      conditions:',
    '        gate: xor',
    '        match:',
    '          - expected: true',
    "            actul: '{t1.output.data.ok}'",
  ];
  const found = await issues(t, base({ transitions: tr }));
  t.is(found.length, 2, JSON.stringify(found));
  t.is(`${found[0]!.file}:${found[0]!.line}:${found[0]!.key}`, 'graph.yaml:12:transitions.t1[0].conditions.gate');
  t.regex(found[0]!.message, /gate must be and or or, not "xor"/);
  t.is(`${found[1]!.file}:${found[1]!.line}:${found[1]!.key}`, 'graph.yaml:14:transitions.t1[0].conditions.match[0]');
  t.regex(found[1]!.message, /each match is \{ expected, actual \}/);
  const notList = await issues(
    t,
    base({ transitions: ['  t1:', '    - to: a1', '      conditions:', '        match: { expected: 1, actual: 1 }'] }),
  );
  one(t, notList, 'graph.yaml:12:transitions.t1[0].conditions.match', /match must be a non-empty list/);
});

test('hook rules must target a hook activity; an await topic must be a graph of the app', async (t) => {
  const acts = [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: worker',
    '    topic: demo.work',
    '  c1:',
    '    type: await',
    '    topic: demo.strat',
  ];
  const found = await issues(t, [
    ...base({ activities: acts, transitions: ['  t1:', '    - to: a1', '  a1:', '    - to: c1'] }),
    'hooks:',
    '  demo.hook:',
    '    - to: a1',
  ]);
  const lines = found.map((i) => `${i.file}:${i.line}:${i.key}`);
  t.deepEqual(lines, ['graph.yaml:10:activities.c1.topic', 'graph.yaml:18:hooks.demo.hook[0].to']);
  t.regex(found[0]!.hint!, /did you mean demo\.start/);
  t.regex(found[1]!.message, /hook rule to a1, a worker activity/);
});

test('an activity no transition reaches', async (t) => {
  const acts = ['  t1:', '    type: trigger', '  a1:', '    type: worker', '    topic: demo.work', '  lost:', '    type: hook'];
  one(t, await issues(t, base({ activities: acts })), 'graph.yaml:8:activities.lost', /never reached from the trigger t1/);
});

test('a worker without a topic, a bad retry setting', async (t) => {
  const acts = ['  t1:', '    type: trigger', '  a1:', '    type: worker', '    retry:', '      maximumAttempts: 2.5', '      backoff: 2'];
  const found = await issues(t, base({ activities: acts }));
  t.deepEqual(
    found.map((i) => `${i.line}:${i.key}`),
    ['5:activities.a1', '8:activities.a1.retry.maximumAttempts', '9:activities.a1.retry.backoff'],
  );
  t.regex(found[2]!.hint!, /backoffCoefficient/);
});

test("a signal's status and code: a status it does not know, a code that does not go with its status", async (t) => {
  const signal = (name: string, ...lines: string[]) => [`  ${name}:`, '    type: signal', '    topic: demo.go', ...lines];
  const acts = [
    '  t1:',
    '    type: trigger',
    ...signal('s1', '    status: maybe'),
    ...signal('s2', '    status: pending', '    code: 200'),
    ...signal('s3', '    status: error', '    code: 202'),
    ...signal('s4', '    status: pending', '    code: 202'),
    '  h:',
    '    type: hook',
  ];
  const transitions = [
    '  t1:',
    '    - to: s1',
    '    - to: s2',
    '    - to: s3',
    '    - to: s4',
    '    - to: h',
    'hooks:',
    '  demo.go:',
    '    - to: h',
  ];
  const found = await issues(t, base({ activities: acts, transitions }));
  t.deepEqual(
    found.map((i) => `${i.line}:${i.key}`),
    ['8:activities.s1.status', '13:activities.s2.code', '18:activities.s3.code'],
  );
  t.regex(found[0]!.message, /success, pending .* or error/);
  t.regex(found[1]!.message, /202 is the pending answer/);
});

test('YAML syntax errors name their file and line, in any file of the app', async (t) => {
  const found = await issues(t, ['subscribes: demo.start', 'activities:', '  t1: { type: trigger', '']);
  t.is(found.length, 1);
  t.is(found[0]!.file, 'graph.yaml');
  t.regex(found[0]!.message, /YAML syntax error at line \d+/);
  // Duplicate keys are an error too (js-yaml refuses them).
  const dup = await issues(t, ['subscribes: demo.start', 'subscribes: demo.other', 'activities:', '  t1: { type: trigger }']);
  t.is(dup[0]!.line, 2);
  t.regex(dup[0]!.message, /duplicated mapping key/);
});

test('a $ref to a missing file is reported where the $ref is written', async (t) => {
  const app = ['app:', '  id: demo', "  version: '1'", '  graphs:', '    - $ref: ./graph.yaml', '    - $ref: ./nope.yaml', ''].join('\n');
  const found = await issues(t, base(), {}, app);
  one(t, found, 'app.yaml:6:app.graphs[1].$ref', /cannot follow \$ref.*nope\.yaml/);
});

test('app id and version are checked; a missing app file says so', async (t) => {
  const app = ['app:', '  id: 9lives', '  version: 1 beta', '  graphs:', '    - $ref: ./graph.yaml', ''].join('\n');
  const found = await issues(t, base(), {}, app);
  t.deepEqual(
    found.map((i) => `${i.file}:${i.line}:${i.key}`),
    ['app.yaml:2:app.id', 'app.yaml:3:app.version'],
  );
  const missing = await issuesOf(t, '/nonexistent/dir/app.yaml');
  t.regex(missing[0]!.message, /cannot read the app file/);
});

test('inline YAML problems name <inline> and the line', async (t) => {
  const yaml = [
    'app:',
    '  id: demo',
    "  version: '1'",
    '  graphs:',
    '    - subscribes: demo.start',
    '      activities:',
    '        t1: { type: trigger }',
    '        a1: { type: sleeper }',
    '      transitions:',
    '        t1: [{ to: a1 }]',
    '',
  ].join('\n');
  const found = await issuesOf(t, yaml);
  t.deepEqual(
    found.map((i) => `${i.file}:${i.line}:${i.key}`),
    ['<inline>:8:app.graphs[0].activities.a1.type'],
  );
});

test('every problem is reported at once, sorted by file and line', async (t) => {
  const acts = [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: worker',
    '    topic: demo.work',
    '    input:',
    '      maps:',
    "        x: '{@string.upper}'",
  ];
  const found = await issues(
    t,
    base({
      activities: acts,
      transitions: ['  t1:', '    - to: a1', '      conditions: { gate: nand, match: [{ expected: 1, actual: 1 }] }'],
    }),
  );
  t.deepEqual(
    found.map((i) => i.line),
    [10, 14],
  );
});

test('signal topics name a hook topic of the app; interrupt topics a graph', async (t) => {
  const acts = [
    '  t1:',
    '    type: trigger',
    '  a1:',
    '    type: signal',
    '    topic: demo.hok',
    '  a2:',
    '    type: interrupt',
    '    topic: demo.nope',
    '  h1:',
    '    type: hook',
  ];
  const found = await issues(t, [
    ...base({ activities: acts, transitions: ['  t1:', '    - to: a1', '    - to: a2', '    - to: h1'] }),
    'hooks:',
    '  demo.hook:',
    '    - to: h1',
  ]);
  t.deepEqual(
    found.map((i) => `${i.line}:${i.key}`),
    ['7:activities.a1.topic', '10:activities.a2.topic'],
  );
  t.regex(found[0]!.hint!, /did you mean demo\.hook/);
  t.regex(found[1]!.message, /interrupt topic demo\.nope is subscribed by no graph/);
});

test('a $ref to a missing JSON pointer is reported where the $ref is written', async (t) => {
  const found = await issues(t, base({ head: ['subscribes: demo.start', 'input:', '  schema:', '    $ref: ./schemas.yaml#/nothere'] }), {
    'schemas.yaml': 'in: { type: object }\n',
  });
  one(t, found, 'graph.yaml:4:input.schema.$ref', /cannot follow \$ref.*nothere/);
});

test('every broken $ref is reported at once, each where it is written', async (t) => {
  const app = ['app:', '  id: demo', "  version: '1'", '  graphs:', '    - $ref: ./nope.yaml', '    - $ref: ./graph.yaml', ''].join('\n');
  const graph = [
    'subscribes: demo.start',
    'input:',
    '  schema: { $ref: ./s.yaml#/missing }',
    'output:',
    '  schema: { $ref: ./gone.yaml }',
    'activities:',
    '  t1: { type: trigger }',
  ];
  const found = await issues(t, graph, { 's.yaml': 'a: 1\n' }, app);
  t.deepEqual(
    found.map((i) => `${i.file}:${i.line}:${i.key}`),
    ['app.yaml:5:app.graphs[0].$ref', 'graph.yaml:3:input.schema.$ref', 'graph.yaml:5:output.schema.$ref'],
  );
  t.regex(found[0]!.message, /nope\.yaml/);
  t.regex(found[1]!.message, /#\/missing/);
  t.regex(found[2]!.message, /gone\.yaml/);
});

test('a schema declaring a draft the validator does not carry is an error, not a crash', async (t) => {
  const head = ['subscribes: demo.start', 'input:', '  schema:', '    $schema: https://example.com/my-draft', '    type: object'];
  one(t, await issues(t, base({ head })), 'graph.yaml:3:input.schema', /invalid JSON Schema: no schema with key or ref/, /draft-07/);
});

test('fan-out: items on an await compiles with $item and $index in its input.maps', async (t) => {
  const graph = base({
    activities: [
      '  t1:',
      '    type: trigger',
      '  a1:',
      '    type: await',
      '    topic: demo.start',
      "    items: '{t1.output.data.list}'",
      "    input: { maps: { n: '{$item.n}', whole: '{$item}', at: '{$index}' } }",
    ],
  });
  const dir = await appDir(t, { 'app.yaml': APP, 'graph.yaml': graph.join('\n') });
  const act = (await compileApp(join(dir, 'app.yaml'))).graphs[0]!.activities['a1']!;
  t.like(act.items, { kind: 'path', root: { activity: 't1' }, path: ['output', 'data', 'list'] });
});

test('fan-out: items on another type, $item outside a fan-out, and an items path naming no activity are deploy errors', async (t) => {
  const worker = ['  t1:', '    type: trigger', '  a1:', '    type: worker', '    topic: demo.work'];
  one(
    t,
    await issues(t, base({ activities: [...worker, "    items: '{t1.output.data.list}'"] })),
    'graph.yaml:8:activities.a1.items',
    /items is only read by an await activity/,
    /type: await/,
  );
  one(
    t,
    await issues(t, base({ activities: [...worker, '    input:', '      maps:', "        n: '{$item.n}'"] })),
    'graph.yaml:10:activities.a1.input.maps.n',
    /\$item is defined only in the input.maps of an await with items/,
  );
  const await1 = ['  t1:', '    type: trigger', '  a1:', '    type: await', '    topic: demo.start'];
  one(
    t,
    await issues(t, base({ activities: [...await1, '    input:', '      maps:', "        i: '{$index}'"] })),
    'graph.yaml:10:activities.a1.input.maps.i',
    /\$index is defined only in the input.maps of an await with items/,
  );
  one(
    t,
    await issues(t, base({ activities: [...await1, "    items: '{t2.output.data.list}'"] })),
    'graph.yaml:8:activities.a1.items',
    /names activity t2, which is not in this graph/,
  );
});
