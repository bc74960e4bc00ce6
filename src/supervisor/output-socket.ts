import type { Output } from '../rules/rule.js';
import {
  bindToDevice,
  closeFd,
  connectIpv4,
  openUdpSocket,
  setBufferSize,
  setIntOption,
  setMulticastInterface,
  setMulticastLoop,
  setMulticastTtl,
} from '../sys/socket.js';
import { IPPROTO_IP, IP_TTL } from '../sys/constants.js';
import { describeOutput } from '../rules/rule.js';

const OUTPUT_SEND_BUFFER = 4 * 1024 * 1024;

/**
 * Opens the egress socket of one output: UDP, bound to its device, connected to the destination.
 * For multicast it also selects the interface, sets the TTL and turns off loopback (which would
 * otherwise clone every copy back to local listeners). The send buffer is raised with the
 * privileged option so a burst of a whole batch fits.
 */
export function openOutputSocket(output: Output, ifindex: number | undefined): number {
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
