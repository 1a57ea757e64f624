/**
 * flowsPlugin(): the flows' table (lookup attributes) on a node. The stages themselves are job
 * definitions (flow.jobs()) run by the workflows plugin's executor, which a flow node needs too.
 */
import { definePlugin, type NodePlugin } from '@partita/runtime';
import { MIGRATIONS_DIR } from './db.js';

export const FLOWS_PLUGIN = 'flows';

export function flowsPlugin(): NodePlugin {
  return definePlugin({ name: FLOWS_PLUGIN, migrations: MIGRATIONS_DIR });
}
