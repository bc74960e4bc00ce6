import { isMulticastIpv4, parseIpv4 } from '../packet/ipv4-address.js';
import {
  DEFAULT_MULTICAST_TTL,
  DEFAULT_UNICAST_TTL,
  MAX_OUTPUTS_PER_RULE,
  OUTPUT_MODES,
  ruleIdFor,
  type Output,
  type OutputRequest,
  type Rule,
  type RuleRequest,
} from './rule.js';
import { RuleError } from './rule-error.js';
import { forcesXdp, xdpRuleProblem } from './xdp-eligibility.js';

/**
 * Checks a rule request and turns it into a Rule, or throws a RuleError naming the first field at
 * fault. Pure: whether interfaces exist is the supervisor's question, not this one's.
 */
export function validateRule(request: RuleRequest): Rule {
  const { rule, errors } = checkRule(request);
  if (rule === undefined) throw errors[0]!;
  return rule;
}

/**
 * Every problem of a rule request, not only the first (a config file reports them all), and the
 * Rule when there is none. Fields are checked independently; checks that need several valid
 * fields (loops, duplicate outputs) run only once those are valid.
 */
export function checkRule(request: RuleRequest): { rule: Rule | undefined; errors: RuleError[] } {
  const errors: RuleError[] = [];
  const check = <T>(fn: () => T): T | undefined => {
    try {
      return fn();
    } catch (err) {
      if (!(err instanceof RuleError)) throw err;
      errors.push(err);
      return undefined;
    }
  };
  const inputInterface = check(() => validateInterfaceName(request.inputInterface, 'input-interface'));
  const unicastInput = request.unicastInput === true;
  const inputGroup = check(() => validateInputGroup(request.inputGroup, unicastInput));
  const inputPort = check(() => validatePort(request.inputPort, 'input-port'));
  const inputVlan = check(() =>
    request.inputVlan === undefined ? 0 : validateVlan(request.inputVlan, 'input-vlan'),
  );
  const inputSource = check(() => validateSource(request.inputSource, unicastInput));
  const name = check(() => (request.name === undefined ? undefined : validateRuleName(request.name)));
  const outputs = check(() => validateOutputList(request.outputs));
  const valid = outputs?.map((o, i) => check(() => validateOutput(o, `outputs[${i}]`)));
  if (
    errors.length > 0 ||
    inputInterface === undefined ||
    inputGroup === undefined ||
    inputPort === undefined ||
    inputVlan === undefined ||
    inputSource === undefined ||
    valid === undefined
  ) {
    return { rule: undefined, errors };
  }
  const checked = valid as Output[];
  check(() => checkOutputsDistinct(checked, request.outputs));
  checked.forEach((o, i) =>
    check(() => checkNotLooped(o, i, request, { inputInterface, inputGroup, inputPort, inputVlan })),
  );
  if (errors.length > 0) return { rule: undefined, errors };
  const rule: Rule = {
    id: ruleIdFor(inputInterface, inputGroup, inputPort, inputVlan, inputSource),
    name,
    inputInterface,
    inputVlan,
    inputSource,
    inputGroup,
    inputPort,
    unicastInput,
    rtp: request.rtp === true,
    outputs: checked,
  };
  check(() => checkXdpAsWritten(rule));
  return errors.length > 0 ? { rule: undefined, errors } : { rule, errors };
}

/** A rule with an xdp output goes to XDP whole: refused when what it says keeps it off. */
function checkXdpAsWritten(rule: Rule): void {
  if (!forcesXdp(rule)) return;
  const problem = xdpRuleProblem(rule);
  if (problem === null) return;
  const index = rule.outputs.findIndex((o) => o.mode === 'xdp');
  throw new RuleError(
    'E_XDP_UNSUPPORTED',
    `outputs[${index}].mode`,
    'xdp',
    `outputs[${index}].mode xdp puts the whole rule on the XDP path, and ${problem}`,
  );
}

function validateInputGroup(value: string, unicastInput: boolean): number {
  const group = validateAddress(value, 'input-group');
  if (!unicastInput && !isMulticastIpv4(group)) {
    throw new RuleError(
      'E_NOT_MULTICAST',
      'input-group',
      value,
      `input-group ${value} is not a multicast address (224.0.0.0/4); ` +
        'use a group, or mark the rule as unicast input to relay traffic sent to this host',
    );
  }
  return group;
}

/** A source-specific input's sender: a unicast address; 0 when the rule takes any source. */
function validateSource(value: string | undefined, unicastInput: boolean): number {
  if (value === undefined) return 0;
  const source = validateAddress(value, 'input-source');
  if (unicastInput || isMulticastIpv4(source) || source === 0 || source === 0xffffffff) {
    throw new RuleError(
      'E_INVALID_SOURCE',
      'input-source',
      value,
      unicastInput
        ? `input-source ${value}: a unicast input takes whatever is sent to it; a source applies to a group`
        : `input-source ${value} is not a sender's address (a unicast address, not 0.0.0.0, a group or broadcast)`,
    );
  }
  return source;
}

