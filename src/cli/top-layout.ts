import { formatAge, formatBitRate, formatBytes, formatPps, formatSi } from './rate-format.js';
import { formatCount } from './table.js';
import type { InterfaceRow, RuleRow, TopModel, WorkerRow } from './top-model.js';

// How mcrctl top fits its tables into the terminal, as text: which columns stay when it is
// narrow, how many rule rows fit when it is short. Pure, so the renderer only paints.

/** How a cell should stand out; the renderer maps these to colours (or to nothing). */
export type Tone = 'plain' | 'good' | 'warn' | 'bad' | 'dim';

export interface Cell {
  text: string;
  tone: Tone;
}

export interface ColumnSpec {
  title: string;
  align: 'left' | 'right';
  /**
   * When the terminal is too narrow, columns give way in the order of these priorities,
   * highest first: `drop` removes the column (0: never), `cut.at` narrows it to what is needed,
   * down to `cut.minWidth`, its text ending in … .
   */
  drop: number;
  cut?: { at: number; minWidth: number };
}

export interface Table {
  columns: ColumnSpec[];
  rows: Cell[][];
}

export interface FittedColumn {
  /** Index into the table's columns. */
  index: number;
  width: number;
}

export const COLUMN_GAP = 2;

const cell = (text: string, tone: Tone = 'plain'): Cell => ({ text, tone });

/**
 * The columns that fit in `width` characters, with their widths: each as wide as its widest
 * text; when that is too wide, columns are narrowed or dropped in their priority order until the
 * rest fits, and room a drop left over goes back to the narrowed ones.
 */
export function fitColumns(table: Table, width: number): FittedColumn[] {
  const natural = table.columns.map((c, i) =>
    Math.max(c.title.length, ...table.rows.map((r) => r[i]?.text.length ?? 0)),
  );
  const widths = new Map(natural.map((w, i) => [i, w]));
  const total = (): number =>
    [...widths.values()].reduce((a, b) => a + b, 0) + COLUMN_GAP * Math.max(0, widths.size - 1);
  const steps = table.columns
    .flatMap((c, i) => [
      ...(c.cut ? [{ i, at: c.cut.at, cut: Math.max(c.cut.minWidth, c.title.length) }] : []),
      ...(c.drop > 0 ? [{ i, at: c.drop, cut: undefined }] : []),
    ])
    .sort((a, b) => b.at - a.at);
  for (const step of steps) {
    const excess = total() - width;
    if (excess <= 0) break;
    if (!widths.has(step.i)) continue;
    if (step.cut === undefined) widths.delete(step.i);
    else widths.set(step.i, Math.max(step.cut, widths.get(step.i)! - excess));
  }
  let room = width - total();
  for (const [i, w] of widths) {
    const more = Math.min(Math.max(0, room), natural[i]! - w);
    widths.set(i, w + more);
    room -= more;
  }
  return [...widths].map(([index, w]) => ({ index, width: w }));
}

/** `text` padded (or cut, ending in …) to exactly `width` characters. */
export function fitText(text: string, width: number, align: 'left' | 'right'): string {
  if (text.length > width) return width <= 1 ? text.slice(0, width) : `${text.slice(0, width - 1)}…`;
  return align === 'right' ? text.padStart(width) : text.padEnd(width);
}

export interface Sections {
  /** Rule rows shown, from the top of the sorted list. */
  ruleRows: number;
  /** Rules that did not fit (a "… N more" line says so). */
  moreRules: number;
  workers: boolean;
  reasons: boolean;
  interfaces: boolean;
}

/**
 * What fits in `height` lines: 2 header lines and a footer line always; then the rules table
 * (blank, titles, rows); the workers table and the drop reasons under it, and the interfaces
 * table, each only while at least one rule row still fits beside them (they go first when the
 * terminal is short: interfaces, then workers).
 */
export function fitSections(
  height: number,
  counts: { rules: number; workers: number; interfaces: number; reasons: boolean },
): Sections {
  const workersLines = 2 + counts.workers + (counts.reasons ? 1 : 0);
  const interfacesLines = counts.interfaces > 0 ? 2 + counts.interfaces : 0;
  // Lines left for rule rows (a blank line and the titles, or "no rules", take two).
  const rulesBudget = (others: number): number => height - 3 - 2 - others;
  const wanted = Math.min(counts.rules, 2);
  let workers = true;
  let interfaces = interfacesLines > 0;
  const others = (): number => (workers ? workersLines : 0) + (interfaces ? interfacesLines : 0);
  if (interfaces && rulesBudget(others()) < wanted) interfaces = false;
  if (workers && rulesBudget(others()) < wanted) workers = false;
  const budget = Math.max(Math.min(counts.rules, 1), rulesBudget(others()));
  // A list that does not fit gives its last line to "… N more".
  const ruleRows = counts.rules <= budget ? counts.rules : Math.max(1, budget - 1);
  return {
    ruleRows,
    moreRules: counts.rules - ruleRows,
    workers,
    reasons: workers && counts.reasons,
    interfaces,
  };
}

function stateTone(state: string): Tone {
  return state === 'active' || state === 'running'
    ? 'good'
    : state === 'degraded' || state === 'starting'
      ? 'warn'
      : 'bad';
}

function dropsPerSecondCell(value: number | null): Cell {
  if (value === null) return cell('-', 'dim');
  return cell(formatSi(value), value > 0 ? 'bad' : 'plain');
}

