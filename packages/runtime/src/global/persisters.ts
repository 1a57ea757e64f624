import { createHash, randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, readdir, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, isAbsolute, join, resolve } from 'node:path';
import {
  ConfigError,
  NAME_PATTERN,
  PersisterError,
  StaleEpochError,
  ValidationError,
  describeError,
  silentLogger,
  type Logger,
  type PersisterConfig,
} from '@partita/core';
import { PostgresGlobalState, assertSchemaName, type AdminStore } from '@partita/postgres';
import type { GlobalSnapshot, Persister, ThrottleRule } from './types.js';
import { describeImportError, importUserModule } from '../modules.js';

// ── snapshot validation ───────────────────────────────────────────────────────────────────────

/**
 * Checks that `value` has the shape of a GlobalSnapshot (version 1) and returns it typed. Throws a
 * PersisterError naming `source` and every problem found. With `partition`, the snapshot must
 * belong to that partition (a state file copied from another partition is refused).
 */
export function validateSnapshot(value: unknown, source: string, partition?: string): GlobalSnapshot {
  const problems: string[] = [];
  const isStringArray = (v: unknown): v is string[] => Array.isArray(v) && v.every((x) => typeof x === 'string');
  if (!isPlainObject(value)) {
    problems.push(`expected an object, found ${describeValue(value)}`);
  } else {
    const s = value as Record<string, unknown>;
    if (s.version !== 1) {
      problems.push(
        typeof s.version === 'number' && s.version > 1
          ? `version ${s.version} is newer than this Partita reads (1); run the release that wrote it`
          : `version must be 1, found ${describeValue(s.version)}`,
      );
    }
    if (typeof s.partition !== 'string') problems.push(`partition must be a string, found ${describeValue(s.partition)}`);
    else if (partition !== undefined && s.partition !== partition)
      problems.push(`it belongs to partition "${s.partition}", not "${partition}"`);
    if (!Number.isSafeInteger(s.epoch) || (s.epoch as number) < 0)
      problems.push(`epoch must be a non-negative integer, found ${describeValue(s.epoch)}`);
    if (typeof s.savedAt !== 'string') problems.push(`savedAt must be a string, found ${describeValue(s.savedAt)}`);
    if (!isStringArray(s.cancelled)) problems.push('cancelled must be an array of job ids (strings)');
    if (!isStringArray(s.paused)) problems.push('paused must be an array of queue names (strings)');
    // Snapshots written before Postgres held execution keys carry them; Postgres is the truth now.
    delete s.executionKeys;
    if (!Array.isArray(s.throttles)) {
      problems.push(`throttles must be an array, found ${describeValue(s.throttles)}`);
    } else {
      const bad = s.throttles.findIndex((r: unknown) => !isThrottleRule(r));
      if (bad >= 0) problems.push(`throttles[${bad}] must be { ms: integer >= -1, queue?: string, node?: string }`);
    }
  }
  if (problems.length > 0) throw new PersisterError(`${source} does not hold a valid Global snapshot: ${problems.join('; ')}`);
  return value as GlobalSnapshot;
}

function isThrottleRule(r: unknown): r is ThrottleRule {
  if (!isPlainObject(r)) return false;
  const t = r as Record<string, unknown>;
  return (
    Number.isSafeInteger(t.ms) &&
    (t.ms as number) >= -1 &&
    (t.queue === undefined || typeof t.queue === 'string') &&
    (t.node === undefined || typeof t.node === 'string')
  );
}

function isPlainObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describeValue(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? v.slice(0, 40) + '…' : v);
  if (typeof v === 'object') return 'an object';
  return String(v);
}

const LOST_IF_EMPTY =
  'its cancelled job ids, paused queues and throttles would be lost: ' +
  'a cancelled running job could finish its run, paused queues would resume, throttles would lift';

// ── per-partition serialisation ───────────────────────────────────────────────────────────────

/** Runs tasks one at a time per key, in call order; a failed task does not block the next. */
class KeyedQueue {
  private readonly tails = new Map<string, Promise<unknown>>();

