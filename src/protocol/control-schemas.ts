import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import type { MethodName } from './control-api.js';
import { ControlError, RPC_INVALID_PARAMS } from './json-rpc.js';
import { MAX_TRACE_COUNT, MAX_TRACE_SECONDS } from './trace.js';

// JSON Schemas for method parameters: the shape is checked here, the meaning (addresses,
// loops, duplicates) by the rules layer, so each error names the offending field.
const empty = { type: 'object', additionalProperties: false, properties: {} };

const output = {
  type: 'object',
  additionalProperties: false,
  required: ['group', 'port'],
  properties: {
    group: { type: 'string' },
    port: { type: 'integer' },
    interface: { type: 'string' },
    ttl: { type: 'integer' },
    fixedTtl: { type: 'integer' },
    dscp: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
    mode: { type: 'string' },
  },
};

const schemas: Record<MethodName, object> = {
  ping: empty,
  version: {
    type: 'object',
    additionalProperties: false,
    properties: { protocol: { type: 'integer' }, client: { type: 'string', maxLength: 64 } },
  },
  'rules.add': {
    type: 'object',
    additionalProperties: false,
    required: ['inputInterface', 'inputGroup', 'inputPort', 'outputs'],
    properties: {
      name: { type: 'string' },
      inputInterface: { type: 'string' },
      inputGroup: { type: 'string' },
      inputPort: { type: 'integer' },
      inputVlan: { type: 'integer' },
      inputSource: { type: 'string' },
      unicastInput: { type: 'boolean' },
      rtp: { type: 'boolean' },
      outputs: { type: 'array', items: output },
    },
  },
  'rules.remove': {
    type: 'object',
    additionalProperties: false,
    properties: { id: { type: 'string' }, name: { type: 'string' } },
    // Exactly one of id or name: with no other properties allowed, counting them says it.
    minProperties: 1,
    maxProperties: 1,
  },
  'rules.list': empty,
  'stats.get': empty,
  'workers.list': empty,
  'config.show': empty,
  'config.save': empty,
  'config.load': {
    type: 'object',
    additionalProperties: false,
    required: ['text', 'source'],
    properties: {
      text: { type: 'string' },
      source: { type: 'string', maxLength: 4096 },
      replace: { type: 'boolean' },
    },
  },
  'config.reload': empty,
  'log.get': empty,
  'log.set': {
    type: 'object',
    additionalProperties: false,
    required: ['level'],
    properties: {
      level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] },
      component: { enum: ['supervisor', 'workers'] },
    },
  },
  'trace.start': {
    type: 'object',
    additionalProperties: false,
    properties: {
      rule: { type: 'string', maxLength: 256 },
      interface: { type: 'string', maxLength: 64 },
      group: { type: 'string', maxLength: 64 },
      port: { type: 'integer' },
      count: { type: 'integer', minimum: 1, maximum: MAX_TRACE_COUNT },
      timeout: { type: 'number', exclusiveMinimum: 0, maximum: MAX_TRACE_SECONDS },
      dropsOnly: { type: 'boolean' },
    },
    // A rule, or an interface (with a group and port optionally); what they name is checked by mcrd.
    oneOf: [
      { required: ['rule'], properties: { rule: true } },
      { required: ['interface'], properties: { interface: true } },
    ],
  },
  'trace.list': empty,
  'debug.forgetRule': {
    type: 'object',
    additionalProperties: false,
    required: ['worker', 'id'],
    properties: { worker: { type: 'integer' }, id: { type: 'string' } },
  },
  'debug.tryDenied': {
    type: 'object',
    additionalProperties: false,
    required: ['worker', 'operation'],
    properties: {
      worker: { type: 'integer' },
      operation: { enum: ['socket', 'bind', 'bind-egress', 'exec', 'spawn', 'kill'] },
      pid: { type: 'integer', minimum: 1 },
    },
  },
};

// All errors, so the most specific one can be reported (see mostSpecific).
const ajv = new Ajv({ allErrors: true, strict: true });
const validators = new Map<string, ValidateFunction>(
  Object.entries(schemas).map(([method, schema]) => [method, ajv.compile(schema)]),
);

/** Every method mcrd serves (docs/CONTROL-PROTOCOL.md lists each; a test keeps it so). */
export function methodNames(): MethodName[] {
  return Object.keys(schemas) as MethodName[];
}

export function isMethodName(name: string): name is MethodName {
  return validators.has(name);
}

/** Returns the params (an empty object when absent) or throws an invalid-params ControlError. */
export function checkParams(method: MethodName, params: unknown): unknown {
  const value = params ?? {};
  const validate = validators.get(method)!;
  if (!validate(value)) {
    const first = mostSpecific(validate.errors ?? []);
    throw new ControlError(
      'E_INVALID_PARAMS',
      describeSchemaError(method, first),
      { field: fieldOf(first) },
      RPC_INVALID_PARAMS,
    );
  }
  return value;
}

function fieldOf(error: ErrorObject | undefined): string {
  if (!error) return '';
  const path = error.instancePath
    .replace(/^\//, '')
    .replace(/\/(\d+)/g, '[$1]')
    .replace(/\//g, '.');
  if (error.keyword === 'required')
    return [path, String(error.params.missingProperty)].filter(Boolean).join('.');
  if (error.keyword === 'additionalProperties') {
    return [path, String(error.params.additionalProperty)].filter(Boolean).join('.');
  }
  return path;
}

function describeSchemaError(method: string, error: ErrorObject | undefined): string {
  if (!error) return `invalid parameters for ${method}`;
  const field = fieldOf(error);
  switch (error.keyword) {
    case 'required':
      return `${method}: ${field} is required`;
    case 'additionalProperties':
      return `${method}: unknown parameter ${field}`;
    case 'minProperties':
    case 'maxProperties':
      return `${method}: give exactly one of id or name`;
    case 'oneOf':
      return `${method}: give a rule, or an interface (with a group and port optionally), not both`;
    default:
      return `${method}: ${field || 'params'} ${error.message ?? 'is invalid'}`;
  }
}

/** A named field (unknown, missing, wrong type) says more than a property count. */
function mostSpecific(errors: ErrorObject[]): ErrorObject | undefined {
  // A oneOf's branches (trace.start: rule or interface) fail with their own "required" errors;
  // the oneOf itself says it better.
  const broad = (e: ErrorObject): boolean =>
    e.keyword === 'minProperties' ||
    e.keyword === 'maxProperties' ||
    e.keyword === 'oneOf' ||
    e.schemaPath.startsWith('#/oneOf/');
  return errors.find((e) => !broad(e)) ?? errors.find((e) => e.keyword === 'oneOf') ?? errors[0];
}
