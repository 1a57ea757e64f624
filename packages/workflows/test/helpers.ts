import { mkdtemp, mkdir, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { ExecutionContext } from 'ava';
import type { TestSchema } from '../../../test/helpers/index.js';
import { compileApp, WorkflowDefinitionError, type WorkflowIssue } from '../src/index.js';

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

/** Compiles and returns the issues of the WorkflowDefinitionError it must throw. */
export async function issuesOf(t: ExecutionContext, pathOrYaml: string): Promise<WorkflowIssue[]> {
  const err = await t.throwsAsync(compileApp(pathOrYaml), { instanceOf: WorkflowDefinitionError });
  return err?.issues ?? [];
}

/** A one-graph app as lines; `extra` replaces the graph body. */
export function oneGraph(body: string[]): string {
  return ['app:', '  id: demo', "  version: '1'", '  graphs:', ...body.map((l) => `    ${l}`), ''].join('\n');
}

/** Records every committed activity entry ('enter') and finish ('done') of the schema's workflows. */
export async function recordTransitions(s: TestSchema): Promise<void> {
  await s.pool.query(`
    CREATE TABLE "${s.schema}".test_transitions (workflow_id text NOT NULL, activity text NOT NULL, dimension text NOT NULL, kind text NOT NULL);
    CREATE FUNCTION "${s.schema}".test_record_transition() RETURNS trigger LANGUAGE plpgsql AS $$
    BEGIN
      IF TG_OP = 'INSERT' THEN
        INSERT INTO "${s.schema}".test_transitions VALUES (NEW.workflow_id, NEW.activity, NEW.dimension, 'enter');
      END IF;
      IF NEW.state = 'done' AND (TG_OP = 'INSERT' OR OLD.state <> 'done') THEN
        INSERT INTO "${s.schema}".test_transitions VALUES (NEW.workflow_id, NEW.activity, NEW.dimension, 'done');
      END IF;
      RETURN NEW;
    END $$;
    CREATE TRIGGER test_record_transition AFTER INSERT OR UPDATE ON "${s.schema}".wf_activities
      FOR EACH ROW EXECUTE FUNCTION "${s.schema}".test_record_transition();
  `);
}
