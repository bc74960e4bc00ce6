import type { ErrorCode } from './error-codes.js';
/** JSON-RPC 2.0 as the control socket speaks it: one JSON object per line. */

export const PROTOCOL_VERSION = 2;
/** A request line longer than this is refused: a control message is small. */
export const MAX_LINE_BYTES = 1024 * 1024;

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface RpcRequest {
  jsonrpc: '2.0';
  id?: string | number | null;
  method: string;
  params?: unknown;
}

export interface RpcErrorObject {
  code: number;
  message: string;
  data?: RpcErrorData;
}

/** Machine-readable detail every mcr error carries: a stable code, and the field at fault if any. */
export interface RpcErrorData {
  code: string;
  field?: string;
  value?: unknown;
  [key: string]: unknown;
}

export type RpcResponse =
  | { jsonrpc: '2.0'; id: string | number | null; result: unknown }
  | { jsonrpc: '2.0'; id: string | number | null; error: RpcErrorObject };

// The standard JSON-RPC codes, and one for every application error (its data.code tells which).
export const RPC_PARSE_ERROR = -32700;
export const RPC_INVALID_REQUEST = -32600;
export const RPC_METHOD_NOT_FOUND = -32601;
export const RPC_INVALID_PARAMS = -32602;
export const RPC_INTERNAL_ERROR = -32603;
export const RPC_APPLICATION_ERROR = -32000;

/** An error a method raises on purpose: it reaches the client as is. */
export class ControlError extends Error {
  readonly rpcCode: number;
  readonly data: RpcErrorData;

  /** The stable code, as every mcr error carries it. */
  get code(): string {
    return this.data.code;
  }

  /** `code`: a registered code, or a failed system call's errno name (see error-codes.ts). */
  constructor(
    code: ErrorCode | Uppercase<`E${string}`>,
    message: string,
    details: Omit<RpcErrorData, 'code'> = {},
    rpcCode = RPC_APPLICATION_ERROR,
  ) {
    super(message);
    this.name = 'ControlError';
    this.rpcCode = rpcCode;
    this.data = { code, ...details };
  }
}

/** Checks the envelope of a parsed line; returns the request or a reason it is not one. */
export function asRequest(value: unknown): RpcRequest | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    return 'a request must be a JSON object';
  const v = value as Record<string, unknown>;
  if (v.jsonrpc !== '2.0') return 'jsonrpc must be "2.0"';
  if (typeof v.method !== 'string' || v.method === '') return 'method must be a non-empty string';
  if ('id' in v && v.id !== null && typeof v.id !== 'string' && typeof v.id !== 'number') {
    return 'id must be a string, a number or null';
  }
  return v as unknown as RpcRequest;
}
