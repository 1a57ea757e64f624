import { readFileSync } from 'node:fs';
import { helpText, parse } from './args.js';
import type { Command } from './command.js';
import { cancel, enqueue, job, jobs, migrate, retry, status } from './commands/jobs.js';
import { pause, paused, resume, rollCall, throttle } from './commands/control.js';
import { schedule, schedulesList } from './commands/schedules.js';
import { processesList, processShow } from './commands/processes.js';
import { start } from './commands/start.js';
import { demo } from './commands/demo.js';
import { dashboard } from './commands/dashboard.js';
import { activate, deploy, hook, interrupt, pub, workflow, workflowsList } from './commands/workflows.js';
import { codeOf, EXIT, EXIT_CODES_HELP, exitCodeOf, messageOf, UsageError } from './errors.js';
import { eprintln, processIo, type Io } from './io.js';

export const COMMANDS: Command[] = [
  start,
  demo,
  enqueue,
  status,
  job,
  jobs,
  cancel,
  retry,
  pause,
  resume,
  paused,
  throttle,
  rollCall,
  schedulesList,
  schedule,
  processesList,
  processShow,
  deploy,
  activate,
  pub,
  hook,
  interrupt,
  workflow,
  workflowsList,
  migrate,
  dashboard,
];

function version(): string {
  try {
    return (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
  } catch {
    return 'unknown';
  }
}

export function mainHelp(): string {
  const width = Math.max(...COMMANDS.map((c) => c.name.length));
  return `partita ${version()} — run and operate a Partita cluster (durable jobs and workflows on Postgres + NATS)

Usage: partita <command> [arguments] [options]

Commands:
${COMMANDS.map((c) => `  ${c.name.padEnd(width)}  ${c.summary}`).join('\n')}

Run \`partita <command> --help\` for a command's arguments and options.

Every command that talks to a cluster takes the connection from a node config file:
-c/--config FILE, else $PARTITA_CONFIG, else ./partita.yaml or ./config/partita.yaml. --postgres URL
(or $PARTITA_POSTGRES_URL) and --schema override it. When the config has no postgres: (embedded
default), commands reach the embedded PostgreSQL of the node that runs with that config.
--json prints machine-readable output on stdout and errors as JSON on stderr.

${EXIT_CODES_HELP}
`;
}

function closest(name: string): string | undefined {
  let best: { name: string; d: number } | undefined;
  for (const c of COMMANDS) {
    const d = distance(name, c.name);
    if (d <= 2 && (!best || d < best.d)) best = { name: c.name, d };
  }
  return best?.name;
}

function distance(a: string, b: string): number {
  const dp = Array.from({ length: a.length + 1 }, (_, i) => [i, ...Array(b.length).fill(0)] as number[]);
  for (let j = 1; j <= b.length; j++) dp[0]![j] = j;
  for (let i = 1; i <= a.length; i++)
    for (let j = 1; j <= b.length; j++)
      dp[i]![j] = Math.min(dp[i - 1]![j]! + 1, dp[i]![j - 1]! + 1, dp[i - 1]![j - 1]! + (a[i - 1] === b[j - 1] ? 0 : 1));
  return dp[a.length]![b.length]!;
}

/** Runs the CLI; resolves with the exit code (long-running commands resolve when they stop). */
export async function main(argv: string[], io: Io = processIo()): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    const target = name === 'help' ? rest[0] : undefined;
    const cmd = target ? COMMANDS.find((c) => c.name === target) : undefined;
    if (target && !cmd) {
      eprintln(io, `partita: unknown command "${target}"; run \`partita --help\` for the list`);
      return EXIT.USAGE;
    }
    io.out(cmd ? helpText(cmd) : mainHelp());
    return name === undefined ? EXIT.USAGE : EXIT.OK;
  }
  if (name === '--version' || name === '-V' || name === 'version') {
    io.out(`${version()}\n`);
    return EXIT.OK;
  }
  const cmd = COMMANDS.find((c) => c.name === name);
  if (!cmd) {
    const hint = closest(name);
    eprintln(io, `partita: unknown command "${name}"${hint ? `; did you mean "${hint}"?` : ''} Run \`partita --help\` for the list.`);
    return EXIT.USAGE;
  }
  const json = rest.includes('--json');
  try {
    const { values, positionals } = parse(cmd, rest);
    if (values.help === true) {
      io.out(helpText(cmd));
      return EXIT.OK;
    }
    return await cmd.run({ io, values, positionals, json: values.json === true, spec: cmd });
  } catch (err) {
    const code = exitCodeOf(err);
    const message = messageOf(err);
    if (json) {
      const problems = (err as { problems?: unknown }).problems ?? (err as { issues?: unknown }).issues;
      io.err(JSON.stringify({ error: { code: codeOf(err), exitCode: code, message, ...(problems ? { problems } : {}) } }) + '\n');
    } else {
      eprintln(io, `partita ${cmd.name}: ${message}`);
      if (err instanceof UsageError) eprintln(io, `Run \`partita ${err.command ?? cmd.name} --help\` for usage.`);
      if (code === EXIT.ERROR && io.env.PARTITA_DEBUG && err instanceof Error && err.stack) eprintln(io, err.stack);
    }
    return code;
  }
}
