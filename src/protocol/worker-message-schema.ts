import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import { traceEndedProperties, traceRecordsProperties } from './trace-schema.js';
import type { WorkerMessage } from './worker-messages.js';

// What a worker sends its supervisor is untrusted input (DESIGN.md, trust boundaries): a worker
// runs unprivileged and holds raw sockets, so the supervisor, which is root, takes nothing from it
// on faith. Every message is checked here for its shape: known type, required fields, no other
// keys, integers within range, bounded strings, bounded maps and arrays. Whether it came at the
// right moment (ready once, answers only to questions asked) is the supervisor's to check
// (src/supervisor/worker-conversation.ts).

/** The kernel's PID_MAX_LIMIT: no process id is larger. */
export const MAX_PID = 4_194_304;
/** The longest free text (an error's sentence) a worker may send. */
export const MAX_WORKER_TEXT = 4096;

const counter = { type: 'integer', minimum: 0, maximum: Number.MAX_SAFE_INTEGER };
/** Milliseconds of garbage collection: fractional, never negative, below ~30 years. */
const milliseconds = { type: 'number', minimum: 0, maximum: 1e12 };
const positiveId = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };
/** A stable code: E_WORKER, an errno name (EPERM) or a Node error code (ERR_…). */
const code = { type: 'string', pattern: '^[A-Z][A-Z0-9_]{0,63}$' };
const text = { type: 'string', maxLength: MAX_WORKER_TEXT };

const health = {
  type: 'object',
  additionalProperties: false,
  required: ['rssBytes', 'gcCount', 'gcTotalMs', 'gcMaxPauseMs', 'gcPausesOver1Ms', 'cpuSeconds'],
  properties: {
    rssBytes: counter,
    gcCount: counter,
    gcTotalMs: milliseconds,
    gcMaxPauseMs: milliseconds,
    gcPausesOver1Ms: counter,
    cpuSeconds: { type: 'number', minimum: 0, maximum: 1e12 },
  },
};

function message(type: WorkerMessage['type'], properties: Record<string, object>): object {
  return {
    type: 'object',
    additionalProperties: false,
    required: ['type', ...Object.keys(properties)],
    properties: { type: { const: type }, ...properties },
  };
}

const schemas: Record<WorkerMessage['type'], object> = {
  ready: message('ready', { pid: { type: 'integer', minimum: 1, maximum: MAX_PID } }),
  heartbeat: message('heartbeat', {
    seq: positiveId,
    // ruleset-hash.ts: 16 hex digits of a SHA-256.
    rulesHash: { type: 'string', pattern: '^[0-9a-f]{16}$' },
  }),
  health: message('health', { health }),
  error: message('error', {
    code,
    message: text,
    // The type of the command that failed (a SupervisorMessage type).
    subject: { type: 'string', pattern: '^[a-z][a-zA-Z.]{0,31}$' },
  }),
  fatal: message('fatal', { code, message: text }),
  'trace.records': message('trace.records', traceRecordsProperties),
  'trace.ended': message('trace.ended', traceEndedProperties),
  // An interface name: at most IFNAMSIZ - 1 bytes.
  'input.handedOver': message('input.handedOver', {
    interface: { type: 'string', minLength: 1, maxLength: 15 },
  }),
};

const ajv = new Ajv({ allErrors: false, strict: true });
const validators = new Map<string, ValidateFunction>(
  Object.entries(schemas).map(([type, schema]) => [type, ajv.compile(schema)]),
);

export type WorkerMessageCheck = { ok: true; message: WorkerMessage } | { ok: false; reason: string };

const decoder = new TextDecoder('utf-8', { fatal: true });

/**
 * Decodes and checks one message from a worker. Never throws: anything that is not a well-formed
 * message of a known type comes back as a reason a person can read (bounded in length: it quotes
 * nothing of the message but its type).
 */
export function parseWorkerMessage(data: Uint8Array): WorkerMessageCheck {
  let value: unknown;
  try {
    value = JSON.parse(decoder.decode(data));
  } catch (err) {
    const what = err instanceof SyntaxError ? 'is not JSON' : 'is not UTF-8 text';
    return { ok: false, reason: `a message of ${data.byteLength} bytes ${what}` };
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return { ok: false, reason: `a message is ${describe(value)}, not an object` };
  }
  const type = (value as { type?: unknown }).type;
  const validate = typeof type === 'string' ? validators.get(type) : undefined;
  if (validate === undefined) {
    const shown = typeof type === 'string' ? JSON.stringify(type.slice(0, 32)) : describe(type);
    return { ok: false, reason: `a message has unknown type ${shown}` };
  }
  if (!validate(value)) return { ok: false, reason: `${type}: ${describeError(validate.errors?.[0])}` };
  return { ok: true, message: value as WorkerMessage };
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'an array';
  return typeof value === 'undefined' ? 'missing' : `a ${typeof value}`;
}

function describeError(error: ErrorObject | undefined): string {
  if (!error) return 'is invalid';
  const at = error.instancePath || '/';
  switch (error.keyword) {
    case 'required':
      return `${at} lacks ${String(error.params.missingProperty)}`;
    case 'additionalProperties':
      return `${at} has an unexpected key ${JSON.stringify(String(error.params.additionalProperty).slice(0, 32))}`;
    case 'propertyNames':
      return `${at} has a key that is not a valid name`;
    default:
      return `${at} ${error.message ?? 'is invalid'}`;
  }
}
