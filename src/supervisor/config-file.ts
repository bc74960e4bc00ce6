import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import JSON5 from 'json5';
import { readFileSync } from 'node:fs';
import { isMulticastIpv4, parseIpv4 } from '../packet/ipv4-address.js';
import type { OutputMode, OutputRequest, RuleRequest } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';
import { checkRule } from '../rules/validate-rule.js';
import { describeRuleRequest } from './config-render.js';
import { CONFIG_SCHEMA, knownKeys } from './config-schema.js';
import { METRICS_ADDRESS_FORM, parseMetricsAddress } from './metrics-address.js';

/** Daemon settings a config file may give; command-line flags override them. */
export interface ConfigSettings {
  workers?: number;
  fanout?: 'hash' | 'cpu';
  user?: string;
  socketPath?: string;
  /** File mode of the control socket, e.g. 0o660. */
  socketMode?: number;
  socketGroup?: string;
  logLevel?: string;
  logFormat?: 'json' | 'text';
  stateDirectory?: string;
  /** Where the Prometheus endpoint listens, HOST:PORT (checked). */
  metricsListen?: string;
  ringSizeMiB?: number;
  batchSize?: number;
  batchBudget?: number;
  coalesceUs?: number;
  workerNice?: number;
  qdiscBypass?: boolean;
}

export interface ConfigFile {
  settings: ConfigSettings;
  rules: RuleRequest[];
  /** What was read but has no effect in mcr (said, never silently ignored). */
  warnings: string[];
}

/** One thing wrong with a config file: where (file, path in the document), the value, and why. */
export interface ConfigProblem {
  file: string;
  /** e.g. "rules[3].outputs[0].port"; "" for the document itself; "line 4, column 7" for syntax. */
  path: string;
  value: unknown;
  code: string;
  /** A sentence naming the path, the value and what is allowed. */
  message: string;
}

export type ConfigResult = { ok: true; config: ConfigFile } | { ok: false; problems: ConfigProblem[] };

let documentValidator: ValidateFunction | undefined;

/**
 * The config file's validator, compiled when a file is first read: compiling costs about 70 ms,
 * which every mcrctl command paid at start-up when it was done on import.
 */
function validatorOfDocuments(): ValidateFunction {
  // verbose: errors carry their schema, so a range error can say the whole allowed range.
  documentValidator ??= new Ajv({ allErrors: true, strict: true, verbose: true }).compile(CONFIG_SCHEMA);
  return documentValidator;
}

/** Reads and checks a config file; every problem is reported, not only the first. */
export function readConfigFile(file: string): ConfigResult {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    return {
      ok: false,
      problems: [
        {
          file,
          path: '',
          value: file,
          code: 'E_CONFIG_READ',
          message: `cannot read ${file}: ${e.code ?? ''} ${e.message}`.trim(),
        },
      ],
    };
  }
  return parseConfig(text, file);
}

/** Checks a config document's text, as read from `file` (for messages). */
export function parseConfig(text: string, file: string): ConfigResult {
  let document: unknown;
  try {
    document = JSON5.parse(text);
  } catch (err) {
    const e = err as Error & { lineNumber?: number; columnNumber?: number };
    const at = e.lineNumber ? `line ${e.lineNumber}, column ${e.columnNumber ?? 0}` : '';
    const what = e.message.replace(/^JSON5: /, '').replace(/ at \d+:\d+$/, '');
    return {
      ok: false,
      problems: [
        {
          file,
          path: at,
          value: null,
          code: 'E_CONFIG_SYNTAX',
          message: `${file}:${at ? ` ${at}:` : ''} ${what}`,
        },
      ],
    };
  }
  const validateDocument = validatorOfDocuments();
  const shapeProblems = validateDocument(document)
    ? []
    : (validateDocument.errors ?? []).map((e) => schemaProblem(file, document, e));
  // The rules whose shape is right are still checked for what they mean, so one pass over the
  // file reports everything wrong with it.
  const misshapen = new Set(
    shapeProblems.flatMap((p) => {
      const rule = /^rules\[(\d+)\]/.exec(p.path);
      return rule ? [Number(rule[1])] : [];
    }),
  );
  const doc = document as ConfigDocument;
  const result = fromDocument(file, doc, Array.isArray(doc?.rules) ? misshapen : undefined);
  if (shapeProblems.length === 0) return result;
  const meaning = result.ok ? [] : result.problems;
  return { ok: false, problems: inDocumentOrder([...shapeProblems, ...meaning], document) };
}

