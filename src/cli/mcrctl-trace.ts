import { Option, type Command } from 'commander';
import type { TraceParams, TraceView } from '../protocol/control-api.js';
import type { ControlClient, StreamNotification } from '../protocol/control-client.js';
import { MAX_TRACE_COUNT, MAX_TRACE_SECONDS } from '../protocol/trace.js';
import { UsageError } from './package-info.js';
import { formatTable } from './table.js';
import { traceLine } from './trace-line.js';

/** What the trace commands need of mcrctl: its connection to mcrd, and how to print. */
export interface TraceContext {
  connect(): Promise<ControlClient>;
  json(): boolean;
  print(json: unknown, text: () => string): void;
}

interface TraceOptions {
  rule?: string;
  input?: string;
  count: string;
  timeout: string;
  dropsOnly?: boolean;
}

/** mcrctl trace (--rule ID|NAME | --input IF[:GROUP[:PORT]]) [--count N] [--timeout S] [--drops-only] */
export function registerTraceCommand(program: Command, context: TraceContext): void {
  program
    .command('trace')
    .description(
      "show what mcrd does with each packet of a rule or an input: the rule matched, each copy's path, or why it was dropped",
    )
    .addOption(new Option('-r, --rule <id|name>', 'the packets matched to this rule').conflicts('input'))
    .option(
      '-i, --input <if[:group[:port]]>',
      'the packets arriving on this interface (to this group, and port); malformed frames, which have no group, only without them',
    )
    .option('-c, --count <n>', `stop after N packets (1-${MAX_TRACE_COUNT})`, '20')
    .option('-t, --timeout <seconds>', `stop after this long (at most ${MAX_TRACE_SECONDS})`, '30')
    .option('-d, --drops-only', 'only packets that were dropped, with the reason')
    .addHelpText(
      'after',
      '\nOne line per packet, as it arrived (kernel time): interface, source > destination, UDP length,\n' +
        "TTL, then the rule and each output's copy (raw or socket path, refused ERRNO, ttl_expired,\n" +
        "detached), or 'drop REASON' (the reasons of mcrctl stats). With --json, one JSON object per\n" +
        'packet. Every worker traces (fanout spreads packets over them); tracing costs forwarding\n' +
        'nothing measurable, and at most 4 traces run at once.\n\n' +
        'Exit status: 0 when the count was reached or the timeout ran out (it says how many were\n' +
        'seen), 1 when the trace ended otherwise (its rule was removed, mcrd stopped) or failed.\n\n' +
        'Examples:\n' +
        '  mcrctl trace --rule cam1\n' +
        '  mcrctl trace --input eth0:239.1.1.1:5000 --count 100\n' +
        '  mcrctl trace --input eth0 --drops-only --timeout 60',
    )
    .action(async (opts: TraceOptions) => {
      process.exitCode = await runTrace(traceParams(opts), context);
    });

  program
    .command('traces')
    .description('list the traces running (at most 4 at once), and those still stopping in a worker')
    .action(async () => {
      const client = await context.connect();
      const { traces } = await client.call('trace.list');
      context.print({ traces }, () => (traces.length === 0 ? 'no traces' : tracesTable(traces)));
    });
}

function tracesTable(traces: TraceView[]): string {
  return formatTable(
    ['ID', 'CLIENT', 'TRACES', 'SHOWN', 'STARTED', 'STATE', 'WORKERS'],
    traces.map((t) => [
      String(t.id),
      String(t.client),
      traceSubject(t) + (t.dropsOnly ? ', drops only' : ''),
      `${t.shown}/${t.count}`,
      t.startedAt,
      t.state,
      String(t.workersTracing),
    ]),
  );
}

/** "rule r-… (cam1) on eth0", or "eth0:239.1.1.1:5000". */
function traceSubject(trace: TraceView): string {
  return trace.rule !== null
    ? `rule ${trace.rule.id}${trace.rule.name !== null ? ` (${trace.rule.name})` : ''} on ${trace.interface}`
    : [trace.interface, trace.group, trace.port].filter((p) => p !== null).join(':');
}

