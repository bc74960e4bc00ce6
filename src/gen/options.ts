// Turns the strings a user typed into typed, checked options for mcrgen send and recv. Every
// rejection names the option and says what was wrong and what is expected, because the person
// reading it is usually in the middle of a test and wants the fix, not a stack trace.

import { ipv4ToString, isMulticastIpv4, offsetIpv4, parseIpv4 } from '../packet/ipv4-address.js';
import { macToString, parseMac } from '../packet/mac-address.js';
import { PROBE_MIN_SIZE } from '../packet/probe.js';
import { MAX_GAP_SIZE, type RtpGap, type RtpPlanOptions } from './rtp-plan.js';

/** Largest UDP payload in an IPv4 datagram: 65535 − 20 (IP header) − 8 (UDP header). */
export const MAX_UDP_PAYLOAD = 65507;
export const DEFAULT_TTL = 16;
export const DEFAULT_MAX_SIZE = 2048;
/** The largest buffer a datagram can need (its length field is 16 bits). */
export const MAX_RECEIVE_BUFFER = 65535;
/** setTimeout's ceiling (2^31 − 1 ms), in whole seconds: longer timers would fire at once. */
export const MAX_SECONDS = 2147483;
/** Most consecutive destinations (send) or groups (recv) one --streams run covers. */
export const MAX_STREAMS = 1024;
/** With --rtp, every payload starts with a 12-byte RTP header; the probe follows it. */
export const RTP_HEADER_BYTES = 12;
/** Most entries of --rtp-gaps. */
export const MAX_RTP_GAPS = 10_000;
/** Most sender threads one mcrgen send starts. */
export const MAX_SENDERS = 64;

/** A value the user gave is unusable; `field` is the option as typed, e.g. "--port". */
export class OptionError extends Error {
  readonly field: string;
  readonly detail: string;

  constructor(field: string, detail: string) {
    super(`${field}: ${detail}`);
    this.name = 'OptionError';
    this.field = field;
    this.detail = detail;
  }
}

export type StopCondition = { kind: 'count'; count: number } | { kind: 'duration'; seconds: number };

interface CommonOptions {
  interfaceName: string;
  ifindex: number;
  /** Destination (send) or group to receive (recv), unsigned 32-bit. */
  group: number;
  /** True when `group` is in 224.0.0.0/4; otherwise it is a unicast address. */
  multicast: boolean;
  /**
   * --streams: how many consecutive addresses from `group` (group, group + 1, …) the run covers,
   * 1-MAX_STREAMS. Checked to stay inside 224.0.0.0/4 when `group` is a group, and to stay
   * below it and short of 255.255.255.255 when it is unicast.
   */
  streams: number;
  port: number;
  stop: StopCondition;
  json: boolean;
}

export interface SendOptions extends CommonOptions {
  /** Packets per second; 0 = as fast as possible. */
  rate: number;
  /** UDP payload bytes per packet. */
  size: number;
  ttl: number;
  /** Stream id of the first destination (stream k carries this + k mod 2^32). Undefined: random. */
  streamId: number | undefined;
  /** Undefined: let the kernel pick an ephemeral port. */
  sourcePort: number | undefined;
  /** --rtp: payloads are RTP (header, then the probe), numbered with these impairments. */
  rtp: RtpPlanOptions | undefined;
  /** --raw: whole Ethernet frames through an AF_PACKET socket; undefined: a UDP socket. */
  raw: RawPathOptions | undefined;
  /**
   * --threads: how many senders share the run, each in a worker thread with its own stream ids
   * and its share of --rate and --count (1: the main thread sends).
   */
  senders: number;
}

export interface RawPathOptions {
  /** --destination-mac, as "01:00:5e:01:01:01"; undefined: derived from each group. */
  destinationMac: string | undefined;
  /** PACKET_QDISC_BYPASS (the default); --no-qdisc-bypass goes through the interface's qdisc. */
  qdiscBypass: boolean;
  /**
   * --drop-when-full: a frame the device refuses because its queue is full is counted and given
   * up instead of retried, so the offered rate holds and the receiver sees the loss.
   */
  dropWhenFull: boolean;
}

