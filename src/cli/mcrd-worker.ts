import { Command } from 'commander';
import { Worker } from '../worker/worker.js';
import { createLogger } from './logger.js';

// Entry of a worker process, started by mcrd with its channel as fd 3. Not for operators.
const WORKER_CHANNEL_FD = 3;

const options = new Command('mcrd-worker')
  .requiredOption('--worker-id <n>')
  .option('--log-level <level>', 'log level', 'info')
  .parse()
  .opts<{ workerId: string; logLevel: string }>();

const log = createLogger(options.logLevel, { worker: Number(options.workerId) });
// Ctrl-C in a terminal signals the whole process group; the supervisor decides when workers stop.
process.on('SIGINT', () => undefined);
process.on('SIGTERM', () => worker.stop(0));
const worker = new Worker(WORKER_CHANNEL_FD, log);
