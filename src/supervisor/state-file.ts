import {
  closeSync,
  existsSync,
  fsyncSync,
  openSync,
  readdirSync,
  renameSync,
  unlinkSync,
  writeSync,
} from 'node:fs';
import { join } from 'node:path';
import type { Rule, RuleRequest } from '../rules/rule.js';
import { readConfigFile, type ConfigProblem } from './config-file.js';
import { renderRules } from './config-render.js';

/** The runtime rules (added with mcrctl) in the state directory, in the config file's format. */
export const STATE_FILE = 'runtime-rules.json5';
const TEMPORARY_PREFIX = `${STATE_FILE}.new-`;

export type StateRead =
  | { kind: 'absent' }
  | { kind: 'rules'; rules: RuleRequest[] }
  /** The file could not be used; it was moved aside to `keptAs` so nothing is lost. */
  | { kind: 'unusable'; problems: ConfigProblem[]; keptAs: string };

/**
 * Writes the runtime rules so that a crash at any moment leaves either the previous file or the
 * new one, whole: a temporary file in the same directory, written and fsynced, renamed over the
 * old one (atomic on one file system), then the directory fsynced so the rename survives a power
 * loss.
 */
export function writeRuntimeRules(directory: string, rules: readonly Rule[]): void {
  const text = renderRules(
    rules,
    'Rules added at runtime (mcrctl add), kept by mcrd across restarts. mcrd rewrites this file;\nput rules you maintain in the config file instead.',
  );
  const temporary = join(directory, `${TEMPORARY_PREFIX}${process.pid}`);
  const fd = openSync(temporary, 'w', 0o640);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(temporary, join(directory, STATE_FILE));
  const dir = openSync(directory, 'r');
  try {
    fsyncSync(dir);
  } finally {
    closeSync(dir);
  }
}

/**
 * Reads the runtime rules. Temporary files a crash left behind are removed (the rename never
 * happened, so the state file still holds the state before them). A state file that cannot be
 * read as rules is renamed aside rather than overwritten later.
 */
export function readRuntimeRules(directory: string): StateRead {
  for (const name of readdirSync(directory)) {
    if (name.startsWith(TEMPORARY_PREFIX)) unlinkSync(join(directory, name));
  }
  const file = join(directory, STATE_FILE);
  if (!existsSync(file)) return { kind: 'absent' };
  const result = readConfigFile(file);
  if (result.ok) return { kind: 'rules', rules: result.config.rules };
  const keptAs = `${file}.unusable-${new Date().toISOString().replace(/[:.]/g, '-')}`;
  renameSync(file, keptAs);
  return { kind: 'unusable', problems: result.problems, keptAs };
}