  run<T>(key: string, task: () => Promise<T>): Promise<T> {
    const prev = this.tails.get(key) ?? Promise.resolve();
    const next = prev.then(task, task);
    const tail = next.catch(() => undefined);
    this.tails.set(key, tail);
    void tail.then(() => {
      if (this.tails.get(key) === tail) this.tails.delete(key);
    });
    return next;
  }

  async drain(): Promise<void> {
    while (this.tails.size > 0) await Promise.all([...this.tails.values()]);
  }
}

// ── file persister ────────────────────────────────────────────────────────────────────────────

const FILE_FORMAT = 'partita-global-state';
const FILE_VERSION = 1;

interface FileInfo {
  /** Highest epoch recorded for the partition that this process has seen. */
  epoch: number;
  /** Identity of the state file when it was last read or written by us. */
  stamp: string | undefined;
}

/** Whose Global state a FilePersister keeps: the cluster and, when known, its Postgres schema. */
export interface FileScope {
  cluster: string;
  schema?: string;
}

export interface FilePersisterOptions extends Partial<FileScope> {
  /** Told when a state file of the unscoped layout is adopted. */
  logger?: Logger;
}

/**
 * The default persister: one file per partition, `<dir>/<cluster>/<schema>/<partition>.json`
 * (`<dir>/<partition>.json` when constructed without a cluster), holding the snapshot, the
 * cluster, schema and epoch of the leader that saved it and a sha256 checksum of the snapshot.
 * The cluster and schema are part of the path because two clusters (or two schemas of one
 * Postgres) may share a data dir: each must only ever load its own pauses, throttles and keys; a
 * file whose header names another cluster or schema is refused.
 *
 * A save writes a temp file, fsyncs it, keeps the current file as `<partition>.prev.json` (a hard
 * link, so the current name never goes missing), renames the temp file over the current one and
 * fsyncs the directory: a crash at any point leaves either the old or the new state under the
 * current name. Saves for one partition are serialised; a save from an epoch lower than the
 * recorded one throws StaleEpochError. A file that cannot be read or verified throws a
 * PersisterError naming it and the ways to recover — it never starts the partition empty on its own.
 *
 * In a cluster of several nodes the file only follows the partition's leader when `dir` is shared
 * between them; otherwise use the postgres persister.
 */
export class FilePersister implements Persister {
  /** The base directory (`<dataDir>/global` for a node). */
  readonly dir: string;
  /** Where the state files live: `<dir>/<cluster>/<schema>`, `<dir>/<cluster>` or `dir`. */
  readonly stateDir: string;
  readonly scope: FileScope | undefined;
  private readonly logger: Logger;
  private readonly queue = new KeyedQueue();
  private readonly known = new Map<string, FileInfo>();
  private dirReady: Promise<void> | undefined;

  constructor(dir: string, options: FilePersisterOptions = {}) {
    if (typeof dir !== 'string' || dir.length === 0) throw new ValidationError('must be a directory path', 'dir');
    const { cluster, schema, logger } = options;
    if (cluster !== undefined && (typeof cluster !== 'string' || !NAME_PATTERN.test(cluster)))
      throw new ValidationError('must be 1-64 letters, digits, _ or -', 'cluster');
    if (schema !== undefined) {
      if (cluster === undefined) throw new ValidationError('is only used together with a cluster', 'schema');
      assertSchemaName(schema); // also keeps it from reaching outside the directory
    }
    this.dir = resolve(dir);
    this.scope = cluster === undefined ? undefined : { cluster, ...(schema !== undefined ? { schema } : {}) };
    this.stateDir = cluster === undefined ? this.dir : schema === undefined ? join(this.dir, cluster) : join(this.dir, cluster, schema);
    this.logger = logger ?? silentLogger();
  }

  /** The state file of a partition. */
  fileOf(partition: string): string {
    return join(this.stateDir, `${partition}.json`);
  }

  /** The previous good copy of a partition's state file. */
  previousOf(partition: string): string {
    return join(this.stateDir, `${partition}.prev.json`);
  }

