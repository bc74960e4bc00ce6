// IPv4 addresses as unsigned 32-bit numbers in network order: 239.1.1.1 === 0xef010101.
// A plain number keeps rule keys and parsed fields allocation-free; these helpers convert
// at the edges (config, CLI, logs) and may allocate.

/** Formats an unsigned 32-bit address as a dotted quad. */
export function ipv4ToString(n: number): string {
  const a = n >>> 0;
  return `${a >>> 24}.${(a >>> 16) & 0xff}.${(a >>> 8) & 0xff}.${a & 0xff}`;
}

/**
 * Parses a strict dotted quad: exactly four decimal parts 0-255, no signs, no spaces, and no
 * leading zeros (other tools read "010" as octal, so accepting it would be ambiguous).
 * Returns the unsigned 32-bit address, or undefined if `s` is not exactly such a quad.
 */
export function parseIpv4(s: string): number | undefined {
  // Longest valid form is "255.255.255.255"; checking first bounds the loop below.
  if (s.length < 7 || s.length > 15) return undefined;
  let result = 0;
  let parts = 0;
  let value = 0;
  let digits = 0;
  let firstDigit = 0;
  for (let i = 0; i <= s.length; i++) {
    const c = i < s.length ? s.charCodeAt(i) : 0x2e; // treat the end as a final '.'
    if (c === 0x2e) {
      if (digits === 0 || (digits > 1 && firstDigit === 0) || value > 255) return undefined;
      result = result * 256 + value;
      parts++;
      value = 0;
      digits = 0;
    } else if (c >= 0x30 && c <= 0x39) {
      if (digits === 0) firstDigit = c - 0x30;
      digits++;
      if (digits > 3) return undefined;
      value = value * 10 + (c - 0x30);
    } else {
      return undefined;
    }
  }
  return parts === 4 ? result >>> 0 : undefined;
}

/** True for 224.0.0.0/4 (class D). */
export function isMulticastIpv4(n: number): boolean {
  return n >>> 28 === 0xe;
}

/**
 * `address` + `offset` as an unsigned 32-bit address, counting through octet boundaries
 * (239.1.1.255 + 1 is 239.1.2.0). Undefined when the result would leave 0.0.0.0-255.255.255.255
 * instead of wrapping around. `offset` is an integer (negative counts down).
 */
export function offsetIpv4(address: number, offset: number): number | undefined {
  const n = (address >>> 0) + offset;
  return Number.isInteger(n) && n >= 0 && n <= 0xffffffff ? n : undefined;
}

/**
 * `count` consecutive addresses from `first` as text: "239.1.1.1-239.1.1.100", or just the
 * address when there is one. The caller has checked that the range stays within 32 bits.
 */
export function ipv4RangeToString(first: number, count: number): string {
  const start = ipv4ToString(first);
  return count <= 1 ? start : `${start}-${ipv4ToString((first >>> 0) + count - 1)}`;
}
