import type { RuleErrorCode } from '../rules/rule-error.js';

/**
 * Every stable code mcr's programs use, in one place: what it means, and what kind of problem it
 * is. The kind decides mcrctl's exit status (usage: 2, others: 1) and tells a program reading
 * `--json` how to react. docs/CONTROL-PROTOCOL.md's table is made from this list (a unit test
 * keeps it so); a code used anywhere in src/ must be here (another test checks that).
 *
 * Besides these, a failed system call carries its errno name as the code (EPERM, ENODEV, …).
 */
export type ErrorKind =
  /** The request or the command line cannot be right as written: fix it (mcrctl exits 2). */
  | 'usage'
  /** Valid, but it conflicts with what is there now (a rule that exists, a name taken). */
  | 'conflict'
  /** This host does not allow it, or lacks something (privileges, an account, a path). */
  | 'host'
  /** Between a client and mcrd: not running, unreachable, refused, too slow. */
  | 'connection'
  /** About a worker process: logged by mcrd, shown by mcrctl workers. */
  | 'worker'
  /** A config file's problem. */
  | 'config'
  /** Logged, not fatal. */
  | 'warning'
  /** A bug: worth a report. */
  | 'internal';

interface CodeEntry {
  kind: ErrorKind;
  meaning: string;
}

