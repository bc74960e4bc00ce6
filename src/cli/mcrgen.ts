// mcrgen: probe traffic generator (send) and receiver/verifier (recv) for testing, benchmarking
// and troubleshooting multicast paths, with or without mcrd in between.
//
// Exit codes: 0 success; 1 a system call failed, recv timed out, or --expect did not hold;
// 2 a bad command line.

import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';

import {
  MAX_SENDERS,
  OptionError,
  parseRecvOptions,
  parseSendOptions,
  type RawOptions,
} from '../gen/options.js';
import { Receiver } from '../gen/receiver.js';
import { formatRecvText, formatSendText } from '../gen/report.js';
import { createSender, SenderGroup } from '../gen/sender-group.js';
import { SysError } from '../sys/errors.js';
import { interfaceIndex } from '../sys/interfaces.js';
import { endQuietlyWhenReaderLeaves } from './closed-pipe.js';

endQuietlyWhenReaderLeaves();

const EXIT_FAILURE = 1;
const EXIT_USAGE = 2;

// mcrgen usually runs as root (tests, benchmarks, troubleshooting), and on SIGUSR1 Node would open
// its inspector on 127.0.0.1:9229: a debugger any local user could use to run code as root. A
// listener keeps it closed (Node 20 has no --disable-sigusr1); it stays for the process's life,
// since removing the last one would restore the default action, which ends the process.
process.on('SIGUSR1', () => process.stderr.write('mcrgen: SIGUSR1 ignored (no Node inspector)\n'));

const PROGRAM_HELP = `
Run "mcrgen send --help" or "mcrgen recv --help" for the options of each.

A typical check of a path: start the receiver first, then the sender.
  mcrgen recv --interface eth2 --group 239.1.1.1 --port 5000 --count 10000 --timeout 30 --expect 10000 &
  mcrgen send --interface eth1 --group 239.1.1.1 --port 5000 --rate 10000 --size 1316 --count 10000
  wait $!    # exit status 0: all 10000 arrived, none lost, duplicated or corrupted

Exit status: 0 success; 1 system error, recv timeout or failed --expect; 2 bad command line.`;

