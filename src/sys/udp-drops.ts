import { readFileSync, readlinkSync } from 'node:fs';

/**
 * Datagrams the kernel dropped for one UDP socket (its receive buffer was full, or the packet
 * failed a check), read from the `drops` column of /proc/net/udp for the socket's inode. This is
 * per socket, unlike the namespace-wide RcvbufErrors of /proc/net/snmp, and costs nothing on
 * the receive path. Undefined when it cannot be read (no /proc, socket not found).
 */
export function udpSocketDrops(fd: number): number | undefined {
  try {
    const inode = /^socket:\[(\d+)\]$/.exec(readlinkSync(`/proc/self/fd/${fd}`))?.[1];
    if (inode === undefined) return undefined;
    // /proc/net/udp is the table of the reader's network namespace, which is the socket's.
    const lines = readFileSync('/proc/net/udp', 'utf8').split('\n');
    // Columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
    for (let i = 1; i < lines.length; i++) {
      const fields = lines[i]!.trim().split(/\s+/);
      if (fields[9] === inode && fields[12] !== undefined) return Number(fields[12]);
    }
    return undefined;
  } catch {
    return undefined;
  }
}
