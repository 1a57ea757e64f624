/**
 * The workflow half of `partita demo`: the jobs module's `demoWorkflows` are deployed, activated and
 * started on the demo's node; each tick reports the ones that finished, and for one that waits at a
 * hook activity the spec names, the exact `partita hook` command a person answers it with. Nobody
 * answering within --answer-after, the demo sends that hook itself.
 */
import path from 'node:path';
import type { Client } from '@partita/client';
import { ConfigError, describeError } from '@partita/core';
import type { WorkflowApp } from '@partita/workflows';
import { brief, colour, formatDuration, type Io } from '../io.js';
import { statusName } from './workflows.js';

/** One app of the jobs module's `demoWorkflows` export. */
export interface DemoWorkflowSpec {
  /** The app YAML (absolute, or relative to the jobs module's directory). */
  app: string;
  topic: string;
  partition?: string;
  inputs: unknown[];
  /** Hook activities a person answers: the hint sends `{ id, ...data }` on `topic`. */
  hooks?: { activity: string; topic: string; data?: Record<string, unknown> }[];
}

interface Tracked {
  app: WorkflowApp;
  spec: DemoWorkflowSpec;
  id: string;
  label: string;
  status: number;
  finished: boolean;
  /** When the hint was printed (the hook it is for), so it is printed once and answered once. */
  waiting?: { since: number; topic: string; data: Record<string, unknown>; answered: boolean };
}

export interface DemoReport {
  /** A line for people (undefined in --json mode). */
  line?: string;
  /** The same for scripts. */
  event?: Record<string, unknown>;
}

/** The `demoWorkflows` export checked: each entry names its file, topic and inputs. */
export function demoWorkflowSpecs(value: unknown, jobsModule: string, configFile: string): DemoWorkflowSpec[] {
  if (value === undefined) return [];
  const list = typeof value === 'function' ? (value as () => unknown)() : value;
  const problem = (message: string) =>
    new ConfigError([{ file: configFile, path: 'jobs', message: `${jobsModule}: demoWorkflows ${message}` }]);
  if (!Array.isArray(list)) throw problem('must be an array of { app, topic, inputs, partition?, hooks? }');
  return list.map((s: Partial<DemoWorkflowSpec>, i) => {
    if (typeof s?.app !== 'string' || typeof s.topic !== 'string' || !Array.isArray(s.inputs))
      throw problem(`[${i}] needs app (the YAML file), topic and inputs (an array)`);
    return { ...s, app: path.resolve(path.dirname(jobsModule), s.app) } as DemoWorkflowSpec;
  });
}

export class WorkflowDemo {
  private readonly tracked: Tracked[] = [];

  private constructor(
    private readonly io: Io,
    /** How the hint calls the CLI, e.g. `npx partita` plus `-c FILE` when the config is not the default one. */
    private readonly cli: { command: string; configArgs: string },
    private readonly answerAfterMs: number,
  ) {}

  /** Deploys and activates each app, starts its inputs; `say` reports what was done. */
  static async start(
    client: Client,
    specs: DemoWorkflowSpec[],
    opts: { io: Io; cli: { command: string; configArgs: string }; answerAfterMs: number; say: (line: string) => void },
  ): Promise<WorkflowDemo> {
    const demo = new WorkflowDemo(opts.io, opts.cli, opts.answerAfterMs);
    const { app, compileApp } = await import('@partita/workflows');
    for (const spec of specs) {
      const compiled = await compileApp(spec.app);
      const handle = app(client, compiled.id, spec.partition ? { partition: spec.partition } : {});
      const { id, version } = await handle.deploy(spec.app);
      await handle.activate(version);
      for (const input of spec.inputs) {
        const wfId = await handle.pub(spec.topic, input);
        const label = typeof (input as { orderId?: unknown })?.orderId === 'string' ? (input as { orderId: string }).orderId : '';
        demo.tracked.push({ app: handle, spec, id: wfId, label, status: -1, finished: false });
      }
      opts.say(
        `  workflows: deployed ${id} version ${version} (${path.relative(opts.io.cwd, spec.app) || spec.app}), activated it, started ${spec.inputs.length}× ${spec.topic}`,
      );
    }
    return demo;
  }

  get total(): number {
    return this.tracked.length;
  }

  get ids(): string[] {
    return this.tracked.map((t) => t.id);
  }