/** The document once its shape is known to be right. */
interface ConfigDocument {
  workers?: number;
  fanout?: 'hash' | 'cpu';
  user?: string;
  socket?: { path?: string; mode?: string; group?: string };
  log?: { level?: string; format?: 'json' | 'text' };
  state_directory?: string;
  metrics?: { listen?: string };
  ring_size_mib?: number;
  batch_size?: number;
  batch_budget?: number;
  coalesce_us?: number;
  worker_nice?: number;
  qdisc_bypass?: boolean;
  multicast_ttl?: number;
  pinning?: Record<string, number[]>;
  rules?: DocumentRule[];
}

interface DocumentRule {
  name?: string;
  input: {
    interface: string;
    group: string;
    port: number;
    source?: string;
    vlan?: number;
    unicast?: boolean;
  };
  outputs: {
    group: string;
    port: number;
    interface?: string;
    ttl?: number;
    fixed_ttl?: number;
    dscp?: number | string;
    mode?: string;
  }[];
  rtp?: boolean;
}

/**
 * The settings and rules of a document; `skip`: indexes of rules whose shape is wrong (not
 * checked again), or undefined when the rules list itself is not a list.
 */
function fromDocument(
  file: string,
  doc: ConfigDocument,
  skip: ReadonlySet<number> | undefined = new Set(),
): ConfigResult {
  const problems: ConfigProblem[] = [];
  const warnings: string[] = [];
  if (typeof doc !== 'object' || doc === null || skip === undefined) return { ok: false, problems };
  if (doc.pinning !== undefined) {
    warnings.push(
      `${file}: pinning is read but has no effect: mcr runs one worker per CPU (see --workers, and taskset to choose the CPUs), each serving every input`,
    );
  }
  const listen = doc.metrics?.listen;
  if (typeof listen === 'string') {
    const parsed = parseMetricsAddress(listen);
    if (!parsed.ok) {
      problems.push({
        file,
        path: 'metrics.listen',
        value: listen,
        code: 'E_CONFIG_VALUE',
        message: `${file}: metrics.listen ${JSON.stringify(listen)} ${parsed.why} (allowed: ${METRICS_ADDRESS_FORM})`,
      });
    }
  }
  const multicastTtl = typeof doc.multicast_ttl === 'number' ? doc.multicast_ttl : undefined;
  const rules = (doc.rules ?? []).map((r, i) => (skip.has(i) ? undefined : ruleRequest(r, multicastTtl)));
  const seenIds = new Map<string, number>();
  const seenNames = new Map<string, number>();
  rules.forEach((request, i) => {
    if (request === undefined) return;
    const { rule, errors } = checkRule(request);
    for (const error of errors) problems.push(ruleProblem(file, i, error));
    if (!rule) return;
    const sameInput = seenIds.get(rule.id);
    if (sameInput !== undefined) {
      problems.push({
        file,
        path: `rules[${i}].input`,
        value: describeRuleRequest(request),
        code: 'E_RULE_EXISTS',
        message: `${file}: rules[${i}].input ${describeRuleRequest(request)} is already relayed by rules[${sameInput}]${named(rules[sameInput])}: one rule per input; merge their outputs`,
      });
    } else seenIds.set(rule.id, i);
    if (rule.name !== undefined) {
      const holder = seenNames.get(rule.name);
      if (holder !== undefined) {
        problems.push({
          file,
          path: `rules[${i}].name`,
          value: rule.name,
          code: 'E_NAME_TAKEN',
          message: `${file}: rules[${i}].name ${rule.name} is already the name of rules[${holder}]: names are unique`,
        });
      } else seenNames.set(rule.name, i);
    }
  });
  if (problems.length > 0 || skip.size > 0) return { ok: false, problems };
  return {
    ok: true,
    config: { settings: settingsOf(doc), rules: rules.filter((r) => r !== undefined), warnings },
  };
}

function named(request: RuleRequest | undefined): string {
  return request?.name ? ` (${request.name})` : '';
}

/**
 * A document rule as rules.add takes it. A unicast input address makes a unicast input (the Rust
 * MCR's files say so by the address alone); `multicast_ttl` is the cap of multicast outputs that
 * give no TTL of their own.
 */