const SEND_HELP = `
Every packet is an mcrgen probe: a 32-byte header (magic "MCR1", stream id, 64-bit
sequence number from 0, send time in µs, length, FNV-1a checksum over the whole
payload) followed by deterministic filler up to --size bytes.

The socket is connected to GROUP:PORT with IP_MULTICAST_IF = the interface,
IP_MULTICAST_TTL = --ttl and IP_MULTICAST_LOOP off (listeners on this host get no
copy), bound to the device when privileged. GROUP may be a unicast address.

With --streams N (N > 1) one process sends N streams: to N consecutive addresses
from GROUP (239.1.1.1 with --streams 100: 239.1.1.1 to 239.1.1.100, counting on
across octets), all on PORT, from one unconnected socket with the same options;
every message in a sendmmsg batch names its own destination. Stream k (0 to N-1)
carries stream id --stream-id + k (mod 2^32) and its own sequence numbers from
0, so "mcrgen recv --streams N" sees N separate streams. Packets go round-robin
(packet i to stream i mod N); --rate and --count are totals over all streams
(with --count not a multiple of N, the first streams get one packet more). The
range must stay inside 224.0.0.0/4 when GROUP is a group, and stay unicast and
short of 255.255.255.255 when it is not.

With --rtp every payload starts with an RTP header (RFC 3550: version 2, payload
type 96, SSRC = the stream id, a 90 kHz timestamp stepping by 90000/rate per
number) and the probe follows it, so --size must be at least 44. The sequence
number starts at --rtp-first-sequence (default: random) and counts up by one
per packet, wrapping after 65535, except where impairments are asked for:
  --rtp-gaps 100,250:3   skip 1 number before packet 100, 3 before packet 250
                         (packets counted from 0; sizes 1-1000; in order)
  --rtp-skip-every N     skip 1 number before packets N, 2N, 3N, ...
  --rtp-duplicate-every N  send packets N-1, 2N-1, ... twice in a row
  --rtp-reorder-every N  send packets N-1, 2N-1, ... after the one that follows
                         them (not past a gap of 100 or more, where it would
                         be lost to a receiver rather than late)
--count counts datagrams, duplicates included; a duplicate or a late pair that
would not fit in it is left out. Every datagram carries its own probe, so
"mcrgen recv --rtp --expect N" checks that each was delivered exactly once.
The report (and --json's "rtp") gives the SSRC, the first and last sequence
numbers and what the datagrams sent inject: gaps, numbers lost, duplicates
and packets reordered, what mcrd's per-rule RTP counters (mcrctl add --rtp)
should show for a lossless path.

Pacing is computed from elapsed time since the start, so the average rate never
drifts; packets that fall due within the same ~1 ms timer tick leave in one
sendmmsg batch (up to 64).

With --raw every packet leaves as a complete Ethernet/IPv4/UDP frame through an
AF_PACKET socket bound to the interface (needs CAP_NET_RAW), in sendmmsg batches
of 64, with PACKET_QDISC_BYPASS unless --no-qdisc-bypass: no routing, no ARP, no
qdisc, no fragmentation. The frame comes from the interface's MAC and IPv4
address and --source-port (default: a random ephemeral port), goes to the
group's MAC (01:00:5e + its low 23 bits) or, for a unicast GROUP, to
--destination-mac (required then); IPv4 TTL --ttl, DF set, id 0, both checksums
computed. --size must fit the interface's MTU less 28. The probes are the same,
so "mcrgen recv" checks them as always. From one core of a 2-vCPU VM it offered
1.1-1.2 M pps of 64-byte payloads where the socket path offered 0.7 M (see
docs/PERFORMANCE.md, the generator).
"packets" counts the frames the kernel accepted. A full device queue (on veth:
the peer's receive ring) refuses a frame; it is retried after 50 µs, or with
--drop-when-full counted as "refused" and given up (the receiver sees it lost),
so the offered rate holds as it would on a wire into a full NIC ring.

With --threads N the run is shared by N senders, each in a worker thread with
its own socket and event loop, that start together; sender j sends stream ids
--stream-id + j × streams + k and gets 1/N of --rate and of --count. The report
sums them, and --json lists each in "perSender". It only helps with CPUs to
spare: one sender already keeps a core busy.

Examples:
  mcrgen send --interface eth1 --group 239.1.1.1 --port 5000 --rate 10000 --size 1316 --duration 10
  mcrgen send --interface eth1 --group 239.1.1.1 --port 5000 --rate max --size 64 --count 1000000 --json
  mcrgen send --interface eth1 --group 239.1.1.1 --streams 100 --port 5000 --rate 100000 --size 64 --duration 10
  mcrgen send --interface eth1 --group 239.1.1.1 --port 5004 --rate 1000 --size 1328 --count 10000 --rtp --rtp-gaps 100,2000:5 --rtp-reorder-every 500
  mcrgen send --interface eth1 --group 239.1.1.1 --port 5000 --rate max --size 64 --duration 5 --raw
  mcrgen send --interface eth1 --group 10.1.1.2 --port 5000 --rate 500000 --size 64 --count 1000000 --raw --destination-mac 02:00:00:00:00:02`;

const RECV_HELP = `
Binds GROUP:PORT (only that group and port; 0.0.0.0:PORT for a unicast GROUP) with
SO_REUSEADDR, joins GROUP on the interface (IGMP report), and verifies every
datagram as an mcrgen probe. Per stream id it counts received, unique, lost
(gaps up to the highest sequence; sequences start at 0, so start the receiver
before the sender), duplicates, reordered, corrupted (too_short, bad_magic,
bad_length, bad_checksum, truncated) and one-way latency (meaningful only when
sender and receiver run on the same host). Damaged datagrams always count in
the totals; they count against a stream only when their header names a stream
already seen intact. It also reports the kernel's drop counter for its
socket(s) (receive buffer overflow).

With --streams N (N > 1) it joins N consecutive groups from GROUP, the range
"mcrgen send --streams N" sends to, on sockets bound to 0.0.0.0:PORT that take
only the groups they joined themselves (IP_MULTICAST_ALL off), one socket per
net.ipv4.igmp_max_memberships groups. Unicast datagrams to PORT on this host
reach those sockets too. --count and --expect count over all streams.

"mcrgen recv: listening on ..." is printed to stderr once the group is joined.
SIGINT/SIGTERM stop the run and print the report.

Exit status: 0 on success; 1 on a system error, on --timeout, or when --expect
does not hold (the problems are printed to stderr); 2 on a bad command line.

Examples:
  mcrgen recv --interface eth2 --group 239.1.1.1 --port 5000 --duration 10
  mcrgen recv --interface eth2 --group 239.1.1.1 --port 5000 --count 10000 --timeout 20 --expect 10000
  mcrgen recv --interface eth2 --group 239.1.1.1 --streams 100 --port 5000 --duration 10`;

