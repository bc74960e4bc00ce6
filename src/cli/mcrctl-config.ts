import type { Command } from 'commander';
import { existsSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { MethodName, ParamsOf, ReloadResult, ResultOf } from '../protocol/control-api.js';
import { readConfigFile, type ConfigProblem } from '../supervisor/config-file.js';
import { UsageError } from './package-info.js';

/** What the config commands need of mcrctl: calling mcrd, and printing text or JSON. */
export interface ClientContext {
  call<M extends MethodName>(method: M, params?: ParamsOf<M>): Promise<ResultOf<M>>;
  print(json: unknown, text: () => string): void;
}

/** mcrctl config save FILE could not write FILE. */
export class ConfigWriteFailed extends Error {
  readonly code = 'E_CONFIG_WRITE';
}

/** A config file that has problems: mcrctl prints each, one per line, and exits 1. */
export class ConfigInvalid extends Error {
  readonly code = 'E_CONFIG_INVALID';
  readonly problems: ConfigProblem[];

  constructor(file: string, problems: ConfigProblem[]) {
    super(
      `${file} has ${problems.length} problem${problems.length === 1 ? '' : 's'}:\n${problems.map((p) => `  ${p.message}`).join('\n')}`,
    );
    this.problems = problems;
  }
}

/** mcrctl config check | show | save [FILE] | load FILE [--replace] */
export function registerConfigCommands(program: Command, client: ClientContext): void {
  const config = program
    .command('config')
    .description('check a config file, show or save the running rules, load or reload a file (hitless)');

  config
    .command('check')
    .description('check a config file without loading it: every problem, each with its path in the file')
    .argument('<file>', 'a JSON5 config file')
    .action((file: string) => {
      const result = readConfigFile(file);
      if (!result.ok) throw new ConfigInvalid(file, result.problems);
      const { rules, warnings } = result.config;
      client.print({ file, rules: rules.length, warnings }, () =>
        [
          `${file}: OK, ${rules.length} rule${rules.length === 1 ? '' : 's'}`,
          ...warnings.map((w) => `warning: ${w}`),
        ].join('\n'),
      );
    });

  config
    .command('show')
    .description('print every running rule as a config file (JSON5)')
    .action(async () => {
      const { text } = await client.call('config.show');
      client.print({ text }, () => text.trimEnd());
    });

  config
    .command('save')
    .description(
      "write the running rules to FILE, or over mcrd's own config file (--config) when none is given",
    )
    .argument('[file]', 'where to write (written by mcrctl, with your permissions)')
    .action(async (file: string | undefined) => {
      if (file === undefined) {
        const { path, rules } = await client.call('config.save');
        client.print({ path, rules }, () => `saved ${rules} rule${rules === 1 ? '' : 's'} to ${path}`);
        return;
      }
      const { text } = await client.call('config.show');
      writeAtomically(file, text);
      client.print({ path: file }, () => `saved the running rules to ${file}`);
    });

  config
    .command('reload')
    .description("apply mcrd's own config file (--config) again, as SIGHUP does; exit 1 if it has problems")
    .action(async () => {
      const result = await client.call('config.reload');
      client.print(result, () => reloadSummary(result));
    });

  config
    .command('load')
    .description('apply a config file: only what differs changes; runtime rules stay unless --replace')
    .argument('<file>', 'a JSON5 config file')
    .option('--replace', 'also remove rules added at runtime that the file does not have')
    .action(async (file: string, opts: { replace?: boolean }) => {
      // Checked here first, so the problems are named against the operator's own file.
      const checked = readConfigFile(file);
      if (!checked.ok) throw new ConfigInvalid(file, checked.problems);
      const text = readFileSync(file, 'utf8');
      const result = await client.call('config.load', { text, source: file, replace: opts.replace === true });
      client.print(result, () => reloadSummary(result));
    });
}

/** "added 1, removed 0, changed 2, unchanged 5" and what needs a restart. */
export function reloadSummary(r: ReloadResult): string {
  const lines = [
    `${r.source}: added ${r.added.length}, removed ${r.removed.length}, changed ${r.updated.length}, unchanged ${r.unchanged}`,
  ];
  for (const [what, ids] of [
    ['added', r.added],
    ['removed', r.removed],
    ['changed', r.updated],
  ] as const) {
    if (ids.length > 0) lines.push(`  ${what}: ${ids.join(', ')}`);
  }
  for (const w of r.warnings) lines.push(`warning: ${w}`);
  for (const s of r.needsRestart) lines.push(`needs a restart of mcrd to take effect: ${s}`);
  return lines.join('\n');
}

/** Writes next to the file and renames over it, so a reader never sees half a file. */
function writeAtomically(file: string, text: string): void {
  if (file === '') throw new UsageError('E_USAGE', 'the file name is empty');
  const temporary = `${file}.new-${process.pid}`;
  try {
    writeFileSync(temporary, text, { mode: existsSync(file) ? undefined : 0o644 });
    renameSync(temporary, file);
  } catch (err) {
    rmSync(temporary, { force: true });
    const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
    throw new ConfigWriteFailed(
      `cannot write ${file} (${reason}): choose a file in a directory you may write to`,
    );
  }
}
