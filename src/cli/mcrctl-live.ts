import type { Command } from 'commander';
import type { StatsView } from '../protocol/control-api.js';
import { ClientError } from '../protocol/control-client.js';
import type { ClientContext } from './mcrctl-config.js';
import { StatsPoller, every, type Poll } from './live-stats.js';
import { UsageError } from './package-info.js';
import { colourWanted, intervalMs, onStopSignals } from './terminal-output.js';
import { statsText } from './views.js';

/** What the live commands need of mcrctl besides calling and printing. */
export interface LiveContext extends ClientContext {
  socketPath(): string;
  json(): boolean;
}

/** mcrctl stats [--watch] [--interval S] and mcrctl top [--interval S] */
export function registerLiveCommands(program: Command, context: LiveContext): void {
  program
    .command('stats')
    .description(
      'show per-rule and per-worker counters with rates, and the RTP stream health of rules with --rtp; --watch shows them again every interval',
    )
    .option('-w, --watch', 'show them again every interval until Ctrl-C (or q on a terminal)')
    .option('--interval <seconds>', 'with --watch: seconds between refreshes, 0.1-3600 (default 1)')
    .addHelpText(
      'after',
      '\nWith --watch on a terminal the tables are redrawn in place; into a pipe or a file each refresh\n' +
        'is a plain block (no colours, no cursor movement) under a "--- mcrd stats TIME ---" line.\n' +
        'With --json, every refresh is one JSON object on one line (the stats.get answer), and a\n' +
        'refresh that could not reach mcrd is {"time": …, "error": {"code": …, "message": …}}.\n' +
        'Once it has reached mcrd, a watch outlives mcrd restarts: it says so and tries again.\n\n' +
        'Examples:\n  mcrctl stats\n  mcrctl stats --watch --interval 2\n' +
        "  mcrctl --json stats --watch | jq -c '.rules[] | {name, pps: .rates.packetsIn}'",
    )
    .action(async (opts: { watch?: boolean; interval?: string }) => {
      if (!opts.watch) {
        if (opts.interval !== undefined) throw usage('--interval goes with --watch');
        const stats = await context.call('stats.get');
        context.print(stats, () => statsText(stats));
        return;
      }
      const ms = refreshInterval(opts.interval);
      const reached = await reachMcrd(context.socketPath());
      if (context.json()) return watchLines(reached, ms, jsonLine);
      if (!process.stdout.isTTY) return watchLines(reached, ms, textBlock);
      const { runStatsWatch } = await loadTerminalUi(() => import('./stats-watch-view.js'));
      await runStatsWatch({ ...reached, intervalMs: ms });
    });

  program
    .command('top')
    .description('a live full-screen view of rules, workers and drops, refreshed every interval')
    .option('--interval <seconds>', 'seconds between refreshes, 0.1-3600 (default 1)')
    .addHelpText(
      'after',
      '\nRules are sorted by input rate; s cycles the order (rate, name, drops); q or Ctrl-C quits.\n' +
        "IN/OUT PPS and BIT/S are rates over mcrd's last interval (BIT/S counts UDP payload); DROPS\n" +
        'counts input packets a rule relayed to no output, DROPS/S their rate since the last refresh;\n' +
        'COPY ERR counts copies an output could not send; RTP LOST (rules with --rtp) the RTP sequence\n' +
        'numbers that never came; LAST is how long ago the rule matched a packet.\n' +
        'The header totals every frame the workers took (matched or not) and every frame they dropped,\n' +
        "by reason under the workers table; the interfaces table is the kernel's own drop counters\n" +
        'for every interface a rule uses. A narrow terminal drops the less needed columns first.\n' +
        'When mcrd goes away the screen says so and keeps trying. It needs a terminal: in scripts use\n' +
        '`mcrctl --json stats --watch` (or `mcrctl --json top`, the same), one JSON object per line.\n' +
        'Colours are left out when NO_COLOR is set or TERM=dumb.\n\n' +
        'Examples:\n  mcrctl top\n  mcrctl top --interval 0.5\n  ssh relay1 -t mcrctl top',
    )
    .action(async (opts: { interval?: string }) => {
      const ms = refreshInterval(opts.interval);
      if (context.json()) return watchLines(await reachMcrd(context.socketPath()), ms, jsonLine);
      if (!process.stdout.isTTY || !process.stdin.isTTY) {
        throw new UsageError(
          'E_NOT_A_TERMINAL',
          'mcrctl top draws a live screen and needs a terminal on its input and output; in scripts and pipes ' +
            'use mcrctl --json stats --watch (one JSON object per line per interval)',
        );
      }
      const reached = await reachMcrd(context.socketPath());
      const { runTop } = await loadTerminalUi(() => import('./top-view.js'));
      await runTop({
        ...reached,
        intervalMs: ms,
        colour: colourWanted(process.stdout, process.env),
      });
    });
}

function usage(message: string): UsageError {
  return new UsageError('E_USAGE', message);
}

function refreshInterval(text: string | undefined): number {
  if (text === undefined) return 1000;
  const ms = intervalMs(text);
  if (ms === undefined) throw usage(`--interval ${text}: give seconds between 0.1 and 3600, e.g. 1 or 0.5`);
  return ms;
}

/** A poller that has reached mcrd, and its first answer: a view never starts against a socket that cannot work. */
async function reachMcrd(socketPath: string): Promise<{ poller: StatsPoller; first: Poll & { ok: true } }> {
  const poller = new StatsPoller(socketPath);
  const first = await poller.poll();
  if (!first.ok) throw new ClientError(first.error.code, first.error.message);
  return { poller, first };
}

/**
 * The terminal UI (ink) is loaded only by the commands that draw one. ink treats a CI
 * environment variable as "not interactive" and then draws nothing until it exits; these
 * commands have already made sure they are on a terminal, so that guess does not apply.
 */
async function loadTerminalUi<T>(load: () => Promise<T>): Promise<T> {
  delete process.env.CI;
  delete process.env.CONTINUOUS_INTEGRATION;
  return load();
}

function jsonLine(poll: Poll): string {
  if (poll.ok) return `${JSON.stringify(poll.snapshot.stats)}\n`;
  return `${JSON.stringify({ time: new Date().toISOString(), error: poll.error })}\n`;
}

function textBlock(poll: Poll): string {
  if (!poll.ok) {
    const now = new Date().toISOString();
    return `--- mcrd stats ${now} ---\nmcrd not reachable (${poll.error.code}: ${poll.error.message}); trying again\n\n`;
  }
  const stats: StatsView = poll.snapshot.stats;
  return `--- mcrd stats ${stats.time} ---\n${statsText(stats)}\n\n`;
}

/** Writes one rendering per refresh to stdout, the first answer at once, until SIGINT or SIGTERM. */
function watchLines(
  { poller, first }: { poller: StatsPoller; first: Poll },
  ms: number,
  render: (poll: Poll) => string,
): Promise<void> {
  process.stdout.write(render(first));
  return new Promise((resolve) => {
    const stop = every(
      ms,
      async () => {
        process.stdout.write(render(await poller.poll()));
      },
      { first: 'after an interval' },
    );
    onStopSignals(() => {
      stop();
      poller.close();
      resolve();
    });
  });
}