  /**
   * Where releases before the cluster/schema layout kept a partition's state file
   * (`<dir>/<partition>.json`); undefined when this persister has no scope (that is its layout).
   */
  legacyFileOf(partition: string): string | undefined {
    return this.scope ? join(this.dir, `${partition}.json`) : undefined;
  }

  async load(partition: string): Promise<GlobalSnapshot | undefined> {
    checkPartition(partition);
    return this.queue.run(partition, async () => {
      await this.removeLeftovers(partition);
      const file = this.fileOf(partition);
      let text: string;
      try {
        text = await readFile(file, 'utf8');
      } catch (err) {
        if (code(err) !== 'ENOENT') throw await this.unusable(partition, `cannot be read (${describeError(err).message})`, err);
        if (await exists(this.previousOf(partition))) {
          throw await this.unusable(partition, 'is missing although its previous copy exists (was it deleted by hand?)');
        }
        return this.adoptLegacy(partition);
      }
      const parsed = parseStateFile(text, partition, this.scope);
      if (!parsed.ok) throw await this.unusable(partition, parsed.problem);
      this.remember(partition, parsed.epoch, await stamp(file));
      return parsed.snapshot;
    });
  }

  async save(partition: string, snapshot: GlobalSnapshot, epoch: number): Promise<void> {
    checkPartition(partition);
    checkEpoch(epoch);
    // Serialised now (before any await), so changes the caller makes after calling save are not picked up.
    const text = serializeStateFile(partition, snapshot, epoch, this.scope);
    return this.queue.run(partition, () => this.write(partition, text, epoch));
  }

  /** Waits for saves in flight. */
  async close(): Promise<void> {
    await this.queue.drain();
  }