function validateOutputList(outputs: OutputRequest[]): OutputRequest[] {
  if (!Array.isArray(outputs) || outputs.length === 0) {
    throw new RuleError(
      'E_NO_OUTPUTS',
      'outputs',
      outputs,
      `outputs ${JSON.stringify(outputs) ?? 'undefined'} lists no output: a rule needs at least one`,
    );
  }
  if (outputs.length > MAX_OUTPUTS_PER_RULE) {
    throw new RuleError(
      'E_TOO_MANY_OUTPUTS',
      'outputs',
      outputs.length,
      `a rule may have at most ${MAX_OUTPUTS_PER_RULE} outputs, got ${outputs.length}`,
    );
  }
  return outputs;
}

/**
 * A copy sent to the input's own group and port on the input link comes straight back. For a
 * unicast input the address is this host's: a copy sent there, by whatever link, is relayed again.
 */
function checkNotLooped(
  o: Output,
  i: number,
  request: RuleRequest,
  input: { inputInterface: string; inputGroup: number; inputPort: number; inputVlan: number },
): void {
  const sameLink = o.interface === input.inputInterface || request.unicastInput === true;
  if (o.group === input.inputGroup && o.port === input.inputPort && sameLink && input.inputVlan === 0) {
    throw new RuleError(
      'E_LOOP',
      `outputs[${i}]`,
      describeRequested(request.outputs[i]!),
      `outputs[${i}] ${describeRequested(request.outputs[i]!)} is the rule's own input: it would loop`,
    );
  }
}

function validateOutput(request: OutputRequest, field: string): Output {
  if (typeof request !== 'object' || request === null) {
    throw new RuleError(
      'E_INVALID_OUTPUT',
      field,
      request,
      `${field} must be an object with group, port, interface`,
    );
  }
  const group = validateAddress(request.group, `${field}.group`);
  const port = validatePort(request.port, `${field}.port`);
  const multicast = isMulticastIpv4(group);
  const iface =
    request.interface === undefined || request.interface === ''
      ? undefined
      : validateInterfaceName(request.interface, `${field}.interface`);
  if (multicast && iface === undefined) {
    throw new RuleError(
      'E_INVALID_INTERFACE',
      `${field}.interface`,
      request.interface,
      `${field}.interface is required for the multicast output ${request.group}: say which link it leaves by`,
    );
  }
  if (group === 0 || group === 0xffffffff || group >>> 24 === 127 || group >>> 28 === 0xf) {
    throw new RuleError(
      'E_INVALID_ADDRESS',
      `${field}.group`,
      request.group,
      `${field}.group ${request.group} cannot be a destination (unspecified, broadcast, loopback or reserved)`,
    );
  }
  if (request.ttl !== undefined && request.fixedTtl !== undefined) {
    throw new RuleError(
      'E_INVALID_TTL',
      `${field}.fixed-ttl`,
      request.fixedTtl,
      `${field}.fixed-ttl and ${field}.ttl are both given: ttl caps the input's TTL minus one, fixed-ttl replaces it; choose one`,
    );
  }
  const ttlFixed = request.fixedTtl !== undefined;
  const ttl = ttlFixed
    ? validateTtl(request.fixedTtl, `${field}.fixed-ttl`)
    : request.ttl === undefined
      ? multicast
        ? DEFAULT_MULTICAST_TTL
        : DEFAULT_UNICAST_TTL
      : validateTtl(request.ttl, `${field}.ttl`);
  const dscp = request.dscp === undefined ? undefined : validateDscp(request.dscp, `${field}.dscp`);
  const mode = request.mode ?? 'auto';
  if (!(OUTPUT_MODES as readonly string[]).includes(mode)) {
    throw new RuleError(
      'E_INVALID_OUTPUT',
      `${field}.mode`,
      request.mode,
      `${field}.mode must be auto, raw, socket or xdp, got ${JSON.stringify(request.mode)}`,
    );
  }
  if (mode === 'raw' && !multicast) {
    throw new RuleError(
      'E_RAW_UNSUPPORTED',
      `${field}.mode`,
      mode,
      `${field}.mode raw: raw egress sends to multicast groups on Ethernet links, and ${request.group} is unicast; use socket or auto`,
    );
  }
  if (mode === 'xdp' && (!multicast || iface === undefined)) {
    throw new RuleError(
      'E_XDP_UNSUPPORTED',
      `${field}.mode`,
      mode,
      `${field}.mode xdp: ${request.group} is ${multicast ? 'a multicast output without an interface' : 'unicast'}, and unicast outputs and outputs without an interface stay on the worker path; use auto or socket`,
    );
  }
  return { group, port, interface: iface, ttl, ttlFixed, dscp, multicast, mode };
}