function buildProgram(): Command {
  const program = new Command('mcrgen');
  // Set before adding subcommands, which inherit them: commander's own errors (unknown option,
  // missing value) come out in the same "mcrgen: ..." form and exit code as ours.
  program
    .exitOverride()
    .configureOutput({ outputError: (text, write) => write(`mcrgen: ${text.replace(/^error: /, '')}`) })
    .showHelpAfterError('(run with --help for usage)')
    .description('Multicast probe traffic generator (send) and receiver/verifier (recv).')
    .helpCommand(false)
    .addHelpText('after', PROGRAM_HELP);

  program
    .command('send')
    .usage(
      '--interface IF --group G [--streams N] --port P --rate PPS --size BYTES (--count N | --duration S) [options]',
    )
    .description('send paced probe packets to a multicast group (or unicast address)')
    .option('--interface <name>', 'interface to send on (IP_MULTICAST_IF, SO_BINDTODEVICE)')
    .option('--group <address>', 'destination: IPv4 multicast group, or a unicast address')
    .option(
      '--streams <n>',
      'send N streams, 1-1024, default 1: to N consecutive addresses from --group, round-robin',
    )
    .option('--port <port>', 'destination UDP port, 1-65535')
    .option(
      '--rate <pps>',
      'packets per second over all streams (decimals allowed); "max" or 0 = as fast as possible',
    )
    .option('--size <bytes>', 'UDP payload bytes per packet, 32-65507 (1316 = 7 MPEG-TS packets)')
    .option('--count <n>', 'stop after sending N packets (over all streams)')
    .option('--duration <seconds>', 'stop after this many seconds (decimals allowed)')
    .option('--ttl <hops>', 'IP multicast TTL, 0-255, default 16 (also the IP TTL for a unicast destination)')
    .option(
      '--stream-id <id>',
      'stream id carried in every probe, 0-4294967295 or 0x hex (default: random); stream k gets id + k',
    )
    .option('--source-port <port>', 'UDP source port to send from (default: any free port)')
    .option('--rtp', 'payloads start with an RTP header, numbered in sequence (the probe follows it)')
    .option('--rtp-first-sequence <n>', 'with --rtp: the first sequence number, 0-65535 (default: random)')
    .option(
      '--rtp-gaps <list>',
      'with --rtp: PACKET[:SIZE],...: skip SIZE (default 1) numbers before each PACKET',
    )
    .option('--rtp-skip-every <n>', 'with --rtp: skip one sequence number before every Nth packet')
    .option('--rtp-duplicate-every <n>', 'with --rtp: send every Nth packet twice')
    .option('--rtp-reorder-every <n>', 'with --rtp: send every Nth packet (N ≥ 2) after the next one')
    .option('--raw', 'send whole Ethernet frames through an AF_PACKET socket (faster; CAP_NET_RAW)')
    .option('--destination-mac <mac>', 'with --raw: destination MAC (required for a unicast --group)')
    .option('--drop-when-full', 'with --raw: give up (count as refused) frames a full device queue refuses')
    .option('--no-qdisc-bypass', 'with --raw: go through the interface’s qdisc (PACKET_QDISC_BYPASS off)')
    .option('--threads <n>', `share the run among N sender threads, 1-${MAX_SENDERS} (own stream ids each)`)
    .option('--json', 'print the report as one JSON object')
    .addHelpText('after', SEND_HELP)
    .action(async (raw: RawOptions) => {
      const options = parseSendOptions(raw, interfaceIndex);
      const sender = options.senders > 1 ? new SenderGroup(options) : createSender(options);
      const report = await withSignals(() => sender.stop(), sender.run());
      print(raw, report, formatSendText(report));
    });

  program
    .command('recv')
    .usage('--interface IF --group G [--streams N] --port P (--count N | --duration S) [options]')
    .description('receive and verify probe packets: loss, duplicates, reordering, corruption, latency')
    .option('--interface <name>', 'interface to join the group on (IP_ADD_MEMBERSHIP, SO_BINDTODEVICE)')
    .option('--group <address>', 'IPv4 multicast group to join, or a unicast address to listen for')
    .option('--streams <n>', 'join N consecutive groups from --group, 1-1024, default 1 (multicast only)')
    .option('--port <port>', 'UDP port, 1-65535')
    .option('--count <n>', 'stop after N good probe packets (duplicates included)')
    .option('--duration <seconds>', 'stop after this many seconds (decimals allowed)')
    .option('--timeout <seconds>', 'with --count: give up after this many seconds, report and exit 1')
    .option(
      '--expect <n>',
      'exit 0 only if exactly N unique good packets arrived, none lost, duplicated or corrupted',
    )
    .option(
      '--max-size <bytes>',
      'receive buffer per datagram, 32-65535, default 2048; longer datagrams count as truncated',
    )
    .option(
      '--rtp',
      'datagrams start with an RTP header (as mcrgen send --rtp sends them); the probe follows it; others count as not_rtp',
    )
    .option('--json', 'print the report as one JSON object (totals and per stream)')
    .addHelpText('after', RECV_HELP)
    .action(async (raw: RawOptions) => {
      const receiver = new Receiver(parseRecvOptions(raw, interfaceIndex));
      const report = await withSignals(
        () => receiver.stop(),
        receiver.run((l) => {
          process.stderr.write(
            `mcrgen recv: listening on ${l.address}:${l.port} via ${l.interfaceName}, receive buffer ${l.receiveBufferBytes} bytes\n`,
          );
        }),
      );
      print(raw, report, formatRecvText(report));
      if (report.timedOut) {
        const target = raw['count'] === undefined ? '' : ` of ${String(raw['count'])}`;
        fail(
          `timed out after ${report.elapsedSeconds.toFixed(1)} s: received ${report.totals.good}${target} probe packets`,
        );
      }
      if (report.expect !== null && !report.expect.ok) {
        fail(`expected ${report.expect.packets} packets: ${report.expect.problems.join('; ')}`);
      }
    });

  return program;
}

