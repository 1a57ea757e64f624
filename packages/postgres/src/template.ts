import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { PartitaError, ValidationError } from '@partita/core';

/** The package's sql folder: migrations/, ops/ and fragments/. */
export const SQL_DIR = fileURLToPath(new URL('../sql/', import.meta.url));
const SCHEMA_NAME = /^[a-z_][a-z0-9_]{0,62}$/;

export function assertSchemaName(schema: string): void {
  if (!SCHEMA_NAME.test(schema)) {
    throw new ValidationError(
      `"${schema}" is not a usable schema name; use lower-case letters, digits and _ (at most 63)`,
      'postgres.schema',
    );
  }
}

export function render(text: string, schema: string, file: string): string {
  const rendered = text.replaceAll('{{schema_raw}}', schema).replaceAll('{{schema}}', `"${schema}"`);
  const left = /\{\{[^}]*\}\}/.exec(rendered);
  if (left) {
    throw new PartitaError(
      'SQL_TEMPLATE',
      `${file}: ${left[0]} is not a placeholder the SQL loader knows; the package's sql folder is damaged or out of date, reinstall @partita/postgres`,
    );
  }
  return rendered;
}

const INCLUDE = /^([ \t]*)(.*?)\{\{>\s*([a-z0-9_]+)\s*\}\}/gm;

/**
 * Fragments: a condition several ops repeat word for word (the job filter of the listing and the
 * bulk operations), or a CTE's body (`name AS {{> NAME}}`: the completions' delete and history
 * insert), is kept once, in sql/fragments/NAME.sql, and an op writes `{{> NAME}}` where it stands
 * (one include a line), so each op is still one whole statement in one file. The fragment goes in as one
 * parenthesised expression (so an OR next to it cannot split it), without its leading comment
 * lines, at load time: the prepared text is the same as if it were written out. Fragments do not
 * include fragments, and migrations take none: an applied migration must never change because a
 * fragment did.
 */
function includeFragments(text: string, file: string, sqlDir: string): string {
  return text.replace(INCLUDE, (_include, indent: string, before: string, name: string) => {
    let fragment: string;
    try {
      fragment = readFileSync(`${sqlDir}fragments/${name}.sql`, 'utf8');
    } catch (cause) {
      throw new PartitaError(
        'SQL_TEMPLATE',
        `${file}: includes {{> ${name}}} but sql/fragments/${name}.sql cannot be read; the package's sql folder is damaged or out of date, reinstall @partita/postgres`,
        { cause },
      );
    }
    const lines = fragment.trimEnd().split('\n');
    while (lines.length > 0 && /^\s*(--.*)?$/.test(lines[0]!)) lines.shift();
    if (lines.length === 0) {
      throw new PartitaError(
        'SQL_TEMPLATE',
        `${file}: sql/fragments/${name}.sql has no SQL in it; the package's sql folder is damaged, reinstall @partita/postgres`,
      );
    }
    return `${indent}${before}(${lines.join(`\n${indent}${' '.repeat(before.length + 1)}`)})`;
  });
}

/** An op's text as it is prepared: fragments from `sqlDir` included, then the schema filled in. */
export function renderOp(text: string, file: string, schema: string, sqlDir: string = SQL_DIR): string {
  return render(includeFragments(text, file, sqlDir), schema, file);
}
