import { JSON_SCHEMA, load, YAMLException, type State } from 'js-yaml';

/** One step of a key path: a mapping key or a sequence index. */
export type PathSegment = string | number;

/**
 * Where things are in a YAML text: the line of every mapping key and sequence item, keyed by the
 * identity of the parsed containers, so a key path into the parsed value can be turned back
 * into a line number.
 *
 * js-yaml has no AST, but its `listener` option reports every node it composes ('open' with the
 * reader's position before the node, 'close' with the node's value and kind). Nesting those
 * events gives a tree of node frames whose direct children, for a mapping, are its keys and
 * values in order; a key is the child that is followed by the `:` separator. This uses js-yaml's
 * own reader, so flow style, quoting, anchors and comments are handled the way the value was.
 */
export class YamlPositions {
  private readonly keyLines = new WeakMap<object, Map<string, number>>();
  private readonly itemLines = new WeakMap<object, number[]>();
  /** Line of the first key of the root mapping (1 for an empty document). */
  rootLine = 1;

  /** @internal */
  addKey(mapping: object, key: string, line: number): void {
    let lines = this.keyLines.get(mapping);
    if (!lines) this.keyLines.set(mapping, (lines = new Map()));
    if (!lines.has(key)) lines.set(key, line);
  }

  /** @internal */
  setItems(sequence: object, lines: number[]): void {
    if (!this.itemLines.has(sequence)) this.itemLines.set(sequence, lines);
  }

  /**
   * Line (1-based) of one key of a mapping, or one item of a sequence, of this document; undefined
   * when that container or member did not come from this text (e.g. a value put together after
   * parsing). For callers that track several documents at once, such as a `$ref` merge.
   */
  lineOfMember(container: object, member: PathSegment): number | undefined {
    return Array.isArray(container)
      ? typeof member === 'number'
        ? this.itemLines.get(container)?.[member]
        : undefined
      : this.keyLines.get(container)?.get(String(member));
  }

  /**
   * Line (1-based) of the key or item a path names inside `root`. Where the path leaves what the
   * file spells out (a key that is missing, a value that is a scalar shorthand, something an
   * environment variable replaced), the line of the deepest part that is in the file: for a
   * missing key that is the line of its parent mapping's key.
   */
  lineOf(root: unknown, path: readonly PathSegment[]): number {
    let line = this.rootLine;
    let node: unknown = root;
    for (const seg of path) {
      if (node === null || typeof node !== 'object') break;
      const found = Array.isArray(node)
        ? typeof seg === 'number'
          ? this.itemLines.get(node)?.[seg]
          : undefined
        : this.keyLines.get(node)?.get(String(seg));
      if (found === undefined) break;
      line = found;
      node = (node as Record<PathSegment, unknown>)[seg];
    }
    return line;
  }
}

export interface YamlSyntaxProblem {
  line: number;
  column: number;
  reason: string;
  snippet?: string;
}

export type YamlParseResult = { ok: true; value: unknown; positions: YamlPositions } | { ok: false; error: YamlSyntaxProblem };

interface Frame {
  start: number;
  end: number;
  kind: string | null;
  result: unknown;
  children: Frame[];
}

export interface ParseYamlOptions {
  /**
   * Read only what JSON can hold (js-yaml's JSON_SCHEMA): `2026-12-06` stays a string, no binary
   * or sets. For documents whose parsed value is stored or hashed as JSON.
   */
  json?: boolean;
}

/** Parses one YAML document and records where each key and item is. Never throws for bad YAML. */
export function parseYaml(text: string, filename?: string, opts: ParseYamlOptions = {}): YamlParseResult {
  // js-yaml drops a BOM before reading, which would shift every position by one.
  const input = text.charCodeAt(0) === 0xfeff ? text.slice(1) : text;
  const root: Frame = { start: 0, end: 0, kind: null, result: undefined, children: [] };
  const stack: Frame[] = [root];
  let value: unknown;
  try {
    value = load(input, {
      ...(filename !== undefined ? { filename } : {}),
      ...(opts.json ? { schema: JSON_SCHEMA } : {}),
      listener(event: 'open' | 'close', state: State) {
        if (event === 'open') {
          stack.push({ start: state.position, end: state.position, kind: null, result: undefined, children: [] });
        } else {
          const frame = stack.pop()!;
          frame.end = state.position;
          frame.kind = state.kind ?? null;
          frame.result = state.result;
          stack[stack.length - 1]!.children.push(frame);
        }
      },
    });
  } catch (err) {
    if (err instanceof YAMLException) {
      const mark = (err as YAMLException & { mark?: { line: number; column: number; snippet?: string } }).mark;
      return {
        ok: false,
        error: {
          line: (mark?.line ?? 0) + 1,
          column: (mark?.column ?? 0) + 1,
          reason: err.reason,
          ...(mark?.snippet ? { snippet: mark.snippet } : {}),
        },
      };
    }
    throw err;
  }

  const lines = new LineIndex(input);
  const positions = new YamlPositions();
  const visit = (frame: Frame): void => {
    for (const child of frame.children) visit(child);
    const result = frame.result;
    if (result === null || typeof result !== 'object') return;
    if (frame.kind === 'mapping' && !Array.isArray(result)) {
      for (const child of frame.children) {
        if (isFollowedByColon(input, child.end))
          positions.addKey(result, String(child.result), lines.lineAt(contentStart(input, child.start)));
      }
    } else if (frame.kind === 'sequence' && Array.isArray(result)) {
      const itemLines: number[] = [];
      let i = 0;
      for (const child of frame.children) {
        if (i < result.length && Object.is(child.result, result[i])) itemLines[i++] = lines.lineAt(contentStart(input, child.start));
      }
      positions.setItems(result, itemLines);
    }
  };
  visit(root);
  const top = root.children[0];
  if (top) positions.rootLine = lines.lineAt(contentStart(input, top.start));
  return { ok: true, value, positions };
}

/** The first character of a node: past the blanks, line breaks and comments before it. */
function contentStart(text: string, pos: number): number {
  let i = pos;
  for (;;) {
    const ch = text[i];
    if (ch === ' ' || ch === '\t' || ch === '\n' || ch === '\r') i++;
    else if (ch === '#') {
      while (i < text.length && text[i] !== '\n') i++;
    } else return i;
  }
}

/** A mapping key is the node after which (past blanks and comments) comes the `:` separator. */
function isFollowedByColon(text: string, pos: number): boolean {
  return text[contentStart(text, pos)] === ':';
}

class LineIndex {
  private readonly starts: number[] = [0];
  constructor(text: string) {
    for (let i = 0; i < text.length; i++) if (text.charCodeAt(i) === 10) this.starts.push(i + 1);
  }
  /** 1-based line of an offset. */
  lineAt(offset: number): number {
    let lo = 0;
    let hi = this.starts.length - 1;
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1;
      if (this.starts[mid]! <= offset) lo = mid;
      else hi = mid - 1;
    }
    return lo + 1;
  }
}
