/**
 * Aligned columns in the style of `ip` and `ss`: a header row, then one row per item, numbers
 * right-aligned. Columns whose header ends in '>' are right-aligned (the '>' is not shown).
 */
export function formatTable(headers: string[], rows: string[][]): string {
  const right = headers.map((h) => h.endsWith('>'));
  const titles = headers.map((h) => (h.endsWith('>') ? h.slice(0, -1) : h));
  const widths = titles.map((t, i) => Math.max(t.length, ...rows.map((r) => (r[i] ?? '').length)));
  const line = (cells: string[]): string =>
    cells
      .map((c, i) => (right[i] ? c.padStart(widths[i]!) : c.padEnd(widths[i]!)))
      .join('  ')
      .trimEnd();
  return [line(titles), ...rows.map(line)].join('\n');
}

/** 1234567 → "1.23M"; small numbers stay exact. */
export function formatCount(n: number): string {
  if (n < 10000) return String(Math.round(n));
  const units = ['k', 'M', 'G', 'T'];
  let value = n;
  let unit = '';
  for (const u of units) {
    if (value < 1000) break;
    value /= 1000;
    unit = u;
  }
  return `${value.toFixed(value < 10 ? 2 : value < 100 ? 1 : 0)}${unit}`;
}

export function formatRate(perSecond: number): string {
  return perSecond === 0 ? '0' : formatCount(perSecond);
}
