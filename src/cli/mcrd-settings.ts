import type { ConfigSettings } from '../supervisor/config-file.js';

/** mcrd's settings once the command line, the config file and the defaults are merged. */
export interface DaemonSettings {
  socket: string | undefined;
  socketMode: number;
  socketGroup: string | undefined;
  workers: number | undefined;
  fanout: 'hash' | 'cpu';
  user: string;
  ringSize: number;
  batchSize: number;
  batchBudget: number;
  coalesce: number;
  workerNice: number;
  qdiscBypass: boolean;
  logLevel: string;
  logFormat: 'json' | 'text';
  stateDirectory: string | undefined;
  /** HOST:PORT of the Prometheus endpoint; undefined: none. */
  metricsListen: string | undefined;
}

/** Where a setting's value came from, as commander reports it for an option. */
export type ValueSource = 'cli' | 'env' | 'default' | 'config' | 'implied' | undefined;

/** Each setting and the config file's name for it (ConfigSettings). */
const FROM_FILE: { [K in keyof DaemonSettings]: keyof ConfigSettings } = {
  socket: 'socketPath',
  socketMode: 'socketMode',
  socketGroup: 'socketGroup',
  workers: 'workers',
  fanout: 'fanout',
  user: 'user',
  ringSize: 'ringSizeMiB',
  batchSize: 'batchSize',
  batchBudget: 'batchBudget',
  coalesce: 'coalesceUs',
  workerNice: 'workerNice',
  qdiscBypass: 'qdiscBypass',
  logLevel: 'logLevel',
  logFormat: 'logFormat',
  stateDirectory: 'stateDirectory',
  metricsListen: 'metricsListen',
};

/** The config file's key for a setting, as operators write it, for messages. */
const FILE_KEYS: { [K in keyof DaemonSettings]: string } = {
  socket: 'socket.path',
  socketMode: 'socket.mode',
  socketGroup: 'socket.group',
  workers: 'workers',
  fanout: 'fanout',
  user: 'user',
  ringSize: 'ring_size_mib',
  batchSize: 'batch_size',
  batchBudget: 'batch_budget',
  coalesce: 'coalesce_us',
  workerNice: 'worker_nice',
  qdiscBypass: 'qdisc_bypass',
  logLevel: 'log.level',
  logFormat: 'log.format',
  stateDirectory: 'state_directory',
  metricsListen: 'metrics.listen',
};

/**
 * The settings in force: a value given on the command line wins, then the config file's, then
 * the default. `flags` holds every option's value (defaults included) and `source` says where
 * commander got each.
 */
export function mergeSettings(
  flags: DaemonSettings,
  source: (key: keyof DaemonSettings) => ValueSource,
  file: ConfigSettings | undefined,
): DaemonSettings {
  const merged = { ...flags };
  for (const key of Object.keys(FROM_FILE) as (keyof DaemonSettings)[]) {
    const fromFile = file?.[FROM_FILE[key]];
    if (fromFile !== undefined && source(key) !== 'cli') Object.assign(merged, { [key]: fromFile });
  }
  return merged;
}

/**
 * What changed between two merges that only a restart of mcrd applies, in words ("workers 2 →
 * 4"). The log level is not among them: it changes at once.
 */
export function restartNeeded(running: DaemonSettings, next: DaemonSettings): string[] {
  const changed: string[] = [];
  for (const key of Object.keys(FROM_FILE) as (keyof DaemonSettings)[]) {
    if (key === 'logLevel') continue;
    if (running[key] !== next[key]) {
      const show = (v: unknown): string =>
        v === undefined ? 'unset' : key === 'socketMode' ? `0${(v as number).toString(8)}` : String(v);
      changed.push(`${FILE_KEYS[key]} ${show(running[key])} → ${show(next[key])}`);
    }
  }
  return changed;
}
