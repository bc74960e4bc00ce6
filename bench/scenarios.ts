// What the relay is asked to do: how many input streams, and where each one goes.

export interface Scenario {
  key: string;
  name: string;
  /** Input streams, one rule each: groups 239.1.1.1, .2, … on port 5000. */
  streams: number;
  /** Output links from the relay to the receiver (out0… ↔ eth0…). */
  outputLinks: number;
  /** Outputs per input stream: what one input packet becomes. */
  fanout: number;
  /** Output k (0-based) of stream s (1-based): group and link; port 6000. */
  output(stream: number, k: number): { group: string; link: number };
}

export const SCENARIOS: Record<string, Scenario> = {
  '1to1': {
    key: '1to1',
    name: '1:1',
    streams: 1,
    outputLinks: 1,
    fanout: 1,
    output: () => ({ group: '239.2.2.1', link: 0 }),
  },
  '1to5-links': {
    key: '1to5-links',
    name: '1:5, five links',
    streams: 1,
    outputLinks: 5,
    fanout: 5,
    output: (_s, k) => ({ group: `239.2.2.${k + 1}`, link: k }),
  },
  '1to5-groups': {
    key: '1to5-groups',
    name: '1:5, five groups on one link',
    streams: 1,
    outputLinks: 1,
    fanout: 5,
    output: (_s, k) => ({ group: `239.2.2.${k + 1}`, link: 0 }),
  },
  '100-streams': {
    key: '100-streams',
    name: '100 streams, 1:1 each',
    streams: 100,
    outputLinks: 1,
    fanout: 1,
    output: (s) => ({ group: `239.2.2.${s}`, link: 0 }),
  },
};

/** Scenarios from a comma-separated list of their keys (a bench's --scenarios). */
export function parseScenarioList(text: string): Scenario[] {
  return text.split(',').map((key) => {
    const scenario = SCENARIOS[key];
    if (!scenario) throw new Error(`unknown scenario "${key}": one of ${Object.keys(SCENARIOS).join(', ')}`);
    return scenario;
  });
}

export function inputGroup(stream: number): string {
  return `239.1.1.${stream}`;
}

export const INPUT_PORT = 5000;
export const OUTPUT_PORT = 6000;
