// A control-socket client that pipelines many ping requests on one connection and reads every
// reply, for the tests of the control server's limits: run in its own process, it loads the server
// the way a script would without sharing its event loop. Prints one JSON line:
// {"replies": N, "errors": N, "ms": T}. With READ_AFTER_MS it reads nothing for that long first, as
// a script that writes all its requests before it reads does (the replies pile up meanwhile).
//   node control-flood.js SOCKET COUNT [READ_AFTER_MS]
import { spawn } from 'node:child_process';
import { connect } from 'node:net';
import { fileURLToPath } from 'node:url';

/** What the flood client prints when every reply came. */
export interface FloodReport {
  replies: number;
  errors: number;
  ms: number;
}

/** A flood client running in a process of its own (see the top of this file). */
export interface Flood {
  /** True once the process exited. */
  readonly done: boolean;
  /** Waits for the process; its exit status (0: every reply came), its report, its stderr. */
  finished(): Promise<{ code: number | null; report: FloodReport | undefined; stderr: string }>;
}

/** Starts a flood of `count` pings on `socketPath`, read after `readAfterMs`. */
export function startFlood(socketPath: string, count: number, readAfterMs = 0): Flood {
  const script = fileURLToPath(import.meta.url);
  const child = spawn(process.execPath, [script, socketPath, String(count), String(readAfterMs)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  let err = '';
  child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
  child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
  let done = false;
  const exited = new Promise<number | null>((resolve) =>
    child.once('exit', (code) => {
      done = true;
      resolve(code);
    }),
  );
  return {
    get done() {
      return done;
    },
    async finished() {
      const code = await exited;
      const report = out.trim() ? (JSON.parse(out) as FloodReport) : undefined;
      return { code, report, stderr: err };
    },
  };
}

/** COUNT ping requests, one per line, ids 1..COUNT: the text a pipelining client writes. */
export function pingLines(count: number, firstId = 1): string {
  const lines: string[] = [];
  for (let id = firstId; id < firstId + count; id++)
    lines.push(`{"jsonrpc":"2.0","id":${id},"method":"ping"}\n`);
  return lines.join('');
}

function main(): void {
  const [path, countText, readAfterText] = process.argv.slice(2);
  const count = Number(countText);
  const readAfterMs = Number(readAfterText ?? 0);
  if (!path || !Number.isInteger(count) || count < 1 || !(readAfterMs >= 0))
    throw new Error('usage: control-flood SOCKET COUNT [READ_AFTER_MS]');
  const started = performance.now();
  let replies = 0;
  let errors = 0;
  const socket = connect(path);
  socket.setEncoding('utf8');
  if (readAfterMs > 0) {
    socket.pause();
    setTimeout(() => socket.resume(), readAfterMs);
  }
  socket.once('connect', () => socket.write(pingLines(count)));
  let rest = '';
  socket.on('data', (chunk: string) => {
    const lines = (rest + chunk).split('\n');
    rest = lines.pop() ?? '';
    for (const line of lines) {
      replies++;
      if (line.includes('"error"')) errors++;
    }
    if (replies >= count) {
      process.stdout.write(
        `${JSON.stringify({ replies, errors, ms: Math.round(performance.now() - started) })}\n`,
      );
      socket.end();
    }
  });
  socket.on('close', () => {
    if (replies < count) {
      process.stderr.write(`control-flood: connection closed after ${replies} of ${count} replies\n`);
      process.exitCode = 1;
    }
  });
  socket.on('error', (err) => {
    process.stderr.write(`control-flood: ${err.message}\n`);
    process.exitCode = 1;
  });
}

if (process.argv[1]?.endsWith('control-flood.js')) main();
