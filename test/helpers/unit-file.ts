import { readFileSync } from 'node:fs';

/**
 * A systemd unit file read as systemd reads the parts tests need: sections of `Key=value` lines,
 * comments and blank lines skipped, a key given more than once keeping every value in order.
 * (No line continuations or specifiers: mcr's unit uses neither.)
 */
export class UnitFile {
  readonly sections = new Map<string, Map<string, string[]>>();

  constructor(readonly path: string) {
    let section: Map<string, string[]> | undefined;
    for (const raw of readFileSync(path, 'utf8').split('\n')) {
      const line = raw.trim();
      if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
      const header = /^\[(.+)\]$/.exec(line);
      if (header) {
        section = new Map();
        this.sections.set(header[1]!, section);
        continue;
      }
      const at = line.indexOf('=');
      if (!section || at < 0) throw new Error(`${path}: cannot read the line "${line}"`);
      const key = line.slice(0, at).trim();
      section.set(key, [...(section.get(key) ?? []), line.slice(at + 1).trim()]);
    }
  }

  /** Every value of a key, in order (empty when the key is absent). */
  all(section: string, key: string): string[] {
    return this.sections.get(section)?.get(key) ?? [];
  }

  /** The last value of a key (the one in force for single-valued settings). */
  get(section: string, key: string): string | undefined {
    return this.all(section, key).at(-1);
  }

  /** ExecStart= (or another command) split into its words; mcr's unit quotes none. */
  command(key = 'ExecStart'): string[] {
    const value = this.get('Service', key);
    if (value === undefined) throw new Error(`${this.path} has no ${key}=`);
    return value.split(/\s+/);
  }

  /** The capabilities of a space-separated capability setting, e.g. AmbientCapabilities. */
  capabilities(key: 'AmbientCapabilities' | 'CapabilityBoundingSet'): string[] {
    return this.all('Service', key).flatMap((v) => v.split(/\s+/).filter((c) => c !== ''));
  }
}

/** CAP_NET_RAW → net_raw, as setpriv names capabilities. */
export function setprivCapability(name: string): string {
  return name.replace(/^CAP_/, '').toLowerCase();
}