  /** Reads every unfinished workflow once; returns what changed. */
  async poll(): Promise<{ finished: number; failed: number; running: number; reports: DemoReport[] }> {
    const reports: DemoReport[] = [];
    for (const t of this.tracked) {
      if (t.finished) continue;
      try {
        t.status = await t.app.getStatus(t.id);
      } catch (err) {
        reports.push({ line: `  (could not read workflow ${t.id}: ${describeError(err).message})` });
        continue;
      }
      if (t.status === 0 || t.status < -1) {
        t.finished = true;
        reports.push(await this.finishedReport(t));
      } else if (t.status > 0) reports.push(...(await this.waitingReports(t)));
    }
    const finished = this.tracked.filter((t) => t.finished).length;
    const failed = this.tracked.filter((t) => t.finished && t.status !== 0).length;
    return { finished, failed, running: this.tracked.length - finished, reports };
  }

  private head(t: Tracked): string {
    return `${t.spec.topic.padEnd(15)} ${(t.label || t.app.id).padEnd(17)} …${t.id.slice(-8)}`;
  }

  private async finishedReport(t: Tracked): Promise<DemoReport> {
    const state = await t.app.getState(t.spec.topic, t.id);
    const took = state.metadata.ju ? formatDuration(state.metadata.ju.getTime() - state.metadata.jc.getTime()).padStart(7) : '';
    const event = { event: `workflow-${statusName(t.status)}`, app: t.app.id, id: t.id, status: t.status, data: state.data };
    if (t.status === 0)
      return {
        line: `  ${colour(this.io, 'green', '✓')} ${this.head(t)} ${took}  ${colour(this.io, 'dim', brief(state.data, 70))}`,
        event,
      };
    return {
      line: `  ${colour(this.io, 'red', '✗')} ${this.head(t)} ${statusName(t.status)}: see ${this.cliLine(`workflow ${t.app.id} ${t.id}`)}`,
      event,
    };
  }

  /** The hint for a workflow that waits at one of the spec's hook activities (once), and the demo's own answer once it is due. */
  private async waitingReports(t: Tracked): Promise<DemoReport[]> {
    const hooks = t.spec.hooks ?? [];
    if (hooks.length === 0) return [];
    if (t.waiting) {
      if (t.waiting.answered || this.answerAfterMs <= 0 || Date.now() - t.waiting.since < this.answerAfterMs) return [];
      t.waiting.answered = true;
      await t.app.hook(t.waiting.topic, t.waiting.data);
      return [
        {
          line: `  ${colour(this.io, 'yellow', '↪')} ${this.head(t)} nobody answered within ${formatDuration(this.answerAfterMs)}: the demo sent the hook itself`,
          event: { event: 'workflow-hook-sent-by-demo', app: t.app.id, id: t.id, topic: t.waiting.topic },
        },
      ];
    }
    const timeline = await t.app.export(t.id);
    const at = hooks.find((h) => timeline.activities.some((a) => a.activity === h.activity && a.state === 'waiting'));
    if (!at) return [];
    const data = { id: t.id, ...at.data };
    t.waiting = { since: Date.now(), topic: at.topic, data, answered: false };
    const command = this.cliLine(`hook ${t.app.id} ${at.topic} '${JSON.stringify(data)}'`);
    const lines = [
      `  ${colour(this.io, 'cyan', '⏸')} ${this.head(t)} waits at ${at.activity} for a person. Answer it from another terminal:`,
      `      ${colour(this.io, 'bold', command)}`,
      `    (see where it stands: ${this.cliLine(`workflow ${t.app.id} ${t.id}`)})`,
    ];
    if (this.answerAfterMs > 0)
      lines.push(`    nobody answering within ${formatDuration(this.answerAfterMs)}, the demo sends it itself (--answer-after)`);
    return [
      {
        line: lines.join('\n'),
        event: { event: 'workflow-waiting', app: t.app.id, id: t.id, activity: at.activity, topic: at.topic, command },
      },
    ];
  }

  private cliLine(args: string): string {
    return `${this.cli.command} ${args}${this.cli.configArgs}`;
  }

  /** What to try once it is done. */
  tryLines(): string[] {
    const apps = [...new Set(this.tracked.map((t) => t.app.id))];
    const first = this.tracked[0];
    return [
      ...apps.map((a) => `       ${this.cliLine(`workflows ${a}`)}`),
      ...(first ? [`       ${this.cliLine(`workflow ${first.app.id} ${first.id}`)}`] : []),
      ...(first
        ? [
            `       ${this.cliLine(`pub ${first.app.id} ${first.spec.topic} '${JSON.stringify(first.spec.inputs[0])}'${first.spec.partition ? ` -p ${first.spec.partition}` : ''} --wait`)}`,
          ]
        : []),
    ];
  }
}
