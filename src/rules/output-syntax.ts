import type { OutputMode, OutputRequest } from './rule.js';
import { RuleError } from './rule-error.js';

/**
 * Parses the compact output list operators type: "GROUP:PORT[:INTERFACE[:MODE]][,...]", e.g.
 * "239.2.2.2:6000:eth1,10.0.9.7:7000:eth2:socket". Values are checked later by validateRule; this
 * only splits, so each error names the item's position.
 */
export function parseOutputList(text: string): OutputRequest[] {
  const items = text.split(',').map((s) => s.trim());
  return items.map((item, i) => {
    const parts = item.split(':');
    if (item === '' || parts.length < 2 || parts.length > 4) {
      throw new RuleError(
        'E_INVALID_OUTPUT',
        `outputs[${i}]`,
        item,
        `outputs[${i}] ${JSON.stringify(item)} is not GROUP:PORT[:INTERFACE[:MODE]] (e.g. 239.2.2.2:6000:eth1 or 239.2.2.2:6000:eth1:raw)`,
      );
    }
    const [group, portText, iface, mode] = parts as [string, string, string | undefined, string | undefined];
    if (!/^\d{1,5}$/.test(portText)) {
      throw new RuleError(
        'E_INVALID_PORT',
        `outputs[${i}].port`,
        portText,
        `outputs[${i}].port ${JSON.stringify(portText)} is not a UDP port (1-65535)`,
      );
    }
    const port = Number(portText);
    return {
      group,
      port,
      interface: iface === undefined || iface === '' ? undefined : iface,
      ...(mode === undefined ? {} : { mode: mode as OutputMode }),
    };
  });
}
