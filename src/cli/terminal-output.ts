/**
 * Whether to colour what goes to `stream`: only on a terminal, and not when the person asked for
 * none (NO_COLOR set to anything but the empty string, per no-color.org) or the terminal cannot
 * show colours (TERM=dumb).
 */
export function colourWanted(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv): boolean {
  if (stream.isTTY !== true) return false;
  if (env.NO_COLOR !== undefined && env.NO_COLOR !== '') return false;
  return env.TERM !== 'dumb';
}

/**
 * --interval in seconds, as typed, to milliseconds; undefined when it is not a number of seconds
 * between 0.1 and 3600 (a person can still read a screen that refreshes ten times a second).
 */
export function intervalMs(text: string): number | undefined {
  if (!/^\d+(\.\d+)?$|^\.\d+$/.test(text)) return undefined;
  const seconds = Number(text);
  return seconds >= 0.1 && seconds <= 3600 ? Math.round(seconds * 1000) : undefined;
}

/**
 * Calls `stop` once on SIGINT, SIGTERM or SIGHUP (Ctrl-C outside raw mode, kill, a closed ssh
 * session), so a live view ends as on q: terminal restored, exit status 0. Returns the function
 * that removes the handlers.
 */
export function onStopSignals(stop: () => void): () => void {
  const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;
  const handler = (): void => {
    remove();
    stop();
  };
  const remove = (): void => {
    for (const s of signals) process.off(s, handler);
  };
  for (const s of signals) process.on(s, handler);
  return remove;
}
