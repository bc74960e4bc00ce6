import { EGRESS_HEADER_SIZE, writeEgressTemplate } from '../packet/egress-header.js';
import type { RawEgressSpec } from '../protocol/worker-messages.js';
import { describeOutput, type Output } from '../rules/rule.js';
import { RuleError } from '../rules/rule-error.js';
import { interfaceInfo } from '../sys/interfaces.js';
import { openRawEgressSocket } from '../sys/packet-socket.js';
import { IPPROTO_IP, IP_TTL } from '../sys/constants.js';
import {
  bindToDevice,
  closeFd,
  closeFdInBackground,
  connectIpv4,
  localPort,
  openUdpSocket,
  setBufferSize,
  setIntOption,
  setMulticastInterface,
  setMulticastLoop,
  setMulticastTtl,
} from '../sys/socket.js';

/** The sockets of one output: always a UDP socket; a raw one too when the raw path applies. */
export interface OutputSockets {
  socketFd: number;
  raw: { fd: number; spec: RawEgressSpec } | null;
}

/**
 * Opens an output's sockets and decides its path. Raw egress applies to multicast outputs on an
 * Ethernet link that has an IPv4 address, unless the output asks for the socket path; a forced
 * raw output where it cannot apply is an error. The UDP socket is opened either way: unicast,
 * non-Ethernet links and payloads above the link MTU go through it, and the raw header uses its
 * source port so both paths send from the same port.
 */
export function openOutputSockets(
  output: Output,
  ifindex: number | undefined,
  field: string,
  qdiscBypass: boolean,
): OutputSockets {
  const socketFd = openOutputSocket(output, ifindex);
  try {
    if (
      output.mode === 'socket' ||
      output.mode === 'xdp' ||
      !output.multicast ||
      output.interface === undefined ||
      ifindex === undefined
    ) {
      return { socketFd, raw: null };
    }
    const link = interfaceInfo(output.interface);
    const usable = link !== undefined && link.mac.length === 6 && link.ipv4 !== undefined;
    if (!usable) {
      if (output.mode === 'raw') {
        throw new RuleError(
          'E_RAW_UNSUPPORTED',
          `${field}.mode`,
          'raw',
          `${field}.mode raw: ${describeOutput(output)} needs an Ethernet link with an IPv4 address for raw egress, and ${output.interface} is not one (use auto or socket)`,
        );
      }
      return { socketFd, raw: null };
    }
    const template = new Uint8Array(EGRESS_HEADER_SIZE);
    writeEgressTemplate(template, 0, {
      sourceMac: link.mac,
      sourceAddress: link.ipv4!,
      sourcePort: localPort(socketFd),
      group: output.group,
      port: output.port,
      ttl: output.ttl,
      dscp: 0,
    });
    const fd = openRawEgressSocket(ifindex, output.interface, qdiscBypass);
    return {
      socketFd,
      raw: { fd, spec: { template: Buffer.from(template).toString('hex'), mtu: link.mtu } },
    };
  } catch (err) {
    closeFd(socketFd);
    throw err;
  }
}

export function closeOutputSockets(sockets: OutputSockets): void {
  closeFd(sockets.socketFd);
  // An AF_PACKET socket's last close waits for the kernel (~7 ms): not on the event loop.
  if (sockets.raw) closeFdInBackground(sockets.raw.fd);
}

const OUTPUT_SEND_BUFFER = 4 * 1024 * 1024;

/**
 * Opens the egress socket of one output: UDP, bound to its device, connected to the destination.
 * For multicast it also selects the interface, sets the TTL and turns off loopback (which would
 * otherwise clone every copy back to local listeners). The send buffer is raised with the
 * privileged option so a burst of a whole batch fits.
 */
function openOutputSocket(output: Output, ifindex: number | undefined): number {
  const fd = openUdpSocket(`output ${describeOutput(output)}`);
  try {
    if (output.interface !== undefined) bindToDevice(fd, output.interface);
    if (output.multicast) {
      if (ifindex !== undefined) setMulticastInterface(fd, ifindex);
      setMulticastTtl(fd, output.ttl);
      setMulticastLoop(fd, false);
    } else {
      setIntOption(fd, IPPROTO_IP, IP_TTL, output.ttl, `IP_TTL ${output.ttl}`);
    }
    setBufferSize(fd, 'send', OUTPUT_SEND_BUFFER, true);
    connectIpv4(fd, output.group, output.port);
    return fd;
  } catch (err) {
    closeFd(fd);
    throw err;
  }
}
