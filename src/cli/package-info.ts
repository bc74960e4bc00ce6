import { readFileSync } from 'node:fs';

/** The version in package.json (dist/src/cli → repository root). */
export function packageVersion(): string {
  const url = new URL('../../../package.json', import.meta.url);
  return (JSON.parse(readFileSync(url, 'utf8')) as { version: string }).version;
}

export const DEFAULT_SOCKET = '/run/mcr/mcrd.sock';

/** --socket, else $MCR_SOCKET, else the default path. */
export function socketPathFrom(option: string | undefined): string {
  return option ?? process.env.MCR_SOCKET ?? DEFAULT_SOCKET;
}
