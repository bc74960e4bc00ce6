import { Command } from 'commander';
import { pinToCpu } from '../sys/affinity.js';
import { dropPrivileges } from '../sys/privileges.js';
import { Worker } from '../worker/worker.js';
import { createLogger } from './logger.js';

// Entry of a worker process, started by mcrd (as root) with its channel as fd 3. Not for operators.
const WORKER_CHANNEL_FD = 3;

const options = new Command('mcrd-worker')
  .requiredOption('--worker-id <n>')
  .requiredOption('--cpu <n>', 'CPU to pin this worker to')
  .requiredOption('--user <name>')
  .requiredOption('--uid <n>')
  .requiredOption('--gid <n>')
  .option('--log-level <level>', 'log level', 'info')
  .parse()
  .opts<{ workerId: string; cpu: string; user: string; uid: string; gid: string; logLevel: string }>();

const log = createLogger(options.logLevel, { worker: Number(options.workerId) });
try {
  pinToCpu(Number(options.cpu));
  // Before the first packet, and for good: a worker only ever uses descriptors it is handed.
  dropPrivileges({ name: options.user, uid: Number(options.uid), gid: Number(options.gid) });
} catch (err) {
  log.fatal({ err }, 'worker could not pin itself or drop its privileges');
  process.exit(78); // EX_CONFIG: restarting would not help
}
// Ctrl-C in a terminal signals the whole process group; the supervisor decides when workers stop.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => worker.stop(0));
const worker = new Worker(WORKER_CHANNEL_FD, log);
log.info({ cpu: Number(options.cpu), user: options.user }, 'worker running unprivileged');