export interface RecvOptions extends CommonOptions {
  /** Overall deadline in seconds for --count mode. */
  timeoutSeconds: number | undefined;
  /** Exact number of unique good packets required for exit code 0. */
  expect: number | undefined;
  /** Receive buffer per datagram; anything longer counts as truncated. */
  maxSize: number;
  /** --rtp: each datagram starts with an RTP header, the probe follows it. */
  rtp: boolean;
}

/** Option values as commander hands them over: strings, `true` for flags, or absent. */
export type RawOptions = Readonly<Record<string, unknown>>;

/** Looks an interface name up; undefined when no such interface exists. Injected for tests. */
export type InterfaceResolver = (name: string) => number | undefined;

export function parseSendOptions(raw: RawOptions, resolveInterface: InterfaceResolver): SendOptions {
  const common = parseCommon(raw, resolveInterface);
  const size = integerOption(raw, 'size', '--size', PROBE_MIN_SIZE, MAX_UDP_PAYLOAD, 'bytes of UDP payload');
  if (size === undefined)
    throw new OptionError(
      '--size',
      `required; expected ${PROBE_MIN_SIZE}-${MAX_UDP_PAYLOAD} bytes of UDP payload`,
    );
  const ttl = integerOption(raw, 'ttl', '--ttl', 0, 255, 'hops') ?? DEFAULT_TTL;
  const rtp = parseRtpOptions(raw);
  if (rtp !== undefined && common.streams > 1) {
    throw new OptionError(
      '--rtp',
      `sends one RTP stream, not ${common.streams}; leave --streams out, or run one mcrgen send --rtp per stream`,
    );
  }
  if (rtp !== undefined && size < PROBE_MIN_SIZE + RTP_HEADER_BYTES) {
    throw new OptionError(
      '--size',
      `${size} bytes cannot hold the RTP header and the probe; expected at least ${PROBE_MIN_SIZE + RTP_HEADER_BYTES} with --rtp`,
    );
  }
  const rawPath = parseRawPath(raw, common.multicast);
  if (rawPath !== undefined && rtp !== undefined) {
    throw new OptionError('--rtp', 'is sent through the UDP socket only; leave out --raw');
  }
  const senders = parseThreads(raw, common.stop);
  if (senders > 1 && rtp !== undefined) {
    throw new OptionError(
      '--rtp',
      'sends one RTP stream, not one per sender; leave --threads out, or run one mcrgen send --rtp per stream',
    );
  }
  return {
    ...common,
    rate: parseRate(raw['rate']),
    size,
    ttl,
    streamId: parseStreamId(raw['streamId']),
    sourcePort: integerOption(raw, 'sourcePort', '--source-port', 1, 65535, '(a UDP port)'),
    rtp,
    raw: rawPath,
    senders,
  };
}

/** --raw and the options that only apply with it; undefined without --raw. */
function parseRawPath(raw: RawOptions, multicast: boolean): RawPathOptions | undefined {
  const macText = raw['destinationMac'];
  if (raw['raw'] !== true) {
    // commander sets qdiscBypass to true unless --no-qdisc-bypass was given.
    const stray =
      macText !== undefined
        ? '--destination-mac'
        : raw['dropWhenFull'] === true
          ? '--drop-when-full'
          : raw['qdiscBypass'] === false
            ? '--no-qdisc-bypass'
            : undefined;
    if (stray !== undefined) throw new OptionError(stray, 'only applies with --raw');
    return undefined;
  }
  let destinationMac: string | undefined;
  if (macText !== undefined) {
    const mac = parseMac(String(macText));
    if (mac === undefined) {
      throw new OptionError(
        '--destination-mac',
        `${JSON.stringify(String(macText))} is not a MAC address; expected six hex bytes such as 02:00:00:00:00:01`,
      );
    }
    destinationMac = macToString(mac);
  } else if (!multicast) {
    throw new OptionError(
      '--destination-mac',
      'required with --raw for a unicast --group (mcrgen resolves no addresses); expected the next hop’s MAC, see `ip neigh`',
    );
  }
  return {
    destinationMac,
    qdiscBypass: raw['qdiscBypass'] !== false,
    dropWhenFull: raw['dropWhenFull'] === true,
  };
}

