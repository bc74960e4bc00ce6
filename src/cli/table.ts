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

/** 1234567 → "1.23M": three significant digits; below 10000 the exact integer. */
export function formatCount(n: number): string {
  if (Math.round(n) < 10000) return String(Math.round(n));
  const units = ['k', 'M', 'G', 'T'];
  for (let u = 0; u < units.length; u++) {
    const value = n / 1000 ** (u + 1);
    const decimals = value < 10 ? 2 : value < 100 ? 1 : 0;
    const shown = Number(value.toFixed(decimals));
    // Rounding may carry into the next unit (999999 → 1000k): take the next unit then.
    if (shown < 1000 || u === units.length - 1) {
      return `${shown.toFixed(shown < 10 ? 2 : shown < 100 ? 1 : 0)}${units[u]}`;
    }
  }
  return String(n);
}

export function formatRate(perSecond: number): string {
  return perSecond === 0 ? '0' : formatCount(perSecond);
}
