import type { TracedCopy, TracedPacket } from '../protocol/control-api.js';

/**
 * One traced frame on one line, the way tcpdump writes one (local time, to the microsecond):
 *   04:12:33.123456 in0 10.63.1.2:40000 > 239.1.1.1:5000 len 100 ttl 64 rule r-… (video) -> 239.2.2.1:6000 out0 raw, 239.2.2.2:6000 out1 socket
 *   04:12:33.123470 in0 10.63.1.2:40000 > 239.9.9.9:5000 len 100 ttl 64 drop no_rule
 *   04:12:33.123480 in0 10.63.1.2 > 239.1.1.1 frame 60 drop bad_ipv4_checksum
 * What the parser could not read is left out (a truncated frame shows only its length).
 */
export function traceLine(packet: TracedPacket): string {
  const parts = [clock(packet.time), packet.interface];
  if (packet.vlan !== null) parts.push(`vlan ${packet.vlan}`);
  if (packet.source !== null && packet.group !== null) {
    parts.push(`${endpoint(packet.source, packet.sourcePort)} > ${endpoint(packet.group, packet.port)}`);
  }
  parts.push(packet.length !== null ? `len ${packet.length}` : `frame ${packet.frameLength}`);
  if (packet.ttl !== null) parts.push(`ttl ${packet.ttl}`);
  if (packet.rule !== null) {
    parts.push(`rule ${packet.rule.id}${packet.rule.name !== null ? ` (${packet.rule.name})` : ''}`);
  }
  if (packet.copies.length > 0) {
    parts.push(`-> ${packet.copies.map(copyText).join(', ')}`);
  }
  if (packet.outcome !== 'forwarded') parts.push(`drop ${packet.outcome}`);
  return parts.join(' ');
}

function copyText(copy: TracedCopy): string {
  const where = copy.interface !== null ? `${copy.destination} ${copy.interface}` : copy.destination;
  switch (copy.status) {
    case 'sent':
      return `${where} ${copy.path}`;
    case 'refused':
      return `${where} ${copy.path} refused ${copy.errno}`;
    default:
      return `${where} ${copy.status}`;
  }
}

function endpoint(address: string, port: number | null): string {
  return port === null ? address : `${address}:${port}`;
}

/** HH:MM:SS.micro in local time, from an ISO 8601 time with microseconds. */
function clock(iso: string): string {
  const date = new Date(iso);
  const micro = /\.(\d{6})Z$/.exec(iso)?.[1] ?? `${String(date.getMilliseconds()).padStart(3, '0')}000`;
  const two = (n: number): string => String(n).padStart(2, '0');
  return `${two(date.getHours())}:${two(date.getMinutes())}:${two(date.getSeconds())}.${micro}`;
}
