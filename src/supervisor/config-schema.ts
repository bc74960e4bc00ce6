/**
 * The shape of mcr's config file (JSON5): daemon settings and rules, in the snake_case keys
 * operators of the Rust MCR already write (`rules: [{ name, input: {…}, outputs: [{…}] }]`,
 * `multicast_ttl`, `pinning`), so their files load unchanged. The shape and the types are
 * checked here; what values mean (addresses, loops, duplicates) by the rules layer, as for
 * rules.add.
 */

const string = { type: 'string' } as const;
const integer = (minimum: number, maximum: number) => ({ type: 'integer', minimum, maximum }) as const;

const output = {
  type: 'object',
  additionalProperties: false,
  required: ['group', 'port'],
  properties: {
    group: string,
    port: { type: 'integer' },
    interface: string,
    ttl: { type: 'integer' },
    fixed_ttl: { type: 'integer' },
    dscp: { anyOf: [{ type: 'integer' }, { type: 'string' }] },
    mode: string,
  },
} as const;

const rule = {
  type: 'object',
  additionalProperties: false,
  required: ['input', 'outputs'],
  properties: {
    name: string,
    input: {
      type: 'object',
      additionalProperties: false,
      required: ['interface', 'group', 'port'],
      properties: {
        interface: string,
        group: string,
        port: { type: 'integer' },
        source: string,
        vlan: { type: 'integer' },
        /** A unicast input is also recognised by its address; this says so explicitly. */
        unicast: { type: 'boolean' },
      },
    },
    outputs: { type: 'array', items: output },
    /** Read the input payload as RTP and count its stream health. */
    rtp: { type: 'boolean' },
  },
} as const;

export const CONFIG_SCHEMA = {
  type: 'object',
  additionalProperties: false,
  properties: {
    workers: integer(1, 256),
    fanout: { enum: ['hash', 'cpu'] },
    user: string,
    socket: {
      type: 'object',
      additionalProperties: false,
      properties: {
        path: string,
        /** Octal, as chmod takes it: "0660". */
        mode: { type: 'string', pattern: '^0?[0-7]{3}$' },
        group: string,
      },
    },
    log: {
      type: 'object',
      additionalProperties: false,
      properties: {
        level: { enum: ['fatal', 'error', 'warn', 'info', 'debug', 'trace'] },
        format: { enum: ['json', 'text'] },
      },
    },
    state_directory: string,
    /** The Prometheus endpoint (GET /metrics); absent: mcrd listens on no network port. */
    metrics: {
      type: 'object',
      additionalProperties: false,
      properties: {
        /** HOST:PORT; its form is checked with the settings' meaning (config-file.ts). */
        listen: string,
      },
    },
    ring_size_mib: integer(1, 1024),
    batch_size: integer(1, 1024),
    batch_budget: integer(1, 1024),
    coalesce_us: integer(0, 1000),
    worker_nice: integer(-20, 19),
    qdisc_bypass: { type: 'boolean' },
    /** The TTL cap of multicast outputs that give none (Rust MCR's global). */
    multicast_ttl: integer(1, 255),
    /** Rust MCR's per-interface CPU lists: read, but mcr pins one worker per CPU for every input. */
    pinning: {
      type: 'object',
      additionalProperties: { type: 'array', items: integer(0, 4095) },
    },
    rules: { type: 'array', items: rule },
  },
} as const;

/** The keys each object of the document may have, for "did you mean". */
export function knownKeys(path: readonly (string | number)[]): string[] {
  let node: unknown = CONFIG_SCHEMA;
  for (const step of path) {
    const n = node as { properties?: Record<string, unknown>; items?: unknown };
    node = typeof step === 'number' ? n.items : n.properties?.[step];
    if (node === undefined) return [];
  }
  return Object.keys((node as { properties?: Record<string, unknown> }).properties ?? {});
}