/** --threads N; each sender needs at least one packet of a --count. */
function parseThreads(raw: RawOptions, stop: StopCondition): number {
  const senders = integerOption(raw, 'threads', '--threads', 1, MAX_SENDERS, 'senders') ?? 1;
  if (stop.kind === 'count' && stop.count < senders) {
    throw new OptionError(
      '--threads',
      `${senders} senders cannot share --count ${stop.count}; expected at most ${stop.count}`,
    );
  }
  return senders;
}

const RTP_IMPAIRMENTS = [
  ['rtpFirstSequence', '--rtp-first-sequence'],
  ['rtpGaps', '--rtp-gaps'],
  ['rtpSkipEvery', '--rtp-skip-every'],
  ['rtpDuplicateEvery', '--rtp-duplicate-every'],
  ['rtpReorderEvery', '--rtp-reorder-every'],
] as const;

/** --rtp and the options that shape its sequence; undefined without --rtp. */
function parseRtpOptions(raw: RawOptions): RtpPlanOptions | undefined {
  if (raw['rtp'] !== true) {
    const stray = RTP_IMPAIRMENTS.find(([key]) => raw[key] !== undefined);
    if (stray !== undefined) throw new OptionError(stray[1], 'only applies with --rtp');
    return undefined;
  }
  const every = (key: string, field: string, min: number): number =>
    integerOption(raw, key, field, min, 1_000_000, 'packets') ?? 0;
  return {
    firstSequence:
      integerOption(
        raw,
        'rtpFirstSequence',
        '--rtp-first-sequence',
        0,
        65535,
        '(a 16-bit sequence number)',
      ) ?? randomSequence(),
    gaps: parseRtpGaps(raw['rtpGaps']),
    skipEvery: every('rtpSkipEvery', '--rtp-skip-every', 1),
    duplicateEvery: every('rtpDuplicateEvery', '--rtp-duplicate-every', 1),
    // Every packet late would be no order at all: at least every second.
    reorderEvery: every('rtpReorderEvery', '--rtp-reorder-every', 2),
  };
}

function randomSequence(): number {
  return Math.floor(Math.random() * 65536);
}

/** "100,250:3,900:2": before packet 100 skip 1 number, before 250 skip 3, before 900 skip 2. */
function parseRtpGaps(value: unknown): RtpGap[] {
  if (value === undefined) return [];
  const text = String(value);
  const expected = `expected a comma-separated list of PACKET[:SIZE] in increasing order of PACKET (1 or more), SIZE 1-${MAX_GAP_SIZE} (default 1), e.g. 100,250:3`;
  const items = text.split(',');
  if (items.length > MAX_RTP_GAPS)
    throw new OptionError('--rtp-gaps', `${items.length} gaps; at most ${MAX_RTP_GAPS}`);
  const gaps: RtpGap[] = [];
  for (const item of items) {
    const m = /^(\d{1,15})(?::(\d{1,4}))?$/.exec(item.trim());
    const at = m ? Number(m[1]) : NaN;
    const size = m?.[2] === undefined ? 1 : Number(m[2]);
    if (!m || at < 1 || size < 1 || size > MAX_GAP_SIZE || at <= (gaps[gaps.length - 1]?.at ?? 0)) {
      throw new OptionError('--rtp-gaps', `${JSON.stringify(item)} in ${JSON.stringify(text)}: ${expected}`);
    }
    gaps.push({ at, size });
  }
  return gaps;
}

