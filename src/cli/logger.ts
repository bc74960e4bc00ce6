import { pino, type DestinationStream, type Logger } from 'pino';
import { writeSync } from 'node:fs';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;
export const LOG_FORMATS = ['json', 'text'] as const;
export type LogFormat = (typeof LOG_FORMATS)[number];

/**
 * Log lines on stderr, written synchronously so nothing is lost when a process exits right
 * after logging (a crash, a shutdown). Supervisor and workers share the stream; `worker` tells
 * them apart. json: one object per line, for journald and log shippers; text: the same line
 * for reading by eye.
 */
export function createLogger(
  level: string,
  bindings: Record<string, unknown> = {},
  format: LogFormat = 'json',
): Logger {
  const destination = format === 'json' ? pino.destination({ dest: 2, sync: true }) : textDestination();
  return pino({ level, base: { pid: process.pid, ...bindings } }, destination);
}

const LEVEL_NAMES: Record<number, string> = {
  10: 'TRACE',
  20: 'DEBUG',
  30: 'INFO',
  40: 'WARN',
  50: 'ERROR',
  60: 'FATAL',
};

/** "2026-12-01T01:02:03.456Z INFO  rule added rule=r-… name=cam1": pino's JSON line rewritten. */
export function textLine(json: string): string {
  let entry: Record<string, unknown>;
  try {
    entry = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return json;
  }
  const { time, level, msg, ...rest } = entry;
  // The process id is in every line of one process; journald and a terminal know it already.
  delete rest.pid;
  delete rest.hostname;
  const fields = Object.entries(rest)
    .map(([key, value]) => `${key}=${typeof value === 'string' ? value : JSON.stringify(value)}`)
    .join(' ');
  const when = typeof time === 'number' ? new Date(time).toISOString() : '';
  const name = (LEVEL_NAMES[Number(level)] ?? String(level)).padEnd(5);
  return `${when} ${name} ${String(msg ?? '')}${fields ? ` ${fields}` : ''}`;
}

function textDestination(): DestinationStream {
  return {
    write(line: string): void {
      writeSync(2, `${textLine(line.trimEnd())}\n`);
    },
  };
}
