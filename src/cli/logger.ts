import { pino, type Logger } from 'pino';

export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal'] as const;

/**
 * JSON lines on stderr, written synchronously so nothing is lost when a process exits right
 * after logging (a crash, a shutdown). Supervisor and workers share the stream; `worker` tells them apart.
 */
export function createLogger(level: string, bindings: Record<string, unknown> = {}): Logger {
  return pino({ level, base: { pid: process.pid, ...bindings } }, pino.destination({ dest: 2, sync: true }));
}
