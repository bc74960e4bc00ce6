// How a control request's outcome becomes the reply line a client reads: results and errors as
// JSON-RPC responses, mcr's errors with their stable codes, anything else as an internal error
// (logged with its stack), and the time a handler that waits may take.
import type { Logger } from 'pino';
import type { ErrorCode } from '../protocol/error-codes.js';
import { ControlError, RPC_INTERNAL_ERROR, type RpcResponse } from '../protocol/json-rpc.js';
import { RuleError } from '../rules/rule-error.js';
import { SysError } from '../sys/errors.js';

/** The reply line; a result JSON cannot carry (a BigInt, a cycle) is a bug, answered as one. */
export function encodeReply(response: RpcResponse, log: Logger): string {
  try {
    return serialise(response);
  } catch (err) {
    log.error({ err, id: response.id }, 'a control reply could not be encoded');
    return serialise(
      errorResponse(
        response.id,
        RPC_INTERNAL_ERROR,
        `internal error: the reply could not be encoded (${String(err)})`,
        'E_INTERNAL',
      ),
    );
  }
}

/** The reply to a request that failed; an internal error is logged with its stack, others briefly. */
export function failureReply(
  id: string | number | null,
  method: string,
  err: unknown,
  log: Logger,
): RpcResponse {
  const error = toControlError(err);
  if (error.rpcCode === RPC_INTERNAL_ERROR) log.error({ err, method }, 'control request failed');
  else log.info({ method, code: error.data.code }, error.message);
  return { jsonrpc: '2.0', id, error: { code: error.rpcCode, message: error.message, data: error.data } };
}

/** A response as the line it is sent as. */
export function serialise(response: RpcResponse): string {
  return `${JSON.stringify(response)}\n`;
}

/** The id of a request line, to answer it by; null when the line is not a request with one. */
export function requestId(line: string | undefined): string | number | null {
  if (line === undefined) return null;
  try {
    const id = (JSON.parse(line) as { id?: unknown }).id;
    return typeof id === 'string' || typeof id === 'number' ? id : null;
  } catch {
    return null;
  }
}

/** An error response with mcr's stable code in its data. */
export function errorResponse(
  id: string | number | null,
  code: number,
  message: string,
  dataCode: string,
): RpcResponse {
  return { jsonrpc: '2.0', id, error: { code, message, data: { code: dataCode } } };
}

/**
 * What a client is told of a failed request: mcr's own errors as they are (a registered code, the
 * field and value at fault), a failed system call by its errno name; anything else (a Node
 * error's ERR_* code included) is a bug, reported as E_INTERNAL and logged with its stack.
 */
function toControlError(err: unknown): ControlError {
  if (err instanceof ControlError) return err;
  const e = err as { code?: unknown; field?: unknown; value?: unknown; message?: unknown };
  if (err instanceof RuleError || err instanceof SysError) {
    const details: Record<string, unknown> = {};
    if (typeof e.field === 'string') details.field = e.field;
    if (e.value !== undefined) details.value = e.value;
    return new ControlError(err.code as ErrorCode, err.message, details);
  }
  return new ControlError(
    'E_INTERNAL',
    `internal error: ${String(e?.message ?? err)}`,
    {},
    RPC_INTERNAL_ERROR,
  );
}

/** `promise`, or E_TIMEOUT once `ms` have passed: a handler that waits on workers cannot hang a client. */
export function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(
      () => reject(new ControlError('E_TIMEOUT', `${what} did not finish within ${ms} ms`)),
      ms,
    );
    promise.then(
      (v) => {
        clearTimeout(timer);
        resolve(v);
      },
      (e: unknown) => {
        clearTimeout(timer);
        reject(e instanceof Error ? e : new Error(String(e)));
      },
    );
  });
}
