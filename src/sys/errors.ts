import { getSystemErrorMap } from 'node:util';

const systemErrors = getSystemErrorMap();

/** errno (positive) → its symbolic name, e.g. 1 → "EPERM". */
export function errnoName(errno: number): string {
  return systemErrors.get(-errno)?.[0] ?? `E${errno}`;
}

/** errno (positive) → the C library's sentence for it. */
export function errnoMessage(errno: number): string {
  return systemErrors.get(-errno)?.[1] ?? `error ${errno}`;
}

/**
 * A failed system call. `code` is the errno name (stable, e.g. "EPERM"), `call` names the call and
 * what it was for, so a log line says which step failed and why.
 */
export class SysError extends Error {
  readonly code: string;
  readonly errno: number;
  readonly call: string;

  constructor(call: string, errno: number) {
    super(`${call} failed: ${errnoName(errno)} (${errnoMessage(errno)})`);
    this.name = 'SysError';
    this.code = errnoName(errno);
    this.errno = errno;
    this.call = call;
  }
}