export const ERROR_CODES = {
  // Rules (rules.add, a config file's rules).
  E_INVALID_ADDRESS: {
    kind: 'usage',
    meaning: 'not a dotted IPv4 address, or one that cannot be a destination',
  },
  E_INVALID_PORT: { kind: 'usage', meaning: 'not a UDP port (1-65535)' },
  E_NOT_MULTICAST: { kind: 'usage', meaning: 'an input group that is not multicast, without unicast input' },
  E_INVALID_INTERFACE: { kind: 'usage', meaning: 'not an interface name, or missing where one is required' },
  E_INVALID_NAME: {
    kind: 'usage',
    meaning: 'not a rule name (letters, digits, . _ -), or one that looks like an id',
  },
  E_INVALID_TTL: { kind: 'usage', meaning: 'a TTL outside 1-255, or ttl and fixed-ttl together' },
  E_INVALID_VLAN: { kind: 'usage', meaning: 'a VLAN id outside 1-4094' },
  E_INVALID_DSCP: { kind: 'usage', meaning: 'a DSCP outside 0-63 and not a known name' },
  E_INVALID_SOURCE: {
    kind: 'usage',
    meaning: 'a source that is not a unicast sender, or on a unicast input',
  },
  E_NO_OUTPUTS: { kind: 'usage', meaning: 'a rule without outputs' },
  E_TOO_MANY_OUTPUTS: { kind: 'usage', meaning: 'more than 64 outputs' },
  E_INVALID_OUTPUT: {
    kind: 'usage',
    meaning: 'an output that is not GROUP:PORT[:INTERFACE[:MODE]][options]',
  },
  E_DUPLICATE_OUTPUT: { kind: 'usage', meaning: 'the same output twice in a rule' },
  E_RAW_UNSUPPORTED: {
    kind: 'usage',
    meaning: 'raw egress where it cannot apply (unicast, no Ethernet address)',
  },
  E_XDP_UNSUPPORTED: {
    kind: 'usage',
    meaning:
      'xdp asked for where it cannot apply as written (a unicast output, one without an interface, mixed with raw or socket)',
  },
  E_LOOP: { kind: 'usage', meaning: "an output that is the rule's own input" },
  E_RULE_EXISTS: { kind: 'conflict', meaning: 'another rule relays this input' },
  E_TOO_MANY_RULES: {
    kind: 'conflict',
    meaning: 'mcrd counts at most 16384 rules and 65536 outputs at once; remove some first',
  },
  E_NAME_TAKEN: { kind: 'conflict', meaning: 'another rule has this name' },
  E_RULE_NOT_FOUND: { kind: 'conflict', meaning: 'no rule with this id or name' },
  E_NOT_LOCAL_ADDRESS: {
    kind: 'conflict',
    meaning: "a unicast input address that is not one of this host's",
  },
  E_STATE_WRITE: {
    kind: 'host',
    meaning: 'the change is made, but the state directory could not be written',
  },

  // Config files.
  E_CONFIG_READ: { kind: 'config', meaning: 'the file cannot be read' },
  E_CONFIG_SYNTAX: { kind: 'config', meaning: 'not JSON5 (with line and column)' },
  E_CONFIG_UNKNOWN_KEY: { kind: 'config', meaning: 'a key mcr does not know (with the nearest one it does)' },
  E_CONFIG_MISSING: { kind: 'config', meaning: 'a required key is missing' },
  E_CONFIG_VALUE: { kind: 'config', meaning: 'a value of the wrong type or out of range' },
  E_CONFIG_INVALID: { kind: 'config', meaning: 'a file with problems (each listed): nothing was changed' },
  E_CONFIG_WRITE: { kind: 'host', meaning: 'the config file cannot be written there (nothing was changed)' },
  E_NO_CONFIG: {
    kind: 'conflict',
    meaning: 'mcrd was started without --config: nothing to reload or save to',
  },

  // The control protocol.
  E_PARSE: { kind: 'usage', meaning: 'a request line that is not JSON' },
  E_INVALID_REQUEST: { kind: 'usage', meaning: 'not a JSON-RPC 2.0 request' },
  E_UNKNOWN_METHOD: { kind: 'usage', meaning: 'no such method' },
  E_INVALID_PARAMS: { kind: 'usage', meaning: 'parameters of the wrong shape for the method' },
  E_TOO_LARGE: { kind: 'connection', meaning: 'a request line over 1 MiB: the connection is closed' },
  E_LINE_TIMEOUT: {
    kind: 'connection',
    meaning: 'a request line not finished in time: the connection is closed',
  },
  E_TOO_MANY_CLIENTS: {
    kind: 'connection',
    meaning: 'every client slot is taken by clients that are working',
  },
  E_TOO_MANY_SUBSCRIBERS: {
    kind: 'connection',
    meaning: 'as many clients follow the events as mcrd serves at once',
  },
  E_UNKNOWN_EVENT_TYPE: { kind: 'usage', meaning: 'not an event type (see mcrctl events --help)' },
  E_CLIENT_SHED: { kind: 'connection', meaning: 'a stalled or idle client closed to make room for another' },
  E_TIMEOUT: { kind: 'connection', meaning: 'no answer in time' },
  E_PROTOCOL: { kind: 'connection', meaning: 'mcrd sent something that is not the protocol' },
  E_PROTOCOL_MISMATCH: { kind: 'connection', meaning: 'mcrctl and mcrd speak different protocol versions' },
  E_NOT_RUNNING: { kind: 'connection', meaning: 'no mcrd at the socket path' },
  E_DISCONNECTED: { kind: 'connection', meaning: 'mcrd closed the connection' },
  E_CONNECT: { kind: 'connection', meaning: 'the control socket could not be reached' },
  E_PERMISSION: {
    kind: 'connection',
    meaning: 'no permission on the control socket (not root, not in its group)',
  },
  E_NOT_A_SOCKET: { kind: 'host', meaning: 'the socket path names something that is not a socket' },
  E_SOCKET_PATH: { kind: 'host', meaning: 'the socket path cannot be used' },
  E_SOCKET_PATH_TOO_LONG: { kind: 'usage', meaning: 'a socket path over the 107 bytes a Unix address holds' },
  E_USAGE: { kind: 'usage', meaning: 'a command line that cannot work (see --help)' },
  E_NOT_A_TERMINAL: {
    kind: 'usage',
    meaning: 'mcrctl top without a terminal (scripts: mcrctl --json stats --watch)',
  },

  // Starting mcrd.
  E_ALREADY_RUNNING: { kind: 'conflict', meaning: 'another mcrd serves this socket path' },
  E_PRIVILEGES: { kind: 'host', meaning: 'capabilities mcrd needs are missing (each named)' },
  E_NO_WORKER_ACCOUNT: { kind: 'host', meaning: "the workers' account (mcr) does not exist" },
  E_UNKNOWN_USER: { kind: 'usage', meaning: '--user names no account' },
  E_PRIVILEGED_USER: { kind: 'usage', meaning: '--user is root or has the root group' },
  E_SHARED_USER: { kind: 'usage', meaning: "--user is mcrd's own account: its workers could signal it" },
  E_UNKNOWN_GROUP: { kind: 'usage', meaning: '--socket-group names no group' },
  E_SOCKET_ACCESS: { kind: 'host', meaning: "the control socket's mode or group could not be set" },
  E_STATE_DIRECTORY: { kind: 'host', meaning: 'the state directory cannot be made or written' },
  E_RING_MEMORY: { kind: 'usage', meaning: 'rings larger than the memory this host has available' },
  E_METRICS_LISTEN: {
    kind: 'host',
    meaning: 'the metrics address is in use, or not one of this host’s',
  },

  // Workers.
  E_WORKER: { kind: 'worker', meaning: 'a worker could not carry out a command (it says why)' },
  E_WORKER_START: { kind: 'worker', meaning: 'a worker could not start (it says why)' },
  E_WORKER_SILENT: { kind: 'worker', meaning: 'a worker stopped answering and was replaced' },
  E_WORKER_MISBEHAVED: { kind: 'worker', meaning: 'a worker broke the channel protocol and was replaced' },
  E_WORKER_BEHIND: { kind: 'worker', meaning: 'a worker fell too far behind its commands and was replaced' },
  E_WORKER_CHANNEL: { kind: 'worker', meaning: "a worker's channel failed" },
  E_WORKER_COUNTERS: {
    kind: 'worker',
    meaning: 'a worker wrote a counter that is not a count or went backwards (the last good value is kept)',
  },
  E_WORKER_HANDLER: { kind: 'worker', meaning: "a worker's event handler kept failing and was stopped" },
  E_NOT_AN_INPUT: {
    kind: 'conflict',
    meaning: 'a trace of an interface no rule takes its input from',
  },
  E_TRACE_LIMIT: {
    kind: 'conflict',
    meaning: 'as many traces run as mcrd allows (4): wait for one to end',
  },
  E_WORKER_NOT_FOUND: { kind: 'usage', meaning: 'no worker with this number (debug methods)' },
  E_WORKER_EXITED: { kind: 'worker', meaning: 'the worker exited during the request (debug methods)' },
  E_NOT_CONFINED: { kind: 'worker', meaning: 'a denied operation went through: the worker is not confined' },
  E_NO_TARGET: { kind: 'worker', meaning: 'nothing to try a denied operation on (debug methods)' },
  E_NO_SOCKET: { kind: 'worker', meaning: 'the worker holds no socket of that kind (debug methods)' },

  // eBPF and XDP (the driver path).
  E_BPF_PERMISSION: {
    kind: 'host',
    meaning: 'bpf(2) refused: mcrd needs CAP_BPF and CAP_NET_ADMIN (root has both)',
  },
  E_BPF_MAP: {
    kind: 'host',
    meaning: 'an eBPF map could not be created, read or written (the reason is given)',
  },
  E_BPF_PROGRAM: {
    kind: 'host',
    meaning: 'the kernel refused an eBPF program before verifying it, a test run of it, or a query about it',
  },
  E_BPF_VERIFIER: {
    kind: 'internal',
    meaning: 'the verifier rejected a program mcr generated: please report it with the log it carries',
  },
  E_BPF_ATTACH: {
    kind: 'host',
    meaning: 'an XDP program could not be attached: one is there already, or the driver lacks the mode',
  },
  E_BPF_ASSEMBLY: {
    kind: 'internal',
    meaning: 'mcr generated an eBPF program it cannot encode: please report it',
  },
  E_XDP_FULL: {
    kind: 'host',
    meaning: 'an input interface has as many XDP rules or outputs as its maps hold',
  },
  E_XDP_UNAVAILABLE: {
    kind: 'host',
    meaning:
      'a rule forced onto XDP cannot go there on this host now (the reason names what is missing and where)',
  },
  E_XDP_MODE: {
    kind: 'host',
    meaning: 'the XDP path needs native XDP on the input (generic mode loses its metadata)',
  },

  // Warnings (logged).
  W_SHARED_USER: {
    kind: 'warning',
    meaning: "the workers' account is shared (nobody, or one with a login shell)",
  },
  W_WORKER_NICE: {
    kind: 'warning',
    meaning: 'a worker could not take its nice value (--worker-nice): mcrd lacks CAP_SYS_NICE or RLIMIT_NICE',
  },
  W_UNCONFINED: { kind: 'warning', meaning: 'workers run without a system-call filter on this architecture' },

  E_INTERNAL: { kind: 'internal', meaning: 'a bug in mcr: please report it with the log' },
} as const satisfies Record<string, CodeEntry>;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Compile-time check: every code the rules layer raises is registered here. */
export type RegisteredRuleCodes = RuleErrorCode extends ErrorCode ? true : never;
const ruleCodesRegistered: RegisteredRuleCodes = true;
void ruleCodesRegistered;

/** A failed system call's code: its errno name (EPERM, ENODEV, …). */
export function isErrnoCode(code: string): boolean {
  return /^E[A-Z0-9]+$/.test(code) && !(code in ERROR_CODES);
}

export function isErrorCode(code: string): code is ErrorCode {
  return code in ERROR_CODES;
}

/** The kind of a code; errno names are the host's, unknown codes internal. */
export function errorKind(code: string): ErrorKind {
  if (isErrorCode(code)) return ERROR_CODES[code].kind;
  return isErrnoCode(code) ? 'host' : 'internal';
}

/** The table of docs/CONTROL-PROTOCOL.md, made from this list. */
export function errorCodeTable(): string {
  const rows = Object.entries(ERROR_CODES).map(([code, e]) => `| \`${code}\` | ${e.kind} | ${e.meaning} |`);
  return ['| code | kind | meaning |', '| --- | --- | --- |', ...rows].join('\n');
}
