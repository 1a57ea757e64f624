/**
 * The node's own work in a completion write, without Postgres: store.complete() on a batch of
 * `--batch` plain completions (uuidv7-like ids, a row address each, no result), the statement
 * answered by a stub at once. What is left is what complete() does per job before the wire:
 * ordering the ids, encoding the uuid[] and tid[], the attempts and results texts.
 *
 *   npx tsx bench/complete-prep.ts [--root <tree>] [--batch 2000] [--rounds 12]
 *
 * One line per tree: CPU ns per job, the minimum over the rounds after two (this machine's
 * other load only ever adds). `--root /work/base` for an A/B, alternating runs.
 */
import { randomUUID } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { join } from 'node:path';
import { arg, ROOT } from './lib/script.js';

const BATCH = Number(arg('batch', '2000'));
const ROUNDS = Number(arg('rounds', '12'));
const { complete } = await import(pathToFileURL(join(ROOT, 'packages', 'postgres', 'dist', 'jobs', 'outcomes.js')).href);
const fields = ['not_done', 'partition', 'execution_key'].map((name) => ({ name }));
const ctx = {
  ops: { complete_plain: { name: 'complete_plain', text: '' }, complete_batch: { name: 'complete_batch', text: '' } },
  onePlanPool: { query: async () => ({ fields, rows: [] }) },
  logger: { warn() {} },
};
let t = 0x0190_0000_0000;
// Flat strings, as the driver's rows give them (a template literal would be a cons string).
const id = () => {
  const h = (t++).toString(16).padStart(12, '0');
  return Buffer.from(`${h.slice(0, 8)}-${h.slice(8, 12)}-7${randomUUID().slice(15)}`).toString();
};
const batches = Array.from({ length: 40 }, () =>
  Array.from({ length: BATCH }, (_, i) => ({ id: id(), attempt: 1, result: undefined, tid: `(${(i / 50) | 0},${(i % 50) + 1})` })),
);
// Out of claim order a little, as 32 workers end their jobs.
for (const b of batches)
  for (let i = 0; i + 8 < b.length; i += 8) {
    const j = i + ((Math.random() * 8) | 0);
    [b[i], b[j]] = [b[j]!, b[i]!];
  }
const per: number[] = [];
for (let round = 0; round < ROUNDS; round++) {
  const c0 = process.cpuUsage();
  for (let k = 0; k < 10; k++) for (const b of batches) await complete(ctx, 'node-1', b, undefined, { keyless: true });
  const c = process.cpuUsage(c0);
  if (round >= 2) per.push(((c.user + c.system) * 1000) / (10 * batches.length * BATCH));
}
process.stdout.write(JSON.stringify({ root: ROOT, batch: BATCH, cpuNsPerJobMin: Math.round(Math.min(...per)) }) + '\n');
