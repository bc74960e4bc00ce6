// Micro-benchmark: what the event stream costs mcrd's supervisor, whose event loop also keeps
// the workers' heartbeats. Two costs recur: the flow watch's look at every rule's input counter
// each second, and publishing an event (one log line, one notification line per subscriber).
// Both run here on the real classes, with a logger writing to /dev/null and subscribers on real
// control streams whose sink takes every line.
//
// Usage: node dist/bench/events-cost.js [--rules N] [--events N] [--subscribers N]
// No root, no network: it prints figures.
import { openSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import type { EventRule } from '../src/protocol/control-api.js';
import { ControlStream } from '../src/supervisor/control-stream.js';
import { EventBus } from '../src/supervisor/event-bus.js';
import { FlowWatch } from '../src/supervisor/flow-watch.js';

function option(name: string, fallback: number): number {
  const at = process.argv.indexOf(`--${name}`);
  return at < 0 ? fallback : Number(process.argv[at + 1]);
}

const rules = option('rules', 1000);
const events = option('events', 20000);
const subscribers = option('subscribers', 16);

const log = pino({ level: 'info' }, pino.destination({ dest: openSync('/dev/null', 'w'), sync: true }));

function rule(id: string): EventRule {
  return {
    id,
    name: null,
    input: 'in0 239.1.1.1:5000',
    outputs: ['239.2.2.2:6000:out0'],
    origin: 'runtime',
    rtp: false,
    state: 'active',
    reason: null,
    previousState: null,
  };
}

// The flow watch: every rule flowing (its counter moves each look), read from a map as the
// supervisor's counter sample gives it.
{
  const bus = new EventBus(log);
  let now = 0;
  const watch = new FlowWatch(bus, () => now);
  const ids = Array.from({ length: rules }, (_, i) => `r-${i.toString(16).padStart(12, '0')}`);
  const sample = new Map(ids.map((id) => [id, { packetsIn: 0 }]));
  const looks = 200;
  let spent = 0;
  for (let look = 0; look < looks; look++) {
    for (const counters of sample.values()) counters.packetsIn += 100;
    now += 1000;
    const started = performance.now();
    watch.sample(
      ids,
      (id) => sample.get(id)?.packetsIn ?? 0,
      (id) => rule(id),
    );
    spent += performance.now() - started;
  }
  console.log(`flow watch: ${rules} rules: ${(spent / looks).toFixed(3)} ms per look (one look a second)`);
}

// Publishing: one log line and one notification per subscriber that keeps up.
{
  const bus = new EventBus(log);
  let lines = 0;
  for (let i = 0; i < subscribers; i++) {
    const stream = new ControlStream(i + 1, 'event', {
      canPush: () => true,
      push: () => void lines++,
      ended: () => undefined,
    });
    stream.release();
    bus.subscribe(stream, {});
  }
  const started = performance.now();
  for (let n = 0; n < events; n++) {
    bus.publish({
      type: 'rule.state',
      rule: rule(`r-${n}`),
      message: `r-${n} active -> degraded (out0 is down)`,
    });
  }
  const ms = performance.now() - started;
  console.log(
    `publish: ${events} events, ${subscribers} subscribers: ${((ms * 1000) / events).toFixed(1)} µs per event (${lines} notification lines)`,
  );
}
