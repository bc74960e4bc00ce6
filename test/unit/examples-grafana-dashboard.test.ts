import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import type { StatsView } from '../../src/protocol/control-api.js';
import { MetricsExposition } from '../../src/supervisor/metrics-exposition.js';
import { parseExposition } from '../helpers/exposition.js';
import { ROOT } from '../helpers/topology.js';

// The shipped dashboard against the exposition, without Prometheus (the e2e test metrics.test.ts
// runs every query against a real one): every series it names is one mcrd serves, and every
// panel is on Prometheus with the dashboard's variables.

interface Panel {
  type: string;
  title: string;
  datasource?: { type: string; uid: string };
  targets?: { expr?: string; refId: string }[];
}

const dashboard = JSON.parse(readFileSync(join(ROOT, 'examples/grafana-mcr.json'), 'utf8')) as {
  uid: string;
  title: string;
  panels: Panel[];
  templating: { list: { name: string }[] };
};

const EMPTY: StatsView = { time: '', rateInterval: 0, rules: [], workers: [], interfaces: [] };

test('every series the dashboard queries is one mcrd exposes', async () => {
  const text = await new MetricsExposition({ stats: async () => EMPTY, version: '0.1.0' }).render();
  const exposed = new Set(parseExposition(text).families.keys());
  const panels = dashboard.panels.filter((p) => p.type !== 'row');
  assert.ok(panels.length >= 15);
  const named = new Set<string>();
  for (const panel of panels) {
    assert.equal(panel.datasource?.uid, '${datasource}', `${panel.title} uses the chosen data source`);
    assert.ok(panel.targets && panel.targets.length > 0, `${panel.title} has queries`);
    for (const target of panel.targets) {
      assert.ok(target.expr, `${panel.title} ${target.refId} has an expression`);
      for (const [name] of target.expr.matchAll(/\b(?:mcr|process|nodejs)_[a-z0-9_]+/g)) named.add(name);
      for (const [variable] of target.expr.matchAll(/\$\{?[a-z_]+/g))
        assert.ok(
          ['$instance', '$rule', '$__rate_interval', '$__range'].includes(variable.replace('{', '')),
          `${panel.title}: ${variable} is a variable the dashboard or Grafana defines`,
        );
    }
  }
  const missing = [...named].filter((n) => !exposed.has(n));
  assert.deepEqual(missing, [], 'names the exposition does not have');
  assert.ok(named.size >= 20, `${named.size} series`);
  assert.deepEqual(
    dashboard.templating.list.map((v) => v.name),
    ['datasource', 'instance', 'rule'],
  );
});