function ruleRequest(r: DocumentRule, multicastTtl: number | undefined): RuleRequest {
  const inputAddress = parseIpv4(r.input.group);
  const unicastInput = r.input.unicast ?? (inputAddress !== undefined && !isMulticastIpv4(inputAddress));
  return {
    ...(r.name !== undefined ? { name: r.name } : {}),
    inputInterface: r.input.interface,
    inputGroup: r.input.group,
    inputPort: r.input.port,
    ...(r.input.vlan !== undefined ? { inputVlan: r.input.vlan } : {}),
    ...(r.input.source !== undefined ? { inputSource: r.input.source } : {}),
    ...(unicastInput ? { unicastInput: true } : {}),
    ...(r.rtp === true ? { rtp: true } : {}),
    outputs: r.outputs.map((o): OutputRequest => {
      const address = parseIpv4(o.group);
      const multicast = address !== undefined && isMulticastIpv4(address);
      const ttl = o.ttl ?? (multicast && o.fixed_ttl === undefined ? multicastTtl : undefined);
      return {
        group: o.group,
        port: o.port,
        ...(o.interface !== undefined ? { interface: o.interface } : {}),
        ...(ttl !== undefined ? { ttl } : {}),
        ...(o.fixed_ttl !== undefined ? { fixedTtl: o.fixed_ttl } : {}),
        ...(o.dscp !== undefined ? { dscp: o.dscp } : {}),
        ...(o.mode !== undefined ? { mode: o.mode as OutputMode } : {}),
      };
    }),
  };
}

function settingsOf(doc: ConfigDocument): ConfigSettings {
  const s: ConfigSettings = {};
  if (doc.workers !== undefined) s.workers = doc.workers;
  if (doc.fanout !== undefined) s.fanout = doc.fanout;
  if (doc.user !== undefined) s.user = doc.user;
  if (doc.socket?.path !== undefined) s.socketPath = doc.socket.path;
  if (doc.socket?.mode !== undefined) s.socketMode = parseInt(doc.socket.mode, 8);
  if (doc.socket?.group !== undefined) s.socketGroup = doc.socket.group;
  if (doc.log?.level !== undefined) s.logLevel = doc.log.level;
  if (doc.log?.format !== undefined) s.logFormat = doc.log.format;
  if (doc.state_directory !== undefined) s.stateDirectory = doc.state_directory;
  if (doc.metrics?.listen !== undefined) s.metricsListen = doc.metrics.listen;
  if (doc.ring_size_mib !== undefined) s.ringSizeMiB = doc.ring_size_mib;
  if (doc.batch_size !== undefined) s.batchSize = doc.batch_size;
  if (doc.batch_budget !== undefined) s.batchBudget = doc.batch_budget;
  if (doc.coalesce_us !== undefined) s.coalesceUs = doc.coalesce_us;
  if (doc.worker_nice !== undefined) s.workerNice = doc.worker_nice;
  if (doc.qdisc_bypass !== undefined) s.qdiscBypass = doc.qdisc_bypass;
  return s;
}

/** The document path of a rule field as rules.add names it ("input-group" → "rules[2].input.group"). */
function documentPath(rule: number, field: string): string {
  const input = /^input-(\w+)$/.exec(field);
  if (input) return `rules[${rule}].input.${input[1]}`;
  return `rules[${rule}].${field.replace('fixed-ttl', 'fixed_ttl')}`;
}

function ruleProblem(file: string, rule: number, error: RuleError): ConfigProblem {
  const path = documentPath(rule, error.field);
  // The rules layer names the field as mcrctl's options do; in a file, the document path says it.
  const message = error.message.startsWith(error.field)
    ? `${path}${error.message.slice(error.field.length)}`
    : `${path}: ${error.message}`;
  return { file, path, value: error.value, code: error.code, message: `${file}: ${message}` };
}

/** "/rules/3/outputs/0/port" → ["rules", 3, "outputs", 0, "port"]. */
function pathSteps(instancePath: string): (string | number)[] {
  return instancePath
    .split('/')
    .slice(1)
    .map((s) => (/^\d+$/.test(s) ? Number(s) : s.replace(/~1/g, '/').replace(/~0/g, '~')));
}

function formatPath(steps: readonly (string | number)[]): string {
  return steps
    .map((s, i) =>
      typeof s === 'number' ? `[${s}]` : i === 0 ? s : /^[A-Za-z_]\w*$/.test(s) ? `.${s}` : `["${s}"]`,
    )
    .join('');
}

