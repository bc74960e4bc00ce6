import ansiEscapes from 'ansi-escapes';
import { Box, render, Text, useApp, useInput, useStdin, useStdout } from 'ink';
import { createElement as h, useEffect, useState, type ReactElement } from 'react';
import { performance } from 'node:perf_hooks';
import { onStopSignals } from './terminal-output.js';
import { every, type DaemonInfo, type Poll, type StatsPoller } from './live-stats.js';
import { formatUptime } from './rate-format.js';
import {
  COLUMN_GAP,
  fitColumns,
  fitSections,
  fitText,
  interfacesTable,
  reasonsLine,
  rulesTable,
  totalsLine,
  workersTable,
  type Table,
  type Tone,
} from './top-layout.js';
import { nextSortKey, topModel, type Snapshot, type SortKey } from './top-model.js';

// mcrctl top on the screen: ink (React for terminals) draws each frame, reads the keys and
// follows the terminal's size. Everything it shows is computed by
// top-model.ts and fitted by top-layout.ts; this file only paints.

/** The terminal top draws on: process.stdout and process.stdin, or stand-ins in a test. */
export interface Terminal {
  stdout: NodeJS.WriteStream;
  stdin: NodeJS.ReadStream;
}

export interface TopOptions {
  poller: Pick<StatsPoller, 'poll' | 'close'>;
  /** The poller's first answer, shown at once. */
  first: Poll & { ok: true };
  intervalMs: number;
  colour: boolean;
}

interface Live {
  now: Snapshot;
  /** The answer before `now` from the same mcrd, for drops per second. */
  before?: Snapshot;
  daemon: DaemonInfo;
  /** Set while mcrd cannot be reached; the last numbers stay on screen, marked as old. */
  error?: { code: string; message: string; since: number };
}

const TONE_COLOURS: Record<Tone, string | undefined> = {
  plain: undefined,
  good: 'green',
  warn: 'yellow',
  bad: 'red',
  dim: 'gray',
};

function line(key: string, text: string, props: Record<string, unknown> = {}): ReactElement {
  return h(Text, { key, wrap: 'truncate', ...props }, text);
}

function gap(key: string): ReactElement {
  return h(Box, { key, height: 1 });
}

/** A table as lines: bold titles, then `rows` rows, each cell coloured by its tone. */
function tableLines(key: string, table: Table, width: number, rows: number, colour: boolean): ReactElement[] {
  const fitted = fitColumns(table, width);
  const spacing = ' '.repeat(COLUMN_GAP);
  const titles = fitted
    .map((f) => fitText(table.columns[f.index]!.title, f.width, table.columns[f.index]!.align))
    .join(spacing);
  const out = [line(`${key}-titles`, titles.trimEnd(), { bold: true })];
  table.rows.slice(0, rows).forEach((row, r) => {
    const cells = fitted.flatMap((f, c) => {
      const value = row[f.index]!;
      const text = fitText(value.text, f.width, table.columns[f.index]!.align);
      const colourProps =
        colour && value.tone !== 'plain'
          ? value.tone === 'dim'
            ? { dimColor: true }
            : { color: TONE_COLOURS[value.tone] }
          : {};
      const cell = h(Text, { key: `c${c}`, ...colourProps }, text);
      return c === 0 ? [cell] : [h(Text, { key: `g${c}` }, spacing), cell];
    });
    out.push(h(Text, { key: `${key}-${r}`, wrap: 'truncate' }, ...cells));
  });
  return out;
}

function headerLine(live: Live, intervalMs: number): string {
  const d = live.daemon;
  const up = formatUptime((performance.now() - d.startedAt) / 1000);
  const time = live.now.stats.time.replace('T', ' ').replace(/\.\d+Z$/, 'Z');
  return `mcrd ${d.version}  pid ${d.pid}  up ${up}  refresh ${intervalMs / 1000}s  ${time}`;
}

