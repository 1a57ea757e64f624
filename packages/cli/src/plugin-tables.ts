/**
 * The tables of the node plugins the CLI's node runs (workflows, flows, processes). A node creates them when
 * it starts; `partita migrate` and the workflow commands create them too, so that `partita deploy` on
 * a fresh schema works before any node ran there (as connect() does for the core's tables).
 */
import { fileURLToPath } from 'node:url';
import type { Logger } from '@partita/core';
import type { Client } from '@partita/client';
import type { NodePlugin } from '@partita/runtime';

/** The plugins whose migrations belong to a CLI node, whatever its config mounts. */
export async function pluginsWithTables(): Promise<NodePlugin[]> {
  const { workflowsPlugin, flowsPlugin } = await import('@partita/workflows');
  const { processesPlugin } = await import('@partita/processes');
  return [workflowsPlugin(), flowsPlugin(), processesPlugin() as NodePlugin];
}

/** Applies the plugins' migrations that the client's schema has not seen (an advisory lock makes concurrent runs take turns). */
export async function migratePlugins(client: Client, plugins: NodePlugin[], logger?: Logger): Promise<void> {
  const { clientStore } = await import('@partita/client/internal');
  const { migrate } = await import('@partita/postgres');
  const store = clientStore(client) as unknown as { pool: Parameters<typeof migrate>[0]; schema: string };
  const dirs = plugins.flatMap((p) => {
    const dir = p.migrations;
    return dir === undefined ? [] : [{ plugin: p.name, dir: dir instanceof URL ? fileURLToPath(dir) : dir }];
  });
  await migrate(store.pool, store.schema, logger, { plugins: dirs });
}