/** The request, from the options (checked here: a trace that cannot run is bad usage). */
export function traceParams(opts: TraceOptions): TraceParams {
  const count = wholeNumber(opts.count, '--count', 1, MAX_TRACE_COUNT);
  const timeout = Number(opts.timeout);
  if (!Number.isFinite(timeout) || timeout <= 0 || timeout > MAX_TRACE_SECONDS)
    throw usage(`--timeout ${opts.timeout}: give seconds, more than 0 and at most ${MAX_TRACE_SECONDS}`);
  const common = { count, timeout, ...(opts.dropsOnly ? { dropsOnly: true } : {}) };
  if (opts.rule !== undefined) return { rule: opts.rule, ...common };
  if (opts.input === undefined) throw usage('give --rule ID|NAME or --input IF[:GROUP[:PORT]]');
  const [name, group, port, ...rest] = opts.input.split(':');
  if (rest.length > 0 || !name) throw usage(`--input ${opts.input}: expected IF, IF:GROUP or IF:GROUP:PORT`);
  return {
    interface: name,
    ...(group ? { group } : {}),
    ...(port ? { port: wholeNumber(port, '--input port', 1, 65_535) } : {}),
    ...common,
  };
}

/** Runs a trace to its end; the exit status. */
async function runTrace(params: TraceParams, context: TraceContext): Promise<number> {
  const client = await context.connect();
  const json = context.json();
  let shown = 0;
  let ended: { reason: string; lost: number } | undefined;
  const done = new Promise<void>((resolve) => {
    // One stream on this connection: its items may come before the reply is read.
    client.onNotification((n: StreamNotification) => {
      if (n.method === 'trace') {
        if (n.params.missed > 0)
          process.stderr.write(
            `mcrctl: ${n.params.missed} packets were not recorded (a worker's trace buffer was full)\n`,
          );
        if (n.params.packet === null) return;
        shown++;
        process.stdout.write(`${json ? JSON.stringify(n.params.packet) : traceLine(n.params.packet)}\n`);
      } else if (n.method === 'stream.lost') {
        process.stderr.write(
          `mcrctl: ${n.params.lost} packets lost on the way (mcrctl did not read fast enough)\n`,
        );
      } else if (n.method === 'stream.end') {
        ended = n.params;
        resolve();
      }
    });
    void client.closed().then(() => resolve());
  });
  const { trace } = await client.call('trace.start', params);
  const what = traceSubject(trace);
  // On stderr, as tcpdump says what it listens on: stdout has only the packets.
  process.stderr.write(
    `tracing ${what}${trace.dropsOnly ? ', drops only' : ''}: up to ${plural(trace.count, 'packet')} or ${trace.timeoutSeconds} s\n`,
  );
  if (trace.unseen !== null) process.stderr.write(`mcrctl: note: ${trace.unseen}\n`);
  const stop = (): void => client.close();
  process.once('SIGINT', stop);
  await done;
  process.removeListener('SIGINT', stop);
  const summary = `${shown} of ${plural(trace.count, 'packet')} seen`;
  if (ended === undefined) {
    process.stderr.write(`mcrctl: trace ended: ${summary}\n`);
    return 0;
  }
  if (ended.reason === 'count reached') return 0;
  if (ended.reason === 'timeout') {
    process.stderr.write(`mcrctl: trace timed out after ${trace.timeoutSeconds} s: ${summary}\n`);
    return 0;
  }
  process.stderr.write(`mcrctl: trace ended (${ended.reason}): ${summary}\n`);
  return 1;
}

function plural(n: number, word: string): string {
  return `${n} ${word}${n === 1 ? '' : 's'}`;
}

function wholeNumber(text: string, option: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max)
    throw usage(`${option} ${text}: give a whole number from ${min} to ${max}`);
  return Number(text);
}

function usage(message: string): UsageError {
  return new UsageError('E_USAGE', message);
}