  private async write(partition: string, text: string, epoch: number): Promise<void> {
    const file = this.fileOf(partition);
    await this.ensureDir();
    const current = await this.recordedEpoch(partition);
    if (current.epoch !== undefined && epoch < current.epoch) throw new StaleEpochError(partition, epoch, current.epoch);
    const tmp = `${file}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      const fh = await open(tmp, 'wx');
      try {
        await fh.writeFile(text, 'utf8');
        await fh.sync();
      } finally {
        await fh.close();
      }
      if (current.exists) await this.keepPrevious(partition);
      await rename(tmp, file);
      await syncDir(this.stateDir);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw new PersisterError(`saving the Global state of partition "${partition}" to ${file} failed: ${describeError(err).message}`, {
        cause: err,
      });
    }
    this.remember(partition, epoch, await stamp(file));
  }

  /** Makes `<partition>.prev.json` a copy of the current file without ever removing the current name. */
  private async keepPrevious(partition: string): Promise<void> {
    const prev = this.previousOf(partition);
    const tmp = `${prev}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`;
    try {
      await link(this.fileOf(partition), tmp);
    } catch {
      // File systems without hard links: copy it, durably.
      await copyFile(this.fileOf(partition), tmp);
      const fh = await open(tmp, 'r+');
      try {
        await fh.sync();
      } finally {
        await fh.close();
      }
    }
    try {
      await rename(tmp, prev);
    } catch (err) {
      await rm(tmp, { force: true }).catch(() => undefined);
      throw err;
    }
  }

  /**
   * The epoch recorded for a partition: from memory while the file is the one we last read or
   * wrote, else from the file (another process may have written it).
   */
  private async recordedEpoch(partition: string): Promise<{ epoch: number | undefined; exists: boolean }> {
    const file = this.fileOf(partition);
    const now = await stamp(file);
    const known = this.known.get(partition);
    if (known && known.stamp === now) return { epoch: known.epoch, exists: now !== undefined };
    if (now === undefined) return { epoch: known?.epoch, exists: false };
    let text: string;
    try {
      text = await readFile(file, 'utf8');
    } catch (err) {
      if (code(err) === 'ENOENT') return { epoch: known?.epoch, exists: false };
      throw await this.unusable(partition, `cannot be read (${describeError(err).message})`, err);
    }
    const parsed = parseStateFile(text, partition, this.scope);
    // Never rotate a corrupt file into the previous-copy slot, over the last good copy.
    if (!parsed.ok) throw await this.unusable(partition, parsed.problem);
    const epoch = Math.max(parsed.epoch, known?.epoch ?? 0);
    this.remember(partition, epoch, now);
    return { epoch, exists: true };
  }

  private remember(partition: string, epoch: number, fileStamp: string | undefined): void {
    const known = this.known.get(partition);
    this.known.set(partition, { epoch: Math.max(epoch, known?.epoch ?? 0), stamp: fileStamp });
  }

  private ensureDir(): Promise<void> {
    this.dirReady ??= (async () => {
      try {
        const first = await mkdir(this.stateDir, { recursive: true });
        // Make the new directories' entries durable too, from the state dir up to the first one created.
        for (let d = this.stateDir; first !== undefined; d = dirname(d)) {
          await syncDir(dirname(d));
          if (d === first || dirname(d) === d) break;
        }
      } catch (err) {
        this.dirReady = undefined;
        throw new PersisterError(`cannot create the Global state directory ${this.stateDir}: ${describeError(err).message}`, {
          cause: err,
        });
      }
    })();
    return this.dirReady;
  }

  /**
   * A partition without a state file of its own may have one where releases before the
   * cluster/schema layout kept it, `<dir>/<partition>.json`. That file may belong to this cluster
   * (a single-cluster user upgrading: not using it would silently drop every pause, throttle,
   * cancellation and execution key) or to another cluster or schema that shares the data dir
   * (using it is the very mix-up the layout fixes). The file cannot tell which: it records no
   * cluster. The choice: adopt it only when it verifies as a state file of this partition (format,
   * checksum, shape, and no other cluster/schema recorded), copy it to this scope's path, move it
   * aside as `<partition>.json.adopted` so that a second cluster sharing the directory does not
   * adopt it as well, and warn naming both paths, so that whoever runs several clusters on one data
   * dir can see which cluster took it. A legacy file that records another cluster or schema is
   * left alone; one that is damaged stops the partition as a damaged state file of its own would.
   */
  private async adoptLegacy(partition: string): Promise<GlobalSnapshot | undefined> {
    const legacy = this.legacyFileOf(partition);
    if (legacy === undefined) return undefined;
    let text: string;
    try {
      text = await readFile(legacy, 'utf8');
    } catch (err) {
      if (code(err) === 'ENOENT') return undefined;
      throw new PersisterError(
        `the Global state file of partition "${partition}" from before the per-cluster layout, ${legacy}, cannot be read ` +
          `(${describeError(err).message}). Make it readable so that it can be adopted as ${this.fileOf(partition)}, or move it away ` +
          `to start the partition empty — ${LOST_IF_EMPTY}.`,
        { cause: err },
      );
    }
    const parsed = parseStateFile(text, partition, this.scope);
    if (!parsed.ok) {
      if (parsed.foreign) {
        this.logger.info(
          { partition, legacyFile: legacy, file: this.fileOf(partition) },
          `not adopting the old-layout Global state file: it ${parsed.problem}`,
        );
        return undefined;
      }
      throw new PersisterError(
        `the Global state file of partition "${partition}" from before the per-cluster layout, ${legacy}, ${parsed.problem}. ` +
          `The partition is not started, because starting it empty would silently forget its state. To recover, either restore ` +
          `a good copy (${join(this.dir, `${partition}.prev.json`)} may be one) as ${shellQuote(legacy)}, or move ${shellQuote(legacy)} away ` +
          `to start the partition empty — ${LOST_IF_EMPTY}.`,
      );
    }
    await this.write(partition, serializeStateFile(partition, parsed.snapshot, parsed.epoch, this.scope), parsed.epoch);
    for (const old of [legacy, join(this.dir, `${partition}.prev.json`)]) {
      await rename(old, `${old}.adopted`).catch((err) => {
        if (code(err) !== 'ENOENT')
          this.logger.warn({ file: old, err: describeError(err).message }, 'could not move the adopted old-layout Global state file aside');
      });
    }
    await syncDir(this.dir);
    this.logger.warn(
      {
        partition,
        cluster: this.scope?.cluster,
        schema: this.scope?.schema,
        legacyFile: legacy,
        file: this.fileOf(partition),
        epoch: parsed.epoch,
        savedAt: parsed.savedAt,
      },
      `adopted the Global state of partition "${partition}" from ${legacy} (the layout before state files were kept per cluster and schema) ` +
        `as ${this.fileOf(partition)}; the old file is now ${legacy}.adopted. If another cluster or schema shares this data dir and that ` +
        `state was its, move the file to that cluster's directory instead and delete ${this.fileOf(partition)}`,
    );
    return parsed.snapshot;
  }

  /** Temp files of saves that crashed before their rename; never read, removed when a partition loads. */
  private async removeLeftovers(partition: string): Promise<void> {
    let names: string[];
    try {
      names = await readdir(this.stateDir);
    } catch {
      return;
    }
    const prefixes = [`${partition}.json.`, `${partition}.prev.json.`];
    await Promise.all(
      names
        .filter((n) => n.endsWith('.tmp') && prefixes.some((p) => n.startsWith(p)))
        .map((n) => rm(join(this.stateDir, n), { force: true }).catch(() => undefined)),
    );
  }

  /** The error for a state file that cannot be used, with the ways out. */
  private async unusable(partition: string, problem: string, cause?: unknown): Promise<PersisterError> {
    const file = this.fileOf(partition);
    const prev = this.previousOf(partition);
    let restore: string;
    try {
      const parsed = parseStateFile(await readFile(prev, 'utf8'), partition, this.scope);
      restore = parsed.ok
        ? `restore the previous good copy (epoch ${parsed.epoch}, saved at ${parsed.savedAt}; changes saved after it are lost): ` +
          `mv ${shellQuote(prev)} ${shellQuote(file)}`
        : `the previous copy ${prev} is not usable either (${parsed.problem}); restore one from a backup`;
    } catch (err) {
      restore =
        code(err) === 'ENOENT'
          ? `there is no previous copy (${prev}); restore the file from a backup`
          : `the previous copy ${prev} cannot be read (${describeError(err).message}); restore one from a backup`;
    }
    return new PersisterError(
      `the Global state file of partition "${partition}", ${file}, ${problem}. The partition is not started, because ` +
        `starting it empty would silently forget its state. To recover, either ${restore}; or delete ${shellQuote(file)} ` +
        `and ${shellQuote(prev)} to start the partition empty — ${LOST_IF_EMPTY}.`,
      cause === undefined ? undefined : { cause },
    );
  }
}