function validateTtl(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 255) {
    throw new RuleError('E_INVALID_TTL', field, value, `${field} must be 1-255, got ${String(value)}`);
  }
  return value;
}

/** 802.1Q VLAN ids 1-4094 (0 means untagged, 4095 is reserved). */
export function validateVlan(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 4094) {
    throw new RuleError(
      'E_INVALID_VLAN',
      field,
      value,
      `${field} ${JSON.stringify(value)} is not a VLAN id (1-4094; leave it out for untagged traffic)`,
    );
  }
  return value;
}

/** DSCP names of RFC 2474/2597/3246/8622 and their code points. */
export const DSCP_NAMES: Readonly<Record<string, number>> = Object.freeze({
  cs0: 0,
  le: 1,
  cs1: 8,
  af11: 10,
  af12: 12,
  af13: 14,
  cs2: 16,
  af21: 18,
  af22: 20,
  af23: 22,
  cs3: 24,
  af31: 26,
  af32: 28,
  af33: 30,
  cs4: 32,
  af41: 34,
  af42: 36,
  af43: 38,
  cs5: 40,
  va: 44,
  ef: 46,
  cs6: 48,
  cs7: 56,
});

/** A DSCP: 0-63, or a name such as ef or af41 (any case). */
export function validateDscp(value: unknown, field: string): number {
  const named = typeof value === 'string' ? DSCP_NAMES[value.toLowerCase()] : undefined;
  if (named !== undefined) return named;
  const number = typeof value === 'string' && /^\d{1,2}$/.test(value) ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isInteger(number) || number < 0 || number > 63) {
    throw new RuleError(
      'E_INVALID_DSCP',
      field,
      value,
      `${field} ${JSON.stringify(value)} is not a DSCP (0-63, or a name: ef, af11-af43, cs0-cs7, le, va)`,
    );
  }
  return number;
}

function checkOutputsDistinct(outputs: Output[], requests: OutputRequest[]): void {
  const seen = new Map<string, number>();
  outputs.forEach((o, i) => {
    const key = `${o.group}:${o.port}:${o.interface ?? ''}`;
    const first = seen.get(key);
    if (first !== undefined) {
      throw new RuleError(
        'E_DUPLICATE_OUTPUT',
        `outputs[${i}]`,
        describeRequested(requests[i]!),
        `outputs[${i}] ${describeRequested(requests[i]!)} repeats outputs[${first}]: each output must be distinct`,
      );
    }
    seen.set(key, i);
  });
}

function describeRequested(o: OutputRequest): string {
  return `${o.group}:${o.port}${o.interface ? `:${o.interface}` : ''}`;
}

export function validateAddress(value: unknown, field: string): number {
  const parsed = typeof value === 'string' ? parseIpv4(value) : undefined;
  if (parsed === undefined) {
    throw new RuleError(
      'E_INVALID_ADDRESS',
      field,
      value,
      `${field} ${JSON.stringify(value)} is not an IPv4 address (expected dotted quad like 239.1.1.1)`,
    );
  }
  return parsed;
}

export function validatePort(value: unknown, field: string): number {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < 1 || value > 65535) {
    throw new RuleError(
      'E_INVALID_PORT',
      field,
      value,
      `${field} ${JSON.stringify(value)} is not a UDP port (1-65535)`,
    );
  }
  return value;
}

/** Linux interface names: 1-15 bytes, no '/', ':' or whitespace, not "." or "..". */
export function validateInterfaceName(value: unknown, field: string): string {
  if (
    typeof value !== 'string' ||
    value.length === 0 ||
    Buffer.byteLength(value) > 15 ||
    /[/:\s]/.test(value) ||
    hasControlCharacter(value) ||
    value === '.' ||
    value === '..'
  ) {
    throw new RuleError(
      'E_INVALID_INTERFACE',
      field,
      value,
      `${field} ${JSON.stringify(value)} is not a valid interface name (1-15 characters, no '/', ':', spaces or control characters)`,
    );
  }
  return value;
}

/** Rule names are for operators: 1-64 of letters, digits, '.', '_', '-', starting with a letter or digit. */
export function validateRuleName(value: unknown): string {
  if (typeof value !== 'string' || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$/.test(value)) {
    throw new RuleError(
      'E_INVALID_NAME',
      'name',
      value,
      `name ${JSON.stringify(value)} is not a valid rule name (1-64 of letters, digits, '.', '_', '-', starting with a letter or digit)`,
    );
  }
  if (/^r-[0-9a-f]{12}$/.test(value)) {
    throw new RuleError(
      'E_INVALID_NAME',
      'name',
      value,
      `name ${value} looks like a rule id; choose another name`,
    );
  }
  return value;
}

/** NUL would end the name early on the C side (aliasing another interface); others are never valid. */
function hasControlCharacter(value: string): boolean {
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    if (c < 0x20 || c === 0x7f) return true;
  }
  return false;
}
