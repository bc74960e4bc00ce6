import { existsSync, lstatSync, unlinkSync } from 'node:fs';
import { connect } from 'node:net';
import { dirname } from 'node:path';
import { nonSocketAt, notADirectoryOnTheWay, socketPathProblem } from '../protocol/control-client.js';
import { ControlError } from '../protocol/json-rpc.js';
import { errnoMessage } from '../sys/errors.js';

/**
 * Makes `path` free for mcrd's control socket. Only a socket file nobody answers on is stale (left
 * by a crash) and is removed; a live one belongs to another mcrd, and anything else (a directory,
 * a file, a link) is someone's and is left alone: each of those is an error that says what is
 * there. Checked before any worker or socket exists.
 */
export async function claimSocketPath(path: string): Promise<void> {
  const problem = socketPathProblem(path);
  if (problem) throw new ControlError(problem.code, problem.message);
  try {
    lstatSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (e.code !== 'ENOENT') throw socketPathError(path, e);
    // mcrd creates the socket's own directory (/run/mcr on a fresh /run), nothing above it: a
    // missing directory higher up is more likely a typo than a wish.
    const above = dirname(dirname(path));
    if (!existsSync(dirname(path)) && !existsSync(above)) {
      throw new ControlError(
        'E_SOCKET_PATH',
        `cannot use ${path} as the control socket: ${above} does not exist; mcrd creates only the socket's own directory (${dirname(path)}). Create ${above} or choose another --socket`,
      );
    }
    return;
  }
  const what = nonSocketAt(path, lstatSync);
  if (what !== undefined) {
    throw new ControlError(
      'E_NOT_A_SOCKET',
      `${path} is ${what}, not a socket; mcrd replaces only a socket nobody answers on. Remove it if it is not needed, or choose another --socket`,
    );
  }
  const answer = await new Promise<'live' | 'stale' | 'absent' | NodeJS.ErrnoException>((resolve) => {
    const probe = connect(path);
    probe.once('connect', () => {
      probe.destroy();
      resolve('live');
    });
    probe.once('error', (err: NodeJS.ErrnoException) =>
      resolve(err.code === 'ENOENT' ? 'absent' : err.code === 'ECONNREFUSED' ? 'stale' : err),
    );
  });
  if (typeof answer === 'object') throw socketPathError(path, answer);
  if (answer === 'live') {
    throw new ControlError(
      'E_ALREADY_RUNNING',
      `another mcrd is already serving ${path}; stop it first or choose another --socket`,
    );
  }
  if (answer === 'stale') unlinkSync(path);
}

/** A failed look at, or use of, the socket path, in the operator's terms rather than Node's. */
export function socketPathError(
  path: string,
  err: NodeJS.ErrnoException,
  doing = `use ${path} as the control socket`,
): ControlError {
  const why =
    err.code === 'ENOTDIR'
      ? notADirectoryOnTheWay(path)
      : err.code === 'EACCES'
        ? 'permission denied (mcrd runs as root, or needs write access to the directory)'
        : typeof err.errno === 'number' && err.code !== undefined
          ? `${err.code} (${errnoMessage(-err.errno)})`
          : err.message;
  return new ControlError('E_SOCKET_PATH', `cannot ${doing}: ${why}`);
}
