import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { sleep, type RunningProcess } from './topology.js';

/** Where processes run: a namespace of some test hosts (Topology). */
export interface NamespaceHosts {
  start(ns: string, command: string, args: string[]): RunningProcess;
}

/** Node's fetch, run inside a namespace: its loopback is not the test's. */
const FETCH = `fetch(process.argv[1], { signal: AbortSignal.timeout(5000) })
  .then(async (r) => process.stdout.write(JSON.stringify({ status: r.status, type: r.headers.get('content-type'), body: await r.text() })))
  .catch((e) => { process.stderr.write(String(e?.cause?.code ?? e)); process.exit(1); });`;

export interface HttpAnswer {
  status: number;
  type: string | null;
  body: string;
}

/** GET `url` from inside namespace `ns` (loopback addresses there are the namespace's). */
export function httpGet(ns: string, url: string): Promise<HttpAnswer> {
  return new Promise((resolve, reject) => {
    const child = spawn('ip', ['netns', 'exec', ns, process.execPath, '-e', FETCH, url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.setEncoding('utf8').on('data', (d: string) => (out += d));
    child.stderr.setEncoding('utf8').on('data', (d: string) => (err += d));
    child.once('error', reject);
    child.once('exit', (code) =>
      code === 0
        ? resolve(JSON.parse(out) as HttpAnswer)
        : reject(new Error(`GET ${url} in ${ns}: ${err.trim()}`)),
    );
  });
}

/** GET until the answer is 200 (a server that is still starting refuses or answers 503). */
export async function httpGetWhenReady(ns: string, url: string, timeoutMs = 15000): Promise<HttpAnswer> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const answer = await httpGet(ns, url).catch((e: Error) => e);
    if (!(answer instanceof Error) && answer.status === 200) return answer;
    if (Date.now() > deadline)
      throw new Error(
        `GET ${url} in ${ns} not ready: ${answer instanceof Error ? answer.message : answer.status}`,
      );
    await sleep(200);
  }
}

export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/**
 * A real Prometheus server (Debian's prometheus) in a namespace, on loopback, with its own
 * temporary directory for config and data, scraping `targets` every second. stop() ends it by
 * its pid and removes the directory.
 */
export class PrometheusServer {
  readonly url: string;
  private readonly ns: string;
  private readonly dir: string;
  private readonly process: RunningProcess;

  private constructor(ns: string, url: string, dir: string, process: RunningProcess) {
    this.ns = ns;
    this.url = url;
    this.dir = dir;
    this.process = process;
  }

  /**
   * `port` must be free in `ns`: the namespaces tests make are new, so nothing else listens
   * there but what the test started.
   */
  static async start(
    hosts: NamespaceHosts,
    ns: string,
    targets: string[],
    port: number,
  ): Promise<PrometheusServer> {
    const dir = mkdtempSync(join(tmpdir(), 'mcr-prometheus-'));
    try {
      const config = join(dir, 'prometheus.yml');
      writeFileSync(
        config,
        [
          'global:',
          '  scrape_interval: 1s',
          '  scrape_timeout: 1s',
          '  evaluation_interval: 1s',
          'scrape_configs:',
          '  - job_name: mcr',
          '    static_configs:',
          `      - targets: [${targets.map((t) => `'${t}'`).join(', ')}]`,
          '',
        ].join('\n'),
      );
      const listen = `127.0.0.1:${port}`;
      const running = hosts.start(ns, 'prometheus', [
        `--config.file=${config}`,
        `--storage.tsdb.path=${join(dir, 'data')}`,
        `--web.listen-address=${listen}`,
        '--log.level=warn',
      ]);
      const server = new PrometheusServer(ns, `http://${listen}`, dir, running);
      await httpGetWhenReady(ns, `${server.url}/-/ready`, 20000).catch((err: Error) => {
        throw new Error(`${err.message}\nprometheus said:\n${running.stderr}`);
      });
      return server;
    } catch (err) {
      rmSync(dir, { recursive: true, force: true });
      throw err;
    }
  }

  /** An instant query through the HTTP API; throws on an error answer. */
  async query(expr: string): Promise<PromSample[]> {
    const answer = await httpGet(this.ns, `${this.url}/api/v1/query?query=${encodeURIComponent(expr)}`);
    const parsed = JSON.parse(answer.body) as {
      status: string;
      error?: string;
      data?: { resultType: string; result: PromSample[] | [number, string] };
    };
    if (parsed.status !== 'success') throw new Error(`query ${expr}: ${parsed.error ?? answer.body}`);
    const data = parsed.data!;
    // A scalar (e.g. time()) is one value without labels.
    return data.resultType === 'vector' || data.resultType === 'matrix'
      ? (data.result as PromSample[])
      : [{ metric: {}, value: data.result as [number, string] }];
  }

  /** Targets as Prometheus sees them (health, last error). */
  async targets(): Promise<{ health: string; lastError: string; scrapeUrl: string }[]> {
    const answer = await httpGet(this.ns, `${this.url}/api/v1/targets`);
    return (
      JSON.parse(answer.body) as {
        data: { activeTargets: { health: string; lastError: string; scrapeUrl: string }[] };
      }
    ).data.activeTargets;
  }

  /** SIGTERM to its pid, wait for the exit, remove its directory. */
  async stop(): Promise<void> {
    if (this.process.child.exitCode === null && this.process.child.signalCode === null) {
      process.kill(this.process.child.pid!, 'SIGTERM');
      await Promise.race([this.process.exited, sleep(10000)]);
      if (this.process.child.exitCode === null && this.process.child.signalCode === null)
        process.kill(this.process.child.pid!, 'SIGKILL');
    }
    rmSync(this.dir, { recursive: true, force: true });
  }
}
