import { OUTPUT_MODES, type OutputMode, type OutputRequest } from './rule.js';
import { RuleError } from './rule-error.js';

const SYNTAX = 'GROUP:PORT[:INTERFACE[:MODE]][:ttl=N|:fixed-ttl=N][:dscp=D]';
const EXAMPLES = 'e.g. 239.2.2.2:6000:eth1, 239.2.2.2:6000:eth1:raw:dscp=ef or 10.0.9.7:7000::fixed-ttl=8';

/**
 * Parses the compact output list operators type: comma-separated
 * "GROUP:PORT[:INTERFACE[:MODE]][:ttl=N|:fixed-ttl=N][:dscp=D]", e.g.
 * "239.2.2.2:6000:eth1,10.0.9.7:7000:eth2:socket:dscp=ef". Positional parts come first; options
 * are key=value. Values are checked later by validateRule; this only splits, so each error names
 * the item's position.
 */
export function parseOutputList(text: string): OutputRequest[] {
  const items = text.split(',').map((s) => s.trim());
  return items.map((item, i) => parseOutput(item, `outputs[${i}]`));
}

function parseOutput(item: string, field: string): OutputRequest {
  const parts = item.split(':');
  const positional: string[] = [];
  const options = new Map<string, string>();
  for (const part of parts) {
    const eq = part.indexOf('=');
    if (eq < 0) {
      if (options.size > 0) throw syntaxError(field, item, `"${part}" follows an option`);
      positional.push(part);
    } else {
      const key = part.slice(0, eq);
      if (options.has(key)) throw syntaxError(field, item, `${key} is given twice`);
      options.set(key, part.slice(eq + 1));
    }
  }
  if (item === '' || positional.length < 2 || positional.length > 4) throw syntaxError(field, item);
  const [group, portText, iface, mode] = positional as [
    string,
    string,
    string | undefined,
    string | undefined,
  ];
  const request: OutputRequest = {
    group,
    port: parseNumber(portText, `${field}.port`, 'E_INVALID_PORT', 'is not a UDP port (1-65535)'),
    interface: iface === undefined || iface === '' ? undefined : iface,
  };
  if (mode !== undefined && mode !== '') {
    if (!(OUTPUT_MODES as readonly string[]).includes(mode)) {
      throw new RuleError(
        'E_INVALID_OUTPUT',
        `${field}.mode`,
        mode,
        `${field}.mode must be auto, raw, socket or xdp, got ${JSON.stringify(mode)}`,
      );
    }
    request.mode = mode as OutputMode;
  }
  for (const [key, value] of options) {
    switch (key) {
      case 'ttl':
        request.ttl = parseNumber(value, `${field}.ttl`, 'E_INVALID_TTL', 'must be 1-255');
        break;
      case 'fixed-ttl':
        request.fixedTtl = parseNumber(value, `${field}.fixed-ttl`, 'E_INVALID_TTL', 'must be 1-255');
        break;
      case 'dscp':
        request.dscp = value;
        break;
      default:
        throw new RuleError(
          'E_INVALID_OUTPUT',
          `${field}.${key}`,
          item,
          `${field}.${key}: unknown option ${key} in ${JSON.stringify(item)} (options are ttl=N, fixed-ttl=N, dscp=D)`,
        );
    }
  }
  return request;
}

/** Digits only, so "1e3" or "0x10" are not silently read as numbers; the range is validateRule's. */
function parseNumber(
  text: string,
  field: string,
  code: 'E_INVALID_PORT' | 'E_INVALID_TTL',
  expected: string,
): number {
  if (!/^\d{1,5}$/.test(text)) {
    throw new RuleError(code, field, text, `${field} ${JSON.stringify(text)} ${expected}`);
  }
  return Number(text);
}

function syntaxError(field: string, item: string, detail?: string): RuleError {
  return new RuleError(
    'E_INVALID_OUTPUT',
    field,
    item,
    `${field} ${JSON.stringify(item)} is not ${SYNTAX}${detail ? ` (${detail})` : ''} (${EXAMPLES})`,
  );
}
