import type { Command } from 'commander';
import type { McrEvent } from '../protocol/control-api.js';
import { ClientError, type ControlClient, type StreamNotification } from '../protocol/control-client.js';
import { EVENT_TYPES } from '../supervisor/event-bus.js';
import { UsageError } from './package-info.js';

/** What mcrctl events needs of mcrctl: a connection that said its protocol, and --json. */
export interface EventsContext {
  connect(): Promise<ControlClient>;
  json(): boolean;
}

/** The types, a family per line, for --help. */
function typesHelp(): string {
  const families = new Map<string, string[]>();
  for (const type of EVENT_TYPES) {
    const family = type.split('.')[0]!;
    families.set(family, [...(families.get(family) ?? []), type]);
  }
  return [...families.values()].map((types) => `  ${types.join(', ')}`).join('\n');
}

/** mcrctl events [--types LIST] [--last N] */
export function registerEventsCommand(program: Command, context: EventsContext): void {
  program
    .command('events')
    .description(
      'follow what happens in mcrd as it happens: rule changes and who made them, rule states, workers, interfaces, flows starting and stopping',
    )
    .option(
      '-t, --types <list>',
      'only these types, comma-separated; a family (rule, worker, interface, flow, config) stands for all its types',
    )
    .option('-l, --last <n>', 'first the last N events mcrd kept (up to 1000), then the new ones')
    .addHelpText(
      'after',
      `\nOne line per event: its time, type and what happened (with --json, the event object, one per\n` +
        `line). It runs until Ctrl-C (exit 0) or until mcrd goes away (exit 1, saying so). Events this\n` +
        `terminal could not take in time are counted and reported, never held by mcrd.\n\n` +
        `Types:\n${typesHelp()}\n\n` +
        'Examples:\n  mcrctl events\n  mcrctl events --last 50 --types rule,worker\n  mcrctl --json events | jq .type',
    )
    .action(async (opts: { types?: string; last?: string }) => {
      const types = opts.types === undefined ? undefined : opts.types.split(',').map((t) => t.trim());
      if (types?.some((t) => t === '')) throw new UsageError('E_USAGE', '--types: an empty type in the list');
      let last: number | undefined;
      if (opts.last !== undefined) {
        if (!/^\d{1,4}$/.test(opts.last) || Number(opts.last) > 1000)
          throw new UsageError('E_USAGE', `--last ${opts.last}: give a number of events from 0 to 1000`);
        last = Number(opts.last);
      }
      const client = await context.connect();
      await follow(client, context.json(), {
        ...(types ? { types } : {}),
        ...(last !== undefined ? { last } : {}),
      });
    });
}

/** Prints events until Ctrl-C (resolves) or until mcrd ends the stream or goes away (rejects). */
function follow(
  client: ControlClient,
  json: boolean,
  params: { types?: string[]; last?: number },
): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    let stream: number | undefined;
    const early: StreamNotification[] = [];
    const stop = (): void => {
      process.off('SIGINT', stop);
      process.off('SIGTERM', stop);
      resolve();
    };
    const handle = (n: StreamNotification): void => {
      if (n.params.stream !== stream) return;
      switch (n.method) {
        case 'event':
          process.stdout.write(`${json ? JSON.stringify(n.params.event) : eventLine(n.params.event)}\n`);
          break;
        case 'stream.lost':
          process.stderr.write(
            `mcrctl: ${n.params.lost} events lost: this mcrctl did not read them in time\n`,
          );
          break;
        case 'stream.end':
          reject(new ClientError('E_DISCONNECTED', `mcrd ended the event stream: ${n.params.reason}`));
          break;
      }
    };
    // Events may follow the reply at once, in the same read: keep them until its stream id is known.
    client.onNotification((n) => (stream === undefined ? early.push(n) : handle(n)));
    process.on('SIGINT', stop);
    process.on('SIGTERM', stop);
    client
      .call('events.subscribe', params)
      .then((reply) => {
        stream = reply.stream;
        for (const n of early.splice(0)) handle(n);
        return client.closed();
      })
      .then(() =>
        reject(new ClientError('E_DISCONNECTED', 'mcrd closed the connection (it stopped or restarted)')),
      )
      .catch(reject);
  });
}

/** "2026-12-01T04:12:33.123Z rule.added r-0123 (video) by control client pid 1234 uid 0: …" */
export function eventLine(event: McrEvent): string {
  return `${event.time} ${event.type} ${event.message}`;
}
