import { MAX_OUTPUTS_PER_RULE } from '../rules/rule.js';
import { MAX_TRACE_COUNT, MAX_TRACE_RECORDS_PER_MESSAGE } from './trace.js';

// The shape of a worker's trace messages (trace.records, trace.ended), checked like everything a
// worker says (worker-message-schema.ts): every field bounded, no other keys, at most
// MAX_TRACE_RECORDS_PER_MESSAGE records of at most MAX_OUTPUTS_PER_RULE copies each. Whether a
// trace may send at all, and how many, is the supervisor's to check (worker-conversation.ts).

const u32 = { type: 'integer', minimum: 0, maximum: 0xffff_ffff };
const nullable = (schema: object): object => ({ anyOf: [schema, { type: 'null' }] });
const port = nullable({ type: 'integer', minimum: 0, maximum: 65_535 });
/** Trace ids are the supervisor's, counted from 1. */
export const traceId = { type: 'integer', minimum: 1, maximum: Number.MAX_SAFE_INTEGER };

const copy = {
  type: 'object',
  additionalProperties: false,
  required: ['output', 'status', 'path', 'errno'],
  properties: {
    output: { type: 'integer', minimum: 0, maximum: MAX_OUTPUTS_PER_RULE - 1 },
    status: { enum: ['sent', 'refused', 'ttl_expired', 'detached'] },
    path: { enum: ['raw', 'socket', null] },
    errno: nullable({ type: 'string', pattern: '^E[A-Z0-9]{1,31}$' }),
  },
};

const record = {
  type: 'object',
  additionalProperties: false,
  required: [
    'timeUs',
    'vlan',
    'source',
    'sourcePort',
    'group',
    'port',
    'ttl',
    'frameLength',
    'payloadLength',
    'outcome',
    'rule',
    'copies',
  ],
  properties: {
    // Microseconds since the epoch, from the kernel's u32 seconds.
    timeUs: { type: 'integer', minimum: 0, maximum: 2 ** 32 * 1e6 },
    vlan: nullable({ type: 'integer', minimum: 1, maximum: 4095 }),
    source: nullable(u32),
    sourcePort: port,
    group: nullable(u32),
    port,
    ttl: nullable({ type: 'integer', minimum: 0, maximum: 255 }),
    frameLength: { type: 'integer', minimum: 0, maximum: 0x7fff_ffff },
    payloadLength: nullable({ type: 'integer', minimum: 0, maximum: 65_535 }),
    // The worker's outcome names (worker-counters.ts): snake_case, as drop reasons are.
    outcome: { type: 'string', pattern: '^[a-z][a-z0-9_]{0,47}$' },
    // rule.ts: "r-" and 12 hex digits.
    rule: nullable({ type: 'string', pattern: '^r-[0-9a-f]{12}$' }),
    copies: { type: 'array', maxItems: MAX_OUTPUTS_PER_RULE, items: copy },
  },
};

export const traceRecordsProperties = {
  trace: traceId,
  records: { type: 'array', maxItems: MAX_TRACE_RECORDS_PER_MESSAGE, items: record },
  missed: { type: 'integer', minimum: 0, maximum: MAX_TRACE_COUNT * 1000 },
};

export const traceEndedProperties = {
  trace: traceId,
  reason: { enum: ['count', 'stopped'] },
};