/** `foreign`: a sound file that records another cluster or schema. */
type ParsedFile = { ok: true; epoch: number; savedAt: string; snapshot: GlobalSnapshot } | { ok: false; problem: string; foreign?: true };

function serializeStateFile(partition: string, snapshot: GlobalSnapshot, epoch: number, scope: FileScope | undefined): string {
  const body = JSON.stringify(snapshot);
  if (body === undefined) throw new ValidationError('must be a GlobalSnapshot object', 'snapshot');
  const header = JSON.stringify({
    format: FILE_FORMAT,
    version: FILE_VERSION,
    ...scope,
    partition,
    epoch,
    savedAt: new Date().toISOString(),
    checksum: checksum(body),
  });
  return `${header.slice(0, -1)},"snapshot":${body}}\n`;
}

/**
 * Reads and verifies a state file. Its `cluster` and `schema` header fields are optional (files
 * written before they existed have neither): one that is there must match `scope`.
 */
function parseStateFile(text: string, partition: string, scope: FileScope | undefined): ParsedFile {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    return { ok: false, problem: `is not valid JSON (${describeError(err).message}; the file may be truncated)` };
  }
  if (!isPlainObject(doc) || doc.format !== FILE_FORMAT)
    return { ok: false, problem: `is not a Partita Global state file (no "format": "${FILE_FORMAT}")` };
  if (doc.version !== FILE_VERSION)
    return { ok: false, problem: `has file version ${describeValue(doc.version)}, this Partita reads version ${FILE_VERSION}` };
  if (doc.partition !== partition)
    return { ok: false, problem: `belongs to partition ${describeValue(doc.partition)}, not "${partition}"` };
  for (const field of ['cluster', 'schema'] as const) {
    if (doc[field] === undefined) continue;
    if (typeof doc[field] !== 'string') return { ok: false, problem: `has an invalid ${field} (${describeValue(doc[field])})` };
    const ours = scope?.[field];
    if (ours !== undefined && doc[field] !== ours)
      return { ok: false, foreign: true, problem: `belongs to ${field} ${describeValue(doc[field])}, not "${ours}"` };
  }
  if (!Number.isSafeInteger(doc.epoch) || (doc.epoch as number) < 0)
    return { ok: false, problem: `has no valid epoch (${describeValue(doc.epoch)})` };
  if (typeof doc.checksum !== 'string') return { ok: false, problem: 'has no checksum' };
  const body = JSON.stringify(doc.snapshot);
  if (body === undefined || checksum(body) !== doc.checksum)
    return { ok: false, problem: 'fails its checksum (its content was changed or damaged)' };
  try {
    const savedAt = typeof doc.savedAt === 'string' ? doc.savedAt : 'an unknown time';
    return { ok: true, epoch: doc.epoch as number, savedAt, snapshot: validateSnapshot(doc.snapshot, 'it', partition) };
  } catch (err) {
    return { ok: false, problem: describeError(err).message.replace(/^it does not hold/, 'does not hold') };
  }
}