/** Routes SIGINT/SIGTERM to `stop` while `run` is in flight, so the run ends with a report. */
async function withSignals<T>(stop: () => void, run: Promise<T>): Promise<T> {
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
  try {
    return await run;
  } finally {
    process.off('SIGINT', stop);
    process.off('SIGTERM', stop);
  }
}

function print(raw: RawOptions, report: object, text: string): void {
  process.stdout.write(raw['json'] === true ? `${JSON.stringify(report)}\n` : `${text}\n`);
}

function fail(message: string): void {
  process.stderr.write(`mcrgen: ${message}\n`);
  process.exitCode = EXIT_FAILURE;
}

/** A sysctl of this network namespace, as text; undefined if it cannot be read. */
function sysctl(name: string): string | undefined {
  try {
    return readFileSync(`/proc/sys/${name.replaceAll('.', '/')}`, 'utf8').trim();
  } catch {
    return undefined;
  }
}

/**
 * What usually causes a refused call in a test setup, and what to do about it; the errno text
 * alone rarely says. Keyed by errno name and by the call that failed (the same errno means
 * different things for bind, connect and a group join).
 */
function hintFor(err: SysError): string | undefined {
  const call = err.call;
  switch (err.code) {
    case 'EACCES':
      if (call.startsWith('bind')) {
        const first = sysctl('net.ipv4.ip_unprivileged_port_start') ?? '1024';
        return `ports below ${first} (net.ipv4.ip_unprivileged_port_start) need root or CAP_NET_BIND_SERVICE; run as root, or use a port of ${first} or above`;
      }
      if (call.startsWith('connect') || call.startsWith('sendmmsg'))
        return 'that is a broadcast address, which mcrgen does not send to; use a multicast group or a host address';
      return 'run as root';
    case 'EPERM':
      return 'the kernel refused this without privileges, or a firewall rule refused it; run as root, or check the firewall (nft list ruleset)';
    case 'ENOBUFS':
      if (call.includes('IP_ADD_MEMBERSHIP')) {
        const limit = sysctl('net.ipv4.igmp_max_memberships') ?? 'unknown';
        return `a socket may join at most net.ipv4.igmp_max_memberships groups, and that is ${limit} here; raise it (sysctl -w net.ipv4.igmp_max_memberships=20)`;
      }
      return undefined;
    case 'ENODEV':
      return 'the interface went away after mcrgen started; check it with ip link';
    case 'ENETUNREACH':
      return 'check that the interface is up and, for a unicast destination, that a route to it exists (ip addr; ip route)';
    case 'ENETDOWN':
      return 'the interface is down (ip link set IF up)';
    default:
      return undefined;
  }
}

async function main(argv: string[]): Promise<void> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv);
  } catch (err) {
    if (err instanceof CommanderError) {
      // Help and version requested explicitly are successes; anything else is a usage error.
      process.exitCode =
        err.code === 'commander.helpDisplayed' || err.code === 'commander.version' ? 0 : EXIT_USAGE;
    } else if (err instanceof OptionError) {
      process.stderr.write(`mcrgen: ${err.message}\n`);
      process.exitCode = EXIT_USAGE;
    } else if (err instanceof SysError) {
      process.stderr.write(`mcrgen: ${err.message}\n`);
      const hint = hintFor(err);
      if (hint !== undefined) process.stderr.write(`mcrgen: hint: ${hint}\n`);
      process.exitCode = EXIT_FAILURE;
    } else {
      throw err;
    }
  }
}

await main(process.argv);
