// How the live views (mcrctl top, mcrctl stats --watch) write rates, sizes and ages: short,
// fixed-precision strings that keep a column's width steady from one refresh to the next.

const SI_PREFIXES = ['', 'k', 'M', 'G', 'T', 'P'];

/**
 * 3 significant digits with an SI prefix: 0 → "0", 0.5 → "0.50", 12.34 → "12.3", 999.7 →
 * "1.00k", 1234567 → "1.23M". Below 0.005 a rate prints as "0".
 */
export function formatSi(value: number): string {
  if (!Number.isFinite(value)) return '-';
  const sign = value < 0 ? '-' : '';
  let scaled = Math.abs(value);
  if (scaled < 0.005) return '0';
  let prefix = 0;
  while (scaled >= 1000 && prefix < SI_PREFIXES.length - 1) {
    scaled /= 1000;
    prefix++;
  }
  // Rounding to 3 digits may carry into the next prefix (999.7 → "1000"): take that prefix then.
  if (Number(scaled.toPrecision(3)) >= 1000 && prefix < SI_PREFIXES.length - 1) {
    scaled /= 1000;
    prefix++;
  }
  const rounded = Number(scaled.toPrecision(3));
  const decimals = rounded < 10 ? 2 : rounded < 100 ? 1 : 0;
  return `${sign}${rounded.toFixed(decimals)}${SI_PREFIXES[prefix]}`;
}

/** Packets (or frames) per second: "0", "950", "12.3k". */
export function formatPps(perSecond: number): string {
  return formatSi(perSecond);
}

/** Bits per second with an SI prefix: "0", "960 bit/s", "1.20 Mbit/s", "9.41 Gbit/s". */
export function formatBitRate(bitsPerSecond: number): string {
  const text = formatSi(bitsPerSecond);
  if (text === '0' || text === '-') return text;
  return /[kMGTP]$/.test(text) ? `${text.slice(0, -1)} ${text.slice(-1)}bit/s` : `${text} bit/s`;
}

/** Memory in binary units: "812K", "52.3M", "1.20G". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'K', 'M', 'G', 'T'];
  let scaled = Math.max(0, bytes);
  let unit = 0;
  while (scaled >= 1024 && unit < units.length - 1) {
    scaled /= 1024;
    unit++;
  }
  const decimals = unit === 0 || scaled >= 100 ? 0 : scaled >= 10 ? 1 : 2;
  return `${scaled.toFixed(decimals)}${units[unit]}`;
}

/**
 * How long ago, in the largest unit that keeps it short: null → "never", 0.34 → "0.3s",
 * 42 → "42s", 750 → "12m", 7200 → "2h", 200000 → "2d". Tenths only under 10 s, where they tell
 * a flowing stream (0.0s-0.9s) from one that just stopped.
 */
export function formatAge(seconds: number | null): string {
  if (seconds === null || !Number.isFinite(seconds)) return 'never';
  const s = Math.max(0, seconds);
  if (s < 10) return `${(Math.floor(s * 10) / 10).toFixed(1)}s`;
  if (s < 60) return `${Math.floor(s)}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** An uptime: "45s", "12m05s", "3h07m", "2d04h". */
export function formatUptime(seconds: number): string {
  const s = Math.max(0, Math.floor(seconds));
  const two = (n: number): string => String(n).padStart(2, '0');
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m${two(s % 60)}s`;
  if (s < 86400) return `${Math.floor(s / 3600)}h${two(Math.floor(s / 60) % 60)}m`;
  return `${Math.floor(s / 86400)}d${two(Math.floor(s / 3600) % 24)}h`;
}