function totalCell(value: number): Cell {
  return cell(formatCount(value), value > 0 ? 'warn' : 'plain');
}

export function rulesTable(rules: RuleRow[]): Table {
  // RTP LOST only when a rule counts its RTP stream health (the rtp option).
  const rtp = rules.some((r) => r.rtpLost !== null);
  const columns: ColumnSpec[] = [
    { title: 'RULE', align: 'left', drop: 0, cut: { at: 1, minWidth: 8 } },
    { title: 'ID', align: 'left', drop: 11 },
    { title: 'INPUT', align: 'left', drop: 8, cut: { at: 8.7, minWidth: 14 } },
    { title: 'IN PPS', align: 'right', drop: 0 },
    { title: 'IN BIT/S', align: 'right', drop: 9 },
    { title: 'OUT PPS', align: 'right', drop: 4 },
    { title: 'OUT BIT/S', align: 'right', drop: 10 },
    { title: 'DROPS/S', align: 'right', drop: 3 },
    { title: 'DROPS', align: 'right', drop: 6 },
    { title: 'COPY ERR', align: 'right', drop: 8.5 },
    ...(rtp ? [{ title: 'RTP LOST', align: 'right', drop: 6.5 } as const] : []),
    { title: 'LAST', align: 'right', drop: 7 },
    { title: 'STATE', align: 'left', drop: 5, cut: { at: 12, minWidth: 8 } },
  ];
  return {
    columns,
    rows: rules.map((r) => [
      cell(r.label),
      cell(r.id, 'dim'),
      cell(r.input),
      cell(formatPps(r.inPps)),
      cell(formatBitRate(r.inBitRate)),
      cell(formatPps(r.outPps)),
      cell(formatBitRate(r.outBitRate)),
      dropsPerSecondCell(r.dropsPerSecond),
      totalCell(r.drops),
      totalCell(r.copyErrors),
      ...(rtp ? [r.rtpLost === null ? cell('-', 'dim') : totalCell(r.rtpLost)] : []),
      cell(
        formatAge(r.lastPacketAge),
        r.lastPacketAge === null ? 'dim' : r.lastPacketAge > 5 ? 'warn' : 'plain',
      ),
      cell(r.reason ? `${r.state}: ${r.reason}` : r.state, stateTone(r.state)),
    ]),
  };
}

export function workersTable(workers: WorkerRow[]): Table {
  return {
    columns: [
      { title: 'WORKER', align: 'right', drop: 0 },
      { title: 'PID', align: 'right', drop: 5 },
      { title: 'STATE', align: 'left', drop: 2 },
      { title: 'CPU', align: 'right', drop: 1 },
      { title: 'FRAMES/S', align: 'right', drop: 0 },
      { title: 'DROPPED', align: 'right', drop: 3 },
      { title: 'RING DROPS', align: 'right', drop: 1 },
      { title: 'RESTARTS', align: 'right', drop: 4 },
      { title: 'RSS', align: 'right', drop: 6 },
    ],
    rows: workers.map((w) => [
      cell(String(w.id)),
      cell(w.pid === null ? '-' : String(w.pid)),
      cell(w.state, stateTone(w.state)),
      cell(`${w.cpuPercent.toFixed(1)}%`),
      cell(formatPps(w.framesPerSecond)),
      totalCell(w.dropped),
      cell(formatCount(w.ringDrops), w.ringDrops > 0 ? 'bad' : 'plain'),
      cell(String(w.restarts), w.restarts > 0 ? 'warn' : 'plain'),
      cell(w.rssBytes === null ? '-' : formatBytes(w.rssBytes)),
    ]),
  };
}

export function interfacesTable(interfaces: InterfaceRow[]): Table {
  return {
    columns: [
      { title: 'INTERFACE', align: 'left', drop: 0, cut: { at: 1, minWidth: 8 } },
      { title: 'RX DROPPED', align: 'right', drop: 0 },
      { title: 'RX MISSED', align: 'right', drop: 2 },
      { title: 'TX DROPPED', align: 'right', drop: 1 },
      { title: 'TX ERRORS', align: 'right', drop: 1 },
      { title: 'DROPS/S', align: 'right', drop: 0 },
    ],
    rows: interfaces.map((i) => [
      cell(i.name),
      totalCell(i.rxDropped),
      totalCell(i.rxMissed),
      totalCell(i.txDropped),
      totalCell(i.txErrors),
      dropsPerSecondCell(i.dropsPerSecond),
    ]),
  };
}

/** The totals line: "in 1.00k pps  out 2.00k pps  drops 150/s (12.3k)  workers 2/2". */
export function totalsLine(model: TopModel): string {
  const t = model.totals;
  const dropRate = t.dropsPerSecond === null ? '-' : formatSi(t.dropsPerSecond);
  return [
    `in ${formatPps(t.inPps)} pps`,
    `out ${formatPps(t.outPps)} pps`,
    `drops ${dropRate}/s (total ${formatCount(t.drops)})`,
    `workers ${t.workersRunning}/${t.workers} running`,
  ].join('   ');
}

/** "drops by reason: no_rule 1.20k, egress_failed 3", or '' when nothing was dropped. */
export function reasonsLine(model: TopModel): string {
  if (model.totals.dropsByReason.length === 0) return '';
  return `drops by reason: ${model.totals.dropsByReason.map(([r, n]) => `${r} ${formatCount(n)}`).join(', ')}`;
}
