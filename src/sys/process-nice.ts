import { readFileSync } from 'node:fs';

/**
 * The nice value of process `pid`'s main thread, from /proc/PID/stat (field 19), or undefined when
 * the process is gone or the line is not as the kernel writes it. The name (field 2) may hold
 * spaces and parentheses, so the fields are counted from its last ')'.
 */
export function niceOf(pid: number): number | undefined {
  let stat: string;
  try {
    stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
  } catch {
    return undefined;
  }
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  // fields[0] is field 3 (state): field 19 is fields[16].
  const nice = Number(fields[16]);
  return Number.isInteger(nice) && nice >= -20 && nice <= 19 ? nice : undefined;
}
