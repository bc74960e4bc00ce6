import { readFileSync } from 'node:fs';
import { socketPathProblem } from '../protocol/control-client.js';

/** The version in package.json (dist/src/cli → repository root). */
export function packageVersion(): string {
  const url = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

export const DEFAULT_SOCKET = '/run/mcr/mcrd.sock';

/** A command line that cannot work, with a stable code; the programs exit 2 (bad usage) on it. */
export class UsageError extends Error {
  readonly code: string;

  constructor(code: string, message: string) {
    super(message);
    this.name = 'UsageError';
    this.code = code;
  }
}

/**
 * --socket, else $MCR_SOCKET, else the default path. An empty $MCR_SOCKET counts as unset, as
 * ${VAR:-default} does in a shell (a unit file or script that clears it means "no preference");
 * an empty --socket was typed on purpose and is refused, and so is a path longer than a Unix
 * socket address holds (Node would cut it short and use another path).
 */
export function socketPathFrom(option: string | undefined): string {
  if (option === '') {
    throw new UsageError(
      'E_USAGE',
      `--socket is empty; give the control socket's path, or leave --socket out for $MCR_SOCKET or ${DEFAULT_SOCKET}`,
    );
  }
  const fromEnv = option === undefined && process.env.MCR_SOCKET ? process.env.MCR_SOCKET : undefined;
  const path = option ?? fromEnv ?? DEFAULT_SOCKET;
  const problem = socketPathProblem(path);
  if (problem) {
    throw new UsageError(problem.code, `${fromEnv !== undefined ? '$MCR_SOCKET: ' : ''}${problem.message}`);
  }
  return path;
}
