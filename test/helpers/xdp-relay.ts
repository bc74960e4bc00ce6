// Runs inside a test namespace (XdpInput attaches to an interface of its own namespace):
//   node xdp-relay.js IFNAME native|generic
// Opens the XDP path of IFNAME, prints {"opened":true,"programId":N,"pid":P} (or {"error":CODE,…}
// and exits), then answers one JSON command per stdin line with one JSON line:
//   {"set":{"key":{group,port,vlan},"outputs":[{id,interface,group,port,sourcePort,ttl,ttlFixed,dscp?}]}}
//   {"remove":{"key":…}}  {"counters":true}  {"hosts":["10.0.0.1",…]}
// Addresses are dotted strings; an output's interface gives its ifindex, MAC and IPv4 address.
// The process exits, closing everything, when stdin closes.
import { createInterface } from 'node:readline';
import { parseIpv4 } from '../../src/packet/ipv4-address.js';
import type { XdpMode } from '../../src/sys/bpf-link.js';
import { interfaceIndex, interfaceInfo } from '../../src/sys/interfaces.js';
import { XdpInput, type XdpOutput } from '../../src/xdp/xdp-input.js';
import type { RuleKey } from '../../src/xdp/xdp-maps.js';

interface KeyText {
  group: string;
  port: number;
  vlan?: number;
}

interface OutputText {
  id: string;
  interface: string;
  group: string;
  port: number;
  sourcePort: number;
  ttl: number;
  ttlFixed?: boolean;
  dscp?: number;
}

interface Command {
  set?: { key: KeyText; outputs: OutputText[] };
  remove?: { key: KeyText };
  counters?: true;
  hosts?: string[];
}

function say(message: unknown): void {
  process.stdout.write(`${JSON.stringify(message)}\n`);
}

function address(text: string): number {
  const value = parseIpv4(text);
  if (value === undefined) throw new Error(`not an IPv4 address: ${text}`);
  return value;
}

function key(k: KeyText): RuleKey {
  return { group: address(k.group), port: k.port, vlan: k.vlan ?? 0 };
}

function output(o: OutputText): XdpOutput {
  const link = interfaceInfo(o.interface);
  if (link === undefined || link.ipv4 === undefined)
    throw new Error(`${o.interface}: no such link with IPv4`);
  return {
    id: o.id,
    ifindex: link.index,
    sourceMac: link.mac,
    sourceAddress: link.ipv4,
    sourcePort: o.sourcePort,
    group: address(o.group),
    port: o.port,
    ttl: o.ttl,
    ttlFixed: o.ttlFixed ?? false,
    dscp: o.dscp,
  };
}

const [ifname = '', modeText = 'native'] = process.argv.slice(2);
let input: XdpInput;
try {
  const ifindex = interfaceIndex(ifname);
  if (ifindex === undefined) throw new Error(`no interface ${ifname}`);
  input = XdpInput.open(ifindex, modeText as XdpMode, ifname);
} catch (err) {
  const { code, message } = err as { code?: string; message: string };
  say({ error: code ?? 'ERROR', message });
  process.exit(1);
}
say({ opened: true, programId: input.programId(), pid: process.pid });

const commands = createInterface({ input: process.stdin });
commands.on('close', () => {
  input.close();
  process.exit(0);
});
commands.on('line', (line) => {
  try {
    const command = JSON.parse(line) as Command;
    if (command.set) {
      input.setRule(key(command.set.key), command.set.outputs.map(output));
      say({ ok: true });
    } else if (command.remove) {
      say({ ok: true, last: input.removeRule(key(command.remove.key)) ?? null });
    } else if (command.counters) {
      say({ counters: input.readCounters() });
    } else if (command.hosts) {
      input.setHostAddresses(command.hosts.map(address));
      say({ ok: true });
    } else {
      say({ error: 'ERROR', message: `unknown command ${line}` });
    }
  } catch (err) {
    const { code, message } = err as { code?: string; message: string };
    say({ error: code ?? 'ERROR', message });
  }
});