function checksum(body: string): string {
  return 'sha256:' + createHash('sha256').update(body, 'utf8').digest('hex');
}

async function stamp(file: string): Promise<string | undefined> {
  try {
    const s = await stat(file, { bigint: true });
    return `${s.dev}:${s.ino}:${s.size}:${s.mtimeNs}:${s.ctimeNs}`;
  } catch (err) {
    if (code(err) === 'ENOENT') return undefined;
    throw err;
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    await stat(file);
    return true;
  } catch {
    return false;
  }
}

/** Makes a rename durable. Platforms that cannot fsync a directory (Windows) skip it. */
async function syncDir(dir: string): Promise<void> {
  let fh;
  try {
    fh = await open(dir, 'r');
  } catch {
    return;
  }
  try {
    await fh.sync();
  } catch (err) {
    if (!['EISDIR', 'EINVAL', 'EPERM', 'EBADF', 'ENOTSUP'].includes(code(err) ?? '')) throw err;
  } finally {
    await fh.close();
  }
}

function code(err: unknown): string | undefined {
  const c = (err as { code?: unknown } | null)?.code;
  return typeof c === 'string' ? c : undefined;
}

function shellQuote(path: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(path) ? path : `'${path.replaceAll("'", `'\\''`)}'`;
}

function checkPartition(partition: string): void {
  // Also keeps partition names from reaching outside the directory.
  if (typeof partition !== 'string' || !NAME_PATTERN.test(partition))
    throw new ValidationError('must be 1-64 letters, digits, _ or -', 'partition');
}

function checkEpoch(epoch: number): void {
  if (!Number.isSafeInteger(epoch) || epoch < 0) throw new ValidationError('must be a non-negative integer (the lease epoch)', 'epoch');
}

// ── postgres persister ────────────────────────────────────────────────────────────────────────

/**
 * Keeps each partition's snapshot in `<schema>.global_state` (see PostgresGlobalState): a stale
 * epoch is refused in SQL, against both the saved epoch and the partition's current lease, so it
 * works across nodes without a shared disk. Saves for one partition are serialised in-process.
 */
export class PostgresPersister implements Persister {
  readonly state: PostgresGlobalState;
  private readonly queue = new KeyedQueue();

  constructor(state: PostgresGlobalState) {
    this.state = state;
  }

  async load(partition: string): Promise<GlobalSnapshot | undefined> {
    let row;
    try {
      row = await this.state.load(partition);
    } catch (err) {
      throw new PersisterError(`loading the Global state of partition "${partition}" from Postgres failed: ${describeError(err).message}`, {
        cause: err,
      });
    }
    if (!row) return undefined;
    const where = this.state.describe(partition);
    try {
      return validateSnapshot(row.snapshot, where, partition);
    } catch (err) {
      throw new PersisterError(
        `${describeError(err).message}. The partition is not started, because starting it empty would silently forget its state. ` +
          `To recover, fix the snapshot in that row, or delete it (DELETE FROM "${this.state.schema}".global_state WHERE partition = '${partition}') ` +
          `to start the partition empty — ${LOST_IF_EMPTY}.`,
        { cause: err },
      );
    }
  }

  async save(partition: string, snapshot: GlobalSnapshot, epoch: number): Promise<void> {
    checkEpoch(epoch);
    // Serialised now (before any await), so changes the caller makes after calling save are not picked up.
    const json = JSON.stringify(snapshot);
    return this.queue.run(partition, async () => {
      try {
        await this.state.save(partition, json, epoch);
      } catch (err) {
        if (err instanceof StaleEpochError || err instanceof ValidationError) throw err;
        throw new PersisterError(`saving the Global state of partition "${partition}" to Postgres failed: ${describeError(err).message}`, {
          cause: err,
        });
      }
    });
  }

  async close(): Promise<void> {
    await this.queue.drain();
  }
}

// ── user modules and selection ────────────────────────────────────────────────────────────────

export interface PersisterModuleContext {
  /** The node's data directory (shared by every cluster whose nodes are given the same one). */
  dataDir: string;
  /** The node's cluster and Postgres schema, when known: a persister keeping files should key them by both. */
  cluster?: string;
  schema?: string;
  logger: Logger;
}

export interface PersisterContext {
  dataDir: string;
  /** The node's cluster: the file persister keeps its files per cluster (and schema). */
  cluster?: string;
  /** Needed by the postgres persister (the job store's pool). */
  pool?: AdminStore['pool'];
  /** The job store's schema: the postgres persister's table lives there; the file persister keys its files by it. */
  schema?: string;
  logger?: Logger;
}

/** True when `value` has the Persister methods (load and save functions). */
export function isPersister(value: unknown): value is Persister {
  return (
    (typeof value === 'object' || typeof value === 'function') &&
    value !== null &&
    typeof (value as Persister).load === 'function' &&
    typeof (value as Persister).save === 'function'
  );
}

const PERSISTER_SHAPE =
  'a persister module must export (as default or as `persister`) an object with async load(partition) and ' +
  'save(partition, snapshot, epoch) methods, a class whose instances have them, or a factory ' +
  '(ctx: { dataDir, cluster, schema, logger }) => Persister | Promise<Persister>';

function moduleProblem(file: string, message: string): ConfigError {
  return new ConfigError([{ file, path: 'persister', message }]);
}

/**
 * Imports a user persister module and returns the Persister it provides: its default export (or
 * its `persister` export) may be a Persister object, a class (constructed with the context) or a
 * factory called with the context. Throws a ConfigError naming the file when it cannot be imported
 * or does not implement load/save; a PersisterError when its factory or constructor throws.
 */
export async function loadPersisterModule(path: string, ctx: PersisterModuleContext): Promise<Persister> {
  const file = isAbsolute(path) ? path : resolve(path);
  let mod: Record<string, unknown>;
  try {
    mod = await importUserModule(file);
  } catch (err) {
    const missing = code(err) === 'ERR_MODULE_NOT_FOUND' && !(await exists(file));
    throw moduleProblem(
      file,
      missing ? 'the persister module does not exist' : `the persister module cannot be imported: ${describeImportError(err, file)}`,
    );
  }
  let exportName = mod.default !== undefined ? 'default export' : '`persister` export';
  let exported: unknown = mod.default ?? mod.persister;
  // A CommonJS module's exports object arrives as the default export.
  if (isPlainObject(exported) && !isPersister(exported) && exported.persister !== undefined) {
    exported = exported.persister;
    exportName = '`persister` export';
  }
  if (exported === undefined) throw moduleProblem(file, `the module has no default or \`persister\` export; ${PERSISTER_SHAPE}`);
  let instance: unknown = exported;
  let what = `its ${exportName}`;
  if (typeof exported === 'function' && !isPersister(exported)) {
    const fn = exported as (...args: unknown[]) => unknown;
    const isClass = /^class[\s{]/.test(Function.prototype.toString.call(fn)) || isPersister(fn.prototype);
    try {
      instance = isClass ? new (fn as unknown as new (c: PersisterModuleContext) => unknown)(ctx) : await fn(ctx);
    } catch (err) {
      throw new PersisterError(
        `the persister module ${file}: ${isClass ? 'constructing its class' : 'its factory'} threw: ${describeError(err).message}`,
        { cause: err },
      );
    }
    what = isClass ? `the instance of the class (its ${exportName})` : `what its factory (${exportName}) returned`;
  }
  if (!isPersister(instance)) {
    const missing = ['load', 'save'].filter((m) => typeof (instance as Record<string, unknown> | null)?.[m] !== 'function');
    throw moduleProblem(file, `${what} does not implement Persister (no ${missing.join(' or ')} function); ${PERSISTER_SHAPE}`);
  }
  return instance;
}

