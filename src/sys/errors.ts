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

/** The stable codes of bpf(2) failures, each registered in src/protocol/error-codes.ts. */
export type BpfErrorCode =
  'E_BPF_PERMISSION' | 'E_BPF_MAP' | 'E_BPF_PROGRAM' | 'E_BPF_VERIFIER' | 'E_BPF_ATTACH';

/**
 * A failed bpf(2) command. `code` says what kind of step failed (a person acts on it: grant
 * capabilities, pick another mode, report a bug); `errno` and `call` say which call and why;
 * `verifierLog` is the tail of the verifier's log when it rejected a program.
 */
export class BpfError extends Error {
  readonly code: BpfErrorCode;
  readonly errno: number;
  readonly errnoName: string;
  readonly call: string;
  readonly verifierLog: string | undefined;

  constructor(code: BpfErrorCode, call: string, errno: number, advice: string, verifierLog?: string) {
    const log = verifierLog ? `\nverifier log (tail):\n${verifierLog}` : '';
    super(`${call} failed: ${errnoName(errno)} (${errnoMessage(errno)}): ${advice}${log}`);
    this.name = 'BpfError';
    this.code = code;
    this.errno = errno;
    this.errnoName = errnoName(errno);
    this.call = call;
    this.verifierLog = verifierLog;
  }
}
