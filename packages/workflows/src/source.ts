/**
 * Loading an app: YAML files joined by `$ref` (json-schema-ref-parser, as HotMesh does) or one inline
 * YAML string, with a source map that turns a key path of the merged value back into file:line.
 *
 * Positions come from core's `parseYaml` (js-yaml's `listener` events), plugged in as the ref
 * parser's YAML parser. The ref parser dereferences in place, so every mapping and sequence of
 * the merged value is the very object one file's parse produced; the map is keyed by object
 * identity and needs no second pass over the text.
 */
import { dirname, resolve as resolvePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import $RefParser from '@apidevtools/json-schema-ref-parser';
import { parseYaml, type PathSegment, type YamlPositions } from '@partita/core';
import type { WorkflowIssue } from './errors.js';

export const INLINE_FILE = '<inline>';

interface Origin {
  file: string;
  positions: YamlPositions;
  /** Key path of the container inside its file. */
  path: PathSegment[];
}

/** Where each node of a merged app came from. */
export class SourceMap {
  private readonly origins = new WeakMap<object, Origin>();
  constructor(private readonly rootFile: string) {}

  /** @internal Records every container of one parsed file. */
  register(value: unknown, file: string, positions: YamlPositions): void {
    const walk = (node: unknown, path: PathSegment[]): void => {
      if (node === null || typeof node !== 'object' || this.origins.has(node)) return;
      this.origins.set(node, { file, positions, path });
      if (Array.isArray(node)) node.forEach((v, i) => walk(v, [...path, i]));
      else for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
    };
    walk(value, []);
  }

  /**
   * File, line and in-file key path of a key path of the merged value. Where the path leaves what
   * a file spells out (a missing key), the deepest part that is in a file.
   */
  locate(root: unknown, path: readonly PathSegment[]): { file: string; line: number; key: string } {
    let file = this.rootFile;
    let line = 1;
    let keyPath: PathSegment[] = [];
    let node: unknown = root;
    let exact = true;
    const origin0 = root !== null && typeof root === 'object' ? this.origins.get(root) : undefined;
    if (origin0) {
      file = origin0.file;
      line = origin0.positions.rootLine;
    }
    for (const seg of path) {
      if (node === null || typeof node !== 'object') {
        exact = false;
      }
      const origin = exact ? this.origins.get(node as object) : undefined;
      const found = origin?.positions.lineOfMember(node as object, seg);
      if (origin && found !== undefined) {
        file = origin.file;
        line = found;
        keyPath = [...origin.path, seg];
      } else {
        // A missing key: name it under its parent, at the parent's line.
        keyPath = [...keyPath, seg];
        exact = false;
      }
      if (exact) node = (node as Record<PathSegment, unknown>)[seg];
    }
    return { file, line, key: formatKeyPath(keyPath) };
  }
}

export function formatKeyPath(path: readonly PathSegment[]): string {
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out ? `.${seg}` : seg;
  }
  return out;
}

export interface LoadedApp {
  value: unknown;
  sourceMap: SourceMap;
  /** The app file, or undefined for an inline YAML string. */
  file: string | undefined;
}