/**
 * Wraps a persister that Partita did not write so that what it loads is shape-checked
 * (null counts as nothing saved) before Global uses it.
 */
export function checkedPersister(inner: Persister, label: string): Persister {
  return {
    async load(partition) {
      const value: unknown = await inner.load(partition);
      if (value === undefined || value === null) return undefined;
      return validateSnapshot(value, `the snapshot ${label} loaded for partition "${partition}"`, partition);
    },
    save: (partition, snapshot, epoch) => inner.save(partition, snapshot, epoch),
    ...(inner.close ? { close: () => inner.close!() } : {}),
  };
}

/** The directory under the node's data dir where the file persister keeps its state files (in `<cluster>/<schema>/` below it). */
export function globalStateDir(dataDir: string): string {
  return join(dataDir, 'global');
}

/** Builds the persister the node config asks for. */
export async function createPersister(config: PersisterConfig, ctx: PersisterContext): Promise<Persister> {
  const logger = ctx.logger ?? silentLogger();
  switch (config.kind) {
    case 'file':
      // Without a cluster (programmatic callers of old): the unscoped layout `<dir>/<partition>.json`.
      return new FilePersister(
        globalStateDir(ctx.dataDir),
        ctx.cluster === undefined
          ? { logger }
          : { cluster: ctx.cluster, ...(ctx.schema !== undefined ? { schema: ctx.schema } : {}), logger },
      );
    case 'postgres':
      if (!ctx.pool || !ctx.schema)
        throw new ConfigError([{ path: 'persister', message: "the postgres persister needs the node's Postgres pool and schema" }]);
      return new PostgresPersister(new PostgresGlobalState(ctx.pool, ctx.schema));
    case 'module': {
      const inner = await loadPersisterModule(config.path, {
        dataDir: ctx.dataDir,
        ...(ctx.cluster !== undefined ? { cluster: ctx.cluster } : {}),
        ...(ctx.schema !== undefined ? { schema: ctx.schema } : {}),
        logger,
      });
      return checkedPersister(inner, `the persister module ${config.path}`);
    }
    case 'instance': {
      if (!isPersister(config.instance))
        throw new ConfigError([
          { path: 'persister', message: `the given persister object does not implement Persister; ${PERSISTER_SHAPE}` },
        ]);
      return checkedPersister(config.instance as Persister, 'the given persister');
    }
    default:
      throw new ConfigError([
        {
          path: 'persister',
          message: `unknown persister kind ${JSON.stringify((config as { kind: unknown }).kind)}; use file, postgres or a module path`,
        },
      ]);
  }
}
