import { Box, render, Text, useApp, useInput, useStdin, useStdout } from 'ink';
import { createElement as h, useEffect, useState, type ReactElement } from 'react';
import { onStopSignals } from './terminal-output.js';
import { every, type Poll, type StatsPoller } from './live-stats.js';
import { statsText } from './views.js';

// mcrctl stats --watch on a terminal: the stats tables redrawn in place every interval, as
// watch(1) would show them, until q or Ctrl-C. ink does the redrawing and reads the keys.

export interface WatchOptions {
  poller: StatsPoller;
  /** The poller's first answer, shown at once. */
  first: Poll & { ok: true };
  intervalMs: number;
}

function StatsWatch({ poller, first, intervalMs }: WatchOptions): ReactElement {
  const { exit } = useApp();
  const { stdout } = useStdout();
  const { isRawModeSupported } = useStdin();
  const [columns, setColumns] = useState(stdout.columns || 80);
  const [text, setText] = useState(() => statsText(first.snapshot.stats));
  const [problem, setProblem] = useState<string | undefined>();

  useEffect(() => {
    const resized = (): void => setColumns(stdout.columns || 80);
    stdout.on('resize', resized);
    return () => void stdout.off('resize', resized);
  }, [stdout]);

  useEffect(() => {
    const stop = every(
      intervalMs,
      async () => {
        const poll = await poller.poll();
        if (poll.ok) {
          setText(statsText(poll.snapshot.stats));
          setProblem(undefined);
        } else {
          setProblem(
            `${new Date().toISOString()}: mcrd not reachable (${poll.error.code}: ${poll.error.message}); retrying`,
          );
        }
      },
      { first: 'after an interval' },
    );
    return () => {
      stop();
      poller.close();
    };
  }, [poller, intervalMs]);

  useInput(
    (input) => {
      if (input.toLowerCase().includes('q')) exit();
    },
    { isActive: isRawModeSupported === true },
  );

  const title = `every ${intervalMs / 1000}s: mcrctl stats   (q quits)`;
  return h(
    Box,
    { flexDirection: 'column', width: columns },
    h(Text, { bold: true, wrap: 'truncate' }, title),
    ...(problem ? [h(Text, { inverse: true, wrap: 'truncate' }, problem)] : []),
    ...text
      .split('\n')
      .map((l, i) => (l === '' ? h(Box, { key: i, height: 1 }) : h(Text, { key: i, wrap: 'truncate' }, l))),
  );
}

export async function runStatsWatch(options: WatchOptions): Promise<void> {
  const app = render(h(StatsWatch, options), { exitOnCtrlC: true });
  const ignoreSignals = onStopSignals(() => app.unmount());
  try {
    await app.waitUntilExit();
  } finally {
    ignoreSignals();
  }
}
