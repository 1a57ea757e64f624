/**
 * Importing modules that users write and name in the config (the jobs module, a persister module):
 * TypeScript through tsx's loader, and errors that say where in the user's file things went wrong.
 */
import { spawnSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { describeError } from '@partita/core';

const TYPESCRIPT = /\.(?:ts|mts|cts|tsx)$/i;

let typescriptLoader: Promise<void> | undefined;

/**
 * Node 20 cannot import TypeScript. tsx's loader is registered for the whole process (not a scoped
 * `tsImport`): a scoped import loads its own copies of the packages the module imports, so a jobs module
 * would get a second @partita/runtime. Registered lazily, so a node whose modules are JavaScript never
 * loads tsx.
 */
function loadTypeScript(file: string): Promise<void> {
  typescriptLoader ??= import('tsx/esm/api').then(
    ({ register }) => {
      register();
    },
    (err: unknown) => {
      typescriptLoader = undefined;
      const nativeTypes = (process.features as { typescript?: unknown }).typescript;
      if (nativeTypes) return; // this Node strips types itself; let it try
      throw new Error(
        `${file} is TypeScript, and tsx, which @partita/runtime loads it with, cannot be imported (${describeError(err).message}): ` +
          'reinstall @partita/runtime, run your program with tsx, or point the config at the compiled JavaScript',
      );
    },
  );
  return typescriptLoader;
}

/** Imports a module the user wrote, given its absolute path; TypeScript (.ts, .mts, .cts) included. */
export async function importUserModule(file: string): Promise<Record<string, unknown>> {
  if (TYPESCRIPT.test(file)) await loadTypeScript(file);
  return (await import(pathToFileURL(file).href)) as Record<string, unknown>;
}

/**
 * What went wrong importing the user module `file`, starting with the file:line:column to look at:
 * where a syntax error is, or the line of the user's code that threw while the module was evaluated,
 * with that line and a caret under the place.
 */
export function describeImportError(err: unknown, file: string): string {
  const { name, message, stack } = describeError(err);
  // A module that is not there, or that imports one that is not there: Node's message names both.
  if ((err as { code?: unknown })?.code === 'ERR_MODULE_NOT_FOUND') return message;
  const head = `${name}: ${message}`;
  const where =
    transformErrorLocation(err) ??
    (err instanceof SyntaxError ? (syntaxErrorLocation(stack) ?? checkedSyntaxError(file)) : throwLocation(stack));
  if (!where) return err instanceof SyntaxError && !TYPESCRIPT.test(file) ? `${head} (in a module that ${file} imports)` : head;
  const snippet = where.column !== undefined ? sourceSnippet(where.file, where.line, where.column) : '';
  // esbuild (tsx) already puts the location in its message.
  const said = message.includes(`${where.file}:${where.line}`);
  return `${said ? '' : `${where.file}:${where.line}${where.column !== undefined ? `:${where.column}` : ''}: `}${head}${snippet}`;
}

interface Location {
  file: string;
  line: number;
  /** 1-based. */
  column?: number;
}

/**
 * tsx reports a TypeScript syntax error as esbuild's TransformError, whose message lists each error as
 * `/app/jobs.ts:3:33: ERROR: …` (esbuild's own `errors[].location` when it is not rewrapped).
 */
function transformErrorLocation(err: unknown): Location | undefined {
  const errors = (err as { errors?: unknown })?.errors;
  const loc = Array.isArray(errors)
    ? (errors[0] as { location?: { file?: unknown; line?: unknown; column?: unknown } } | undefined)?.location
    : undefined;
  if (loc && typeof loc.file === 'string' && typeof loc.line === 'number') {
    return { file: loc.file, line: loc.line, ...(typeof loc.column === 'number' ? { column: loc.column + 1 } : {}) };
  }
  const m = /^(\/.+?):(\d+):(\d+): ERROR: /m.exec(describeError(err).message);
  return m ? { file: m[1]!, line: Number(m[2]), column: Number(m[3]) + 1 } : undefined;
}

/**
 * Node reports a JavaScript syntax error with the place as the first line of the stack, the source line
 * and a caret under it (`file:///app/jobs.js:3\n  const x = ;\n            ^`), though the stack of an
 * error caught from import() has no such lines on Node 20.
 */
function syntaxErrorLocation(stack: string | undefined): Location | undefined {
  const m = /^(file:\/\/\S+?|\/\S+?):(\d+)\n(.*)\n(\s*)\^/.exec(stack ?? '');
  if (!m) return undefined;
  return { file: toPath(m[1]!), line: Number(m[2]), column: m[4]!.length + 1 };
}

/**
 * Where the syntax error in `file` is, from `node --check` (parses without running anything). Runs only
 * on a start-up that already failed; undefined when the error is in a module that `file` imports.
 */
function checkedSyntaxError(file: string): Location | undefined {
  if (TYPESCRIPT.test(file) || !existsSync(file)) return undefined;
  const check = spawnSync(process.execPath, ['--check', file], { encoding: 'utf8', timeout: 10_000 });
  return syntaxErrorLocation(check.stderr ?? '');
}

/** The first stack frame in the user's code: not Node's internals, not a package under node_modules. */
function throwLocation(stack: string | undefined): Location | undefined {
  const frames = [...(stack ?? '').matchAll(/^\s+at (?:.*? \()?((?:file:\/\/)?\/[^\s()]+?):(\d+):(\d+)\)?$/gm)];
  const frame = frames.find((f) => !f[1]!.includes('/node_modules/')) ?? frames[0];
  if (!frame) return undefined;
  return { file: toPath(frame[1]!), line: Number(frame[2]), column: Number(frame[3]) };
}

function toPath(fileOrUrl: string): string {
  const plain = fileOrUrl.replace(/\?.*$/, '');
  return plain.startsWith('file://') ? fileURLToPath(plain) : plain;
}

function sourceSnippet(file: string, line: number, column: number): string {
  try {
    if (!existsSync(file)) return '';
    const text = readFileSync(file, 'utf8').split('\n')[line - 1];
    if (text === undefined) return '';
    const shown = text.replace(/\t/g, ' ');
    return `\n    ${shown.trimEnd()}\n    ${' '.repeat(Math.max(0, column - 1))}^`;
  } catch {
    return '';
  }
}
