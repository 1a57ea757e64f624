/**
 * `npm run bench`: Partita and graphile-worker side by side on the same Postgres, one system at a
 * time, each in a fresh schema. Prints one JSON line per system per workload and a ratio line per
 * workload to stdout (also written to bench/results/<timestamp>.jsonl); progress and the summary
 * table go to stderr. See bench/README.md.
 */
import { cpus, totalmem } from 'node:os';
import { fileURLToPath } from 'node:url';
import { performance } from 'node:perf_hooks';
import { parseOptions, USAGE, type BenchOptions } from './lib/options.js';
import { resolveNatsUrl } from './lib/nats.js';
import { adminPool, dropSchema, freshSchemaName, resolvePostgresUrl, serverInfo } from './lib/postgres.js';
import { Probe } from './lib/probe.js';
import { installQueryStats, markAdmin } from './lib/querystats.js';
import { Reporter } from './lib/report.js';
import { systems as allSystems, type SystemFactory } from './systems/index.js';
import { workloads as allWorkloads, type WorkloadContext } from './workloads/index.js';

const log = (msg: string) => process.stderr.write(`[bench] ${msg}\n`);

function select<T extends { name: string }>(all: readonly T[], wanted: string[] | undefined, what: string): T[] {
  if (!wanted) return [...all];
  const unknown = wanted.filter((w) => !all.some((x) => x.name === w));
  if (unknown.length)
    throw new Error(`unknown ${what} ${unknown.map((u) => `"${u}"`).join(', ')}; known: ${all.map((x) => x.name).join(', ')}`);
  return all.filter((x) => wanted.includes(x.name));
}

async function main(): Promise<number> {
  let options: BenchOptions | 'help';
  try {
    options = parseOptions(process.argv.slice(2));
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${USAGE}`);
    return 2;
  }
  if (options === 'help') {
    process.stdout.write(USAGE);
    return 0;
  }
  let workloads, systems: SystemFactory[];
  try {
    workloads = select(allWorkloads, options.only, 'workload');
    systems = select(allSystems, options.systems, 'system');
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n`);
    return 2;
  }

  const url = await resolvePostgresUrl(log);
  // Only Partita uses NATS; resolved once even when only graphile runs, so every meta line says it.
  const nats = systems.some((s) => s.name === 'partita') ? await resolveNatsUrl(options.nats, log) : undefined;
  if (options.queryStats) installQueryStats();
  const admin = adminPool(url);
  markAdmin(admin);
  const stamp = new Date().toISOString().replace(/[:.]/g, '-');
  const file = options.writeFile ? fileURLToPath(new URL(`./results/${stamp}.jsonl`, import.meta.url)) : undefined;
  const reporter = new Reporter(file);
  let failed = false;
  const began = performance.now();
  try {
    const server = await serverInfo(admin);
    const meta = {
      meta: {
        at: new Date().toISOString(),
        node: process.version,
        cpus: cpus().length,
        cpuModel: cpus()[0]?.model,
        memGiB: Math.round(totalmem() / 2 ** 30),
        postgres: url.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@'),
        nats: nats ? nats.replace(/\/\/([^:@/]+):[^@/]*@/, '//$1:***@') : false,
        server,
        options,
        workloads: workloads.map((w) => w.name),
        systems: systems.map((s) => s.name),
      },
    };
    reporter.meta(meta);
    log(
      `Postgres ${server.server_version ?? '?'} at ${meta.meta.postgres}; Partita NATS ${meta.meta.nats || 'off'}; workloads ${meta.meta.workloads.join(', ')}; systems ${meta.meta.systems.join(', ')}`,
    );
    if (file) log(`results → ${file}`);

    const probe = new Probe();
    const ctx: WorkloadContext = {
      url,
      nats,
      options,
      systems,
      probe,
      admin,
      log,
      results: new Map(),
      emit(line) {
        reporter.emit(line);
        if (typeof line.system === 'string' && !line.error && !line.channel) ctx.results.set(`${line.workload}/${line.system}`, line);
      },
      target: (name, pass, detail) => reporter.target(name, pass, detail),
      async withSystem(factory, workload, fn) {
        const schema = freshSchemaName(factory.name, workload);
        let system;
        try {
          system = await factory.create({ url, nats, schema, options, probe, admin, log });
          await system.setup();
          return await fn(system);
        } catch (err) {
          failed = true;
          const e = err as Error;
          log(`${workload}: ${factory.name} failed: ${e.stack ?? e.message}`);
          reporter.emit({ workload, system: factory.name, error: e.message });
          return undefined;
        } finally {
          if (system) await system.teardown().catch((err: Error) => log(`${factory.name} teardown: ${err.message}`));
          probe.reset();
          await dropSchema(admin, schema).catch((err: Error) => log(`drop schema ${schema}: ${err.message}`));
        }
      },
    };

    for (const workload of workloads) {
      const t = performance.now();
      log(`── ${workload.name}: ${workload.description}`);
      await workload.run(ctx);
      log(`── ${workload.name} done in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    }
  } finally {
    await admin.end().catch(() => undefined);
  }
  process.stderr.write(`\n${reporter.summary()}\n\nbench finished in ${((performance.now() - began) / 1000).toFixed(1)} s\n`);
  return failed ? 1 : 0;
}

main().then(
  (code) => process.exit(code),
  (err: Error) => {
    log(`fatal: ${err.stack ?? err.message}`);
    process.exit(1);
  },
);
