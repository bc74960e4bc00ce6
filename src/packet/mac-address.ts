// Ethernet (MAC) addresses as 6-byte arrays, and their text form "01:00:5e:01:01:01". Used at the
// edges (command lines, reports); nothing here runs per packet.

export const MAC_BYTES = 6;

/**
 * Parses six two-digit hex bytes separated by colons (or dashes), either case. Returns the bytes,
 * or undefined if `text` is not exactly such an address.
 */
export function parseMac(text: string): Uint8Array | undefined {
  const m =
    /^([0-9a-f]{2})([:-])([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})\2([0-9a-f]{2})$/i.exec(
      text,
    );
  if (!m) return undefined;
  return Uint8Array.from([m[1], m[3], m[4], m[5], m[6], m[7]], (part) => Number.parseInt(part!, 16));
}

/** "01:00:5e:01:01:01": lower-case hex, colons. */
export function macToString(mac: Uint8Array): string {
  return Array.from(mac, (b) => b.toString(16).padStart(2, '0')).join(':');
}