/** Is this string a YAML document (HotMesh's rule: it starts with `app:`) rather than a path? */
export function isInlineYaml(pathOrYaml: string): boolean {
  return /^(?:\s*#[^\n]*\n|\s*\n)*\s*app\s*:/.test(pathOrYaml);
}

/** Loads an app; on unreadable files, YAML syntax errors or broken `$ref`s returns the issues found. */
export async function loadApp(pathOrYaml: string): Promise<{ ok: true; app: LoadedApp } | { ok: false; issues: WorkflowIssue[] }> {
  if (isInlineYaml(pathOrYaml)) {
    const map = new SourceMap(INLINE_FILE);
    const parsed = parseYaml(pathOrYaml, INLINE_FILE, { json: true });
    if (!parsed.ok) return { ok: false, issues: [syntaxIssue(INLINE_FILE, parsed.error)] };
    map.register(parsed.value, INLINE_FILE, parsed.positions);
    return { ok: true, app: { value: parsed.value, sourceMap: map, file: undefined } };
  }

  const file = resolvePath(pathOrYaml);
  const map = new SourceMap(file);
  const issues: WorkflowIssue[] = [];
  /** Every `$ref` seen, so a reference that cannot be followed is reported where it is written. */
  const refs: { file: string; holder: string; target: string; line: number; key: string }[] = [];
  const parser = {
    order: 1,
    allowEmpty: true,
    canParse: ['.yaml', '.yml', '.json'],
    parse(info: { url: string; data: unknown }): unknown {
      const url = info.url.startsWith('file:') ? fileURLToPath(info.url) : info.url;
      const text = Buffer.isBuffer(info.data) ? info.data.toString('utf8') : String(info.data);
      const parsed = parseYaml(text, url, { json: true });
      if (!parsed.ok) {
        issues.push(syntaxIssue(url, parsed.error));
        // Resolution goes on so problems in the other files are found in the same pass.
        return {};
      }
      map.register(parsed.value, url, parsed.positions);
      collectRefs(parsed.value, [], (path, ref, holder) => {
        const targetFile = ref.split('#')[0];
        refs.push({
          file: url,
          holder: path.join('/'),
          target: targetFile ? resolvePath(dirname(url), targetFile) : url,
          line: parsed.positions.lineOfMember(holder, '$ref') ?? 1,
          key: formatKeyPath([...path, '$ref']),
        });
      });
      return parsed.value;
    },
  };
  let value: unknown;
  try {
    value = await $RefParser.dereference(file, {
      parse: { yaml: parser, json: false, text: false, binary: false },
      // Deploy reads local files only: a $ref never makes the deploying process fetch a URL.
      resolve: { http: false },
      dereference: { circular: 'ignore' },
      // Every broken $ref is reported, not only the first.
      continueOnError: true,
    });
  } catch (err) {
    const group = err as { errors?: RefError[] } & RefError;
    const errors: RefError[] = Array.isArray(group.errors) ? group.errors : [group];
    if (!errors.every((e) => typeof e.code === 'string' && e.code.startsWith('E'))) throw err;
    for (const e of errors) {
      const source = e.source ? resolvePath(e.source.startsWith('file:') ? fileURLToPath(e.source) : e.source) : undefined;
      const holder = Array.isArray(e.path) ? e.path.map(String).join('/') : undefined;
      if (e.code === 'ERESOLVER' && source === file && !holder) {
        issues.push({
          file,
          line: 1,
          key: '',
          message: `cannot read the app file (${e.ioErrorCode ?? e.message})`,
          hint: 'pass the path of the app YAML file, or a YAML string starting with `app:`',
        });
        continue;
      }
      // A resolver error names the referring file; a missing pointer names the target file. Both give the $ref's path.
      const ref =
        refs.find((r) => r.holder === holder && (r.file === source || r.target === source)) ?? refs.find((r) => r.target === source);
      issues.push({
        file: ref?.file ?? file,
        line: ref?.line ?? 1,
        key: ref?.key ?? '',
        message: `cannot follow $ref: ${e.message}`,
        hint: 'a $ref is a path relative to the file it is written in, optionally with a JSON pointer (./graphs/order.yaml#/activities)',
      });
    }
  }
  if (issues.length > 0) return { ok: false, issues };
  return { ok: true, app: { value, sourceMap: map, file } };
}

interface RefError {
  code?: string;
  source?: string;
  path?: unknown[] | null;
  message: string;
  ioErrorCode?: string;
}

function collectRefs(node: unknown, path: PathSegment[], found: (path: PathSegment[], ref: string, holder: object) => void): void {
  if (node === null || typeof node !== 'object') return;
  if (Array.isArray(node)) {
    node.forEach((v, i) => collectRefs(v, [...path, i], found));
    return;
  }
  const ref = (node as Record<string, unknown>)['$ref'];
  if (typeof ref === 'string') found(path, ref, node);
  for (const [k, v] of Object.entries(node)) collectRefs(v, [...path, k], found);
}

function syntaxIssue(file: string, error: { line: number; column: number; reason: string }): WorkflowIssue {
  return {
    file,
    line: error.line,
    key: '',
    message: `YAML syntax error at line ${error.line}, column ${error.column}: ${error.reason}`,
    hint: 'fix the YAML (indentation, quoting, a `:` after each key)',
  };
}