function TopScreen(options: TopOptions): ReactElement {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const { isRawModeSupported } = useStdin();
  const [size, setSize] = useState({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
  const [sort, setSort] = useState<SortKey>('rate');
  const [live, setLive] = useState<Live>({ now: options.first.snapshot, daemon: options.first.daemon });

  useEffect(() => {
    const resized = (): void => setSize({ columns: stdout.columns || 80, rows: stdout.rows || 24 });
    stdout.on('resize', resized);
    return () => void stdout.off('resize', resized);
  }, [stdout]);

  useEffect(() => {
    const stop = every(
      options.intervalMs,
      async () => {
        const poll = await options.poller.poll();
        setLive((prev) => {
          if (!poll.ok) {
            const since = prev.error?.since ?? performance.now();
            return { ...prev, error: { ...poll.error, since } };
          }
          // Drops per second compare with the previous answer of the same mcrd only.
          const same = prev.daemon?.pid === poll.daemon.pid;
          return { now: poll.snapshot, before: same ? prev.now : undefined, daemon: poll.daemon };
        });
      },
      { first: 'after an interval' },
    );
    return () => {
      stop();
      options.poller.close();
    };
  }, [options.poller, options.intervalMs]);

  useInput(
    (input) => {
      // Keys typed quickly (or pasted) arrive together: each counts.
      for (const key of input.toLowerCase()) {
        if (key === 'q') return exit();
        if (key === 's') setSort(nextSortKey);
      }
    },
    { isActive: isRawModeSupported === true },
  );

  const width = Math.max(20, size.columns);
  // One line short of the terminal: a screen-high frame would make ink clear the whole screen
  // (and the scrollback) on every refresh.
  const height = Math.max(6, size.rows - 1);
  const lines: ReactElement[] = [line('header', headerLine(live, options.intervalMs), { bold: true })];
  const model = topModel(live.now, live.before, sort);
  if (live.error) {
    // The last numbers stay below, with this line in place of the totals.
    const ago = Math.round((performance.now() - live.error.since) / 1000);
    const text = `mcrd not reachable for ${ago}s (${live.error.code}: ${live.error.message}); retrying every ${options.intervalMs / 1000}s`;
    lines.push(line('error', text, options.colour ? { color: 'red', bold: true } : { inverse: true }));
  } else {
    lines.push(line('totals', totalsLine(model)));
  }

  const reasons = reasonsLine(model);
  const fit = fitSections(height, {
    rules: model.rules.length,
    workers: model.workers.length,
    interfaces: model.interfaces.length,
    reasons: reasons !== '',
  });
  lines.push(gap('gap-rules'));
  if (model.rules.length === 0) lines.push(line('no-rules', 'no rules (mcrctl add, or a config file)'));
  else lines.push(...tableLines('rules', rulesTable(model.rules), width, fit.ruleRows, options.colour));
  if (fit.moreRules > 0) {
    lines.push(line('more', `… ${fit.moreRules} more rules (a taller terminal shows them)`));
  }
  if (fit.workers) {
    lines.push(gap('gap-workers'));
    lines.push(
      ...tableLines('workers', workersTable(model.workers), width, model.workers.length, options.colour),
    );
    if (fit.reasons) lines.push(line('reasons', reasons));
  }
  if (fit.interfaces) {
    const table = interfacesTable(model.interfaces);
    lines.push(
      gap('gap-interfaces'),
      ...tableLines('interfaces', table, width, model.interfaces.length, options.colour),
    );
  }

  const footer = `q quit   s sort: ${sort}   rates over ${model.rateInterval.toFixed(1)}s`;
  return h(
    Box,
    { flexDirection: 'column', width, height },
    h(Box, { flexDirection: 'column', flexGrow: 1, overflow: 'hidden' }, ...lines),
    line('footer', fitText(footer, width, 'left'), { inverse: true }),
  );
}

/**
 * Runs the full-screen view until q or Ctrl-C (or SIGINT, SIGTERM, SIGHUP), on the terminal's alternate
 * screen so that what was on the terminal before is back afterwards.
 */
export async function runTop(
  options: TopOptions,
  terminal: Terminal = { stdout: process.stdout, stdin: process.stdin },
): Promise<void> {
  const { stdout, stdin } = terminal;
  stdout.write(ansiEscapes.enterAlternativeScreen + ansiEscapes.cursorTo(0, 0));
  // Each frame is written whole (erase the last one, draw the next) rather than line by line:
  // after a resize the terminal has moved and rewrapped what it shows, and a line-by-line update
  // would patch a screen that is no longer there. The frame ends one line above the bottom, so
  // erasing it always starts from where ink left the cursor.
  // Warnings a library writes with console.* go above the frame, not through it.
  const app = render(h(TopScreen, options), {
    stdout,
    stdin,
    exitOnCtrlC: true,
    patchConsole: stdout === process.stdout,
  });
  const ignoreSignals = onStopSignals(() => app.unmount());
  try {
    await app.waitUntilExit();
  } finally {
    ignoreSignals();
    stdout.write(ansiEscapes.exitAlternativeScreen);
  }
}
