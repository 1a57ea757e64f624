/**
 * "Did you mean" for misspelt keys and values: the candidate that is the same word up to case and
 * `_`/`-` separators (`lease_ms` → `leaseMs`), else the only one that starts with what was typed
 * (`ca` → `caFile`) or that what was typed starts with (`warning` → `warn`), else the closest by
 * edit distance if it is close enough to be a typo.
 */
export function closest(input: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[_\-\s]/g, '');
  const n = norm(input);
  if (!n) return undefined;
  const same = candidates.find((c) => norm(c) === n);
  if (same !== undefined) return same;
  if (n.length >= 2) {
    const prefixed = candidates.filter((c) => norm(c).startsWith(n));
    if (prefixed.length === 1) return prefixed[0];
    const extended = candidates.filter((c) => norm(c).length >= 3 && n.startsWith(norm(c)));
    if (extended.length === 1) return extended[0];
  }
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = distance(n, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.floor(Math.max(n.length, 3) / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions (`laesMs`). */
function distance(a: string, b: string): number {
  const rows = a.length + 1;
  const cols = b.length + 1;
  const d: number[][] = Array.from({ length: rows }, (_, i) => Array.from({ length: cols }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)));
  for (let i = 1; i < rows; i++) {
    for (let j = 1; j < cols; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}
