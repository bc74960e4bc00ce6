// For unit tests that need the kernel (root): they run again in a network namespace of their own
// (unshare --net, loopback up), so whatever they send stays there and vanishes with the process,
// even when a test fails or is killed. Not a test file itself: it only exports.
import { spawnSync } from 'node:child_process';

export const isRoot = process.getuid?.() === 0;

const MARK = 'MCR_TEST_PRIVATE_NETNS';

/** True in the copy of a test file that rerunInPrivateNetns started. */
export const inPrivateNetns = process.env[MARK] === '1';

/** Runs `file` with node --test in a new network namespace; its status and everything it printed. */
export function rerunInPrivateNetns(file: string): { status: number | null; output: string } {
  const env: NodeJS.ProcessEnv = { ...process.env, [MARK]: '1' };
  delete env.NODE_TEST_CONTEXT; // the inner runner reports on its own, not to ours
  const r = spawnSync(
    'unshare',
    [
      '--net',
      '--',
      'sh',
      '-c',
      'ip link set lo up && exec "$0" --test --test-reporter=spec "$1"',
      process.execPath,
      file,
    ],
    { encoding: 'utf8', env, timeout: 300_000 },
  );
  return { status: r.status, output: `${r.stdout}\n${r.stderr}${r.error ? `\n${r.error.message}` : ''}` };
}