/** Problems sorted as their places appear in the file (the schema checks in its own order). */
function inDocumentOrder(problems: ConfigProblem[], document: unknown): ConfigProblem[] {
  const order = new Map<string, number>();
  const visit = (node: unknown, steps: (string | number)[]): void => {
    order.set(formatPath(steps), order.size);
    if (Array.isArray(node)) node.forEach((item, i) => visit(item, [...steps, i]));
    else if (typeof node === 'object' && node !== null)
      for (const [key, value] of Object.entries(node)) visit(value, [...steps, key]);
  };
  visit(document, []);
  const rank = (p: ConfigProblem): number => {
    // A missing key sorts with its parent object.
    for (let path = p.path; path !== ''; path = path.replace(/(\.[^.[]+|\[[^\]]+\])$/, '')) {
      const at = order.get(path);
      if (at !== undefined) return at;
    }
    return order.size;
  };
  return [...problems].sort((a, b) => rank(a) - rank(b));
}

function valueAt(document: unknown, steps: readonly (string | number)[]): unknown {
  let node = document;
  for (const step of steps) node = (node as Record<string | number, unknown> | undefined)?.[step];
  return node;
}

function schemaProblem(file: string, document: unknown, e: ErrorObject): ConfigProblem {
  const steps = pathSteps(e.instancePath);
  if (e.keyword === 'additionalProperties') {
    const key = String(e.params.additionalProperty);
    const known = knownKeys(steps);
    const suggestion = closest(key, known);
    const path = formatPath([...steps, key]);
    const hint = suggestion ? `; did you mean ${suggestion}?` : '';
    return {
      file,
      path,
      value: valueAt(document, [...steps, key]),
      code: 'E_CONFIG_UNKNOWN_KEY',
      message: `${file}: ${path} is not a setting mcr knows${hint} (allowed here: ${known.join(', ')})`,
    };
  }
  if (e.keyword === 'required') {
    const path = formatPath([...steps, String(e.params.missingProperty)]);
    return { file, path, value: undefined, code: 'E_CONFIG_MISSING', message: `${file}: ${path} is missing` };
  }
  const path = formatPath(steps) || '(the document)';
  const value = valueAt(document, steps);
  const shown = JSON.stringify(value) ?? String(value);
  return {
    file,
    path,
    value,
    code: 'E_CONFIG_VALUE',
    message: `${file}: ${path} ${shown} ${expectation(e)}`,
  };
}

function expectation(e: ErrorObject): string {
  switch (e.keyword) {
    case 'type':
      return `is not ${article(String(e.params.type))}`;
    case 'enum':
      return `is not one of ${(e.params.allowedValues as unknown[]).map((v) => JSON.stringify(v)).join(', ')}`;
    case 'minimum':
    case 'maximum': {
      const s = e.parentSchema as { minimum?: number; maximum?: number };
      return `is out of range (allowed: ${s.minimum ?? '…'}-${s.maximum ?? '…'})`;
    }
    case 'pattern':
      return 'is not an octal file mode such as "0660"';
    case 'anyOf':
      return 'is neither a number nor a name';
    default:
      return e.message ?? 'is not valid here';
  }
}

function article(type: string): string {
  const names: Record<string, string> = {
    integer: 'a whole number',
    string: 'a string',
    boolean: 'true or false',
    object: 'an object ({ … })',
    array: 'a list ([ … ])',
  };
  return names[type] ?? `of type ${type}`;
}

/** The known key nearest to `key` (case, _ and - aside; at most two edits), if any. */
function closest(key: string, known: readonly string[]): string | undefined {
  const norm = (s: string): string => s.toLowerCase().replace(/[-_]/g, '');
  let best: string | undefined;
  let bestDistance = 3;
  for (const candidate of known) {
    const d = norm(candidate) === norm(key) ? 0 : editDistance(key.toLowerCase(), candidate.toLowerCase());
    if (d < bestDistance) {
      best = candidate;
      bestDistance = d;
    }
  }
  return best;
}

function editDistance(a: string, b: string): number {
  let previous = Array.from({ length: b.length + 1 }, (_, j) => j);
  for (let i = 1; i <= a.length; i++) {
    const current = [i];
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      current.push(Math.min(previous[j]! + 1, current[j - 1]! + 1, previous[j - 1]! + cost));
    }
    previous = current;
  }
  return previous[b.length]!;
}