export function parseRecvOptions(raw: RawOptions, resolveInterface: InterfaceResolver): RecvOptions {
  const common = parseCommon(raw, resolveInterface);
  if (!common.multicast && common.streams > 1) {
    throw new OptionError(
      '--streams',
      `recv joins ${common.streams} consecutive groups, but ${ipv4ToString(common.group)} is a unicast address and there is nothing to join; expected a multicast --group, or leave --streams out (a unicast receiver already takes the port on every local address)`,
    );
  }
  const timeoutSeconds = secondsOption(raw, 'timeout', '--timeout');
  if (timeoutSeconds !== undefined && common.stop.kind !== 'count') {
    throw new OptionError(
      '--timeout',
      'only applies with --count (it is the deadline for reaching the count); with --duration the run already ends on time',
    );
  }
  return {
    ...common,
    timeoutSeconds,
    rtp: raw['rtp'] === true,
    expect: integerOption(raw, 'expect', '--expect', 0, Number.MAX_SAFE_INTEGER, 'packets'),
    maxSize:
      integerOption(raw, 'maxSize', '--max-size', PROBE_MIN_SIZE, MAX_RECEIVE_BUFFER, 'bytes per datagram') ??
      DEFAULT_MAX_SIZE,
  };
}

function parseCommon(raw: RawOptions, resolveInterface: InterfaceResolver): CommonOptions {
  const interfaceName = stringOption(raw, 'interface');
  if (interfaceName === undefined || interfaceName === '') {
    throw new OptionError(
      '--interface',
      'required; expected the name of a network interface (see `ip link`)',
    );
  }
  const ifindex = resolveInterface(interfaceName);
  if (ifindex === undefined) {
    throw new OptionError(
      '--interface',
      `no interface named ${JSON.stringify(interfaceName)} in this network namespace; expected an existing interface name (see \`ip link\`)`,
    );
  }
  const group = parseAddress(raw['group']);
  const streams = integerOption(raw, 'streams', '--streams', 1, MAX_STREAMS, 'consecutive addresses') ?? 1;
  checkAddressRange(group, streams);
  const port = integerOption(raw, 'port', '--port', 1, 65535, '(a UDP port)');
  if (port === undefined) throw new OptionError('--port', 'required; expected a UDP port 1-65535');
  return {
    interfaceName,
    ifindex,
    group,
    multicast: isMulticastIpv4(group),
    streams,
    port,
    stop: parseStop(raw),
    json: raw['json'] === true,
  };
}

function parseAddress(value: unknown): number {
  if (value === undefined) {
    throw new OptionError(
      '--group',
      'required; expected an IPv4 multicast group such as 239.1.1.1 (or a unicast address)',
    );
  }
  const text = String(value);
  const address = parseIpv4(text);
  if (address === undefined) {
    throw new OptionError(
      '--group',
      `${JSON.stringify(text)} is not an IPv4 address; expected a dotted quad such as 239.1.1.1 (no leading zeros)`,
    );
  }
  if (address === 0 || address === 0xffffffff) {
    throw new OptionError(
      '--group',
      `${ipv4ToString(address)} cannot be used; expected a multicast group (224.0.0.0/4) or a unicast host address`,
    );
  }
  return address;
}

/**
 * `streams` consecutive addresses from `first` must be one kind: all multicast (inside
 * 224.0.0.0/4) or all unicast (below it, or above it and short of 255.255.255.255, the
 * broadcast address no socket may send to without SO_BROADCAST).
 */
function checkAddressRange(first: number, streams: number): void {
  const multicast = isMulticastIpv4(first);
  const ceiling = multicast ? 0xefffffff : first < 0xe0000000 ? 0xdfffffff : 0xfffffffe;
  const last = offsetIpv4(first, streams - 1);
  if (last !== undefined && last <= ceiling) return;
  const fit = ceiling - first + 1;
  const past =
    last === undefined
      ? 'past 255.255.255.255'
      : `to ${ipv4ToString(last)}, ${
          multicast
            ? 'outside the multicast range 224.0.0.0/4'
            : ceiling === 0xdfffffff
              ? 'into the multicast range 224.0.0.0/4 (one run sends to groups or to unicast hosts, not both)'
              : 'which includes the broadcast address 255.255.255.255'
        }`;
  throw new OptionError(
    '--streams',
    `${streams} consecutive addresses from ${ipv4ToString(first)} would run ${past}; expected at most ${fit} from this --group (the last one ${ipv4ToString(ceiling)}), or a lower --group`,
  );
}

function parseStop(raw: RawOptions): StopCondition {
  const count = integerOption(raw, 'count', '--count', 1, Number.MAX_SAFE_INTEGER, 'packets');
  const seconds = secondsOption(raw, 'duration', '--duration');
  if (count !== undefined && seconds !== undefined) {
    throw new OptionError(
      '--count/--duration',
      'both given; expected exactly one of --count N or --duration S',
    );
  }
  if (count !== undefined) return { kind: 'count', count };
  if (seconds !== undefined) return { kind: 'duration', seconds };
  throw new OptionError(
    '--count/--duration',
    'neither given; expected exactly one of --count N or --duration S',
  );
}

function parseRate(value: unknown): number {
  if (value === undefined) {
    throw new OptionError(
      '--rate',
      'required; expected packets per second (a number ≥ 0), or "max" for as fast as possible',
    );
  }
  const text = String(value);
  if (text === 'max') return 0;
  if (/^-/.test(text)) {
    throw new OptionError(
      '--rate',
      `${text} is negative; expected packets per second ≥ 0, or "max" (0 also means as fast as possible)`,
    );
  }
  if (!/^\d+(\.\d+)?$/.test(text) || !Number.isFinite(Number(text))) {
    throw new OptionError(
      '--rate',
      `${JSON.stringify(text)} is not a number; expected packets per second ≥ 0, or "max"`,
    );
  }
  return Number(text);
}

function parseStreamId(value: unknown): number | undefined {
  if (value === undefined) return undefined;
  const text = String(value);
  const n = /^\d+$/.test(text)
    ? Number(text)
    : /^0x[0-9a-f]+$/i.test(text)
      ? Number.parseInt(text.slice(2), 16)
      : NaN;
  if (!Number.isInteger(n) || n > 0xffffffff) {
    throw new OptionError(
      '--stream-id',
      `${JSON.stringify(text)} is not a valid stream id; expected an integer 0-4294967295 (decimal or 0x hex)`,
    );
  }
  return n;
}

function stringOption(raw: RawOptions, key: string): string | undefined {
  const value = raw[key];
  return value === undefined ? undefined : String(value);
}

/** An optional decimal integer in [min, max]; undefined when absent. */
function integerOption(
  raw: RawOptions,
  key: string,
  field: string,
  min: number,
  max: number,
  unit: string,
): number | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  const text = String(value);
  const expected = `expected an integer ${min}-${max} ${unit}`.trimEnd();
  if (!/^-?\d+$/.test(text))
    throw new OptionError(field, `${JSON.stringify(text)} is not an integer; ${expected}`);
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new OptionError(field, `${text} is out of range; ${expected}`);
  }
  return n;
}

/** An optional positive number of seconds (decimals allowed) up to MAX_SECONDS. */
function secondsOption(raw: RawOptions, key: string, field: string): number | undefined {
  const value = raw[key];
  if (value === undefined) return undefined;
  const text = String(value);
  const expected = `expected a number of seconds > 0 and ≤ ${MAX_SECONDS}, e.g. 10 or 0.5`;
  if (!/^-?\d+(\.\d+)?$/.test(text))
    throw new OptionError(field, `${JSON.stringify(text)} is not a number; ${expected}`);
  const n = Number(text);
  if (!(n > 0) || n > MAX_SECONDS) throw new OptionError(field, `${text} is out of range; ${expected}`);
  return n;
}
