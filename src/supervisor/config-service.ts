import { copyFileSync, existsSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import type { Logger } from 'pino';
import type { ReloadResult } from '../protocol/control-api.js';
import { ControlError } from '../protocol/json-rpc.js';
import type { Rule } from '../rules/rule.js';
import { validateRule } from '../rules/validate-rule.js';
import { notifySystemd } from '../sys/systemd-notify.js';
import {
  parseConfig,
  readConfigFile,
  type ConfigFile,
  type ConfigProblem,
  type ConfigSettings,
} from './config-file.js';
import { renderRules } from './config-render.js';
import { planReload } from './reload-plan.js';
import type { RuleChangeEvents } from './rule-events.js';
import type { RuleTable } from './rule-table.js';
import { readRuntimeRules } from './state-file.js';

export interface ConfigServiceOptions {
  table: RuleTable;
  log: Logger;
  /** The file mcrd was started with (--config); undefined: none, so nothing to reload from. */
  configPath: string | undefined;
  stateDirectory: string | undefined;
  /**
   * What a file's daemon settings change: those only a restart applies (in words), after
   * applying what can change at once (the log level).
   */
  applySettings: (settings: ConfigSettings) => string[];
  /** What a load or reload changed is an event (config.applied); who asked, its cause. */
  events: Pick<RuleChangeEvents, 'configApplied'>;
}

/**
 * The config file and the state directory: rules from both at start, hitless reloads (only the
 * difference is applied), the running rules shown or saved as a config file.
 */
export class ConfigService {
  private readonly table: RuleTable;
  private readonly log: Logger;
  private readonly configPath: string | undefined;
  private readonly stateDirectory: string | undefined;
  private readonly applySettings: (settings: ConfigSettings) => string[];
  private readonly events: Pick<RuleChangeEvents, 'configApplied'>;

  constructor(options: ConfigServiceOptions) {
    this.table = options.table;
    this.log = options.log;
    this.configPath = options.configPath;
    this.stateDirectory = options.stateDirectory;
    this.applySettings = options.applySettings;
    this.events = options.events;
  }

  /**
   * The rules of the config file (checked already by mcrd), then the runtime rules kept in the
   * state directory. A runtime rule for an input or a name the config now has is left out: the
   * config file says what that input does.
   */
  loadAtStart(config: ConfigFile | undefined): void {
    this.table.batch(() => this.restore(config));
  }

  private restore(config: ConfigFile | undefined): void {
    for (const warning of config?.warnings ?? []) this.log.warn(warning);
    for (const request of config?.rules ?? []) this.table.add(validateRule(request), 'config', false);
    if (this.stateDirectory === undefined) return;
    const state = readRuntimeRules(this.stateDirectory);
    if (state.kind === 'unusable') {
      this.log.error(
        { problems: state.problems.map((p) => p.message), keptAs: state.keptAs },
        'the runtime rules file could not be read; it is kept aside and mcrd starts without those rules',
      );
      return;
    }
    if (state.kind === 'absent') return;
    for (const request of state.rules) {
      try {
        this.table.add(validateRule(request), 'runtime', false);
      } catch (err) {
        this.log.warn({ err: (err as Error).message }, 'a runtime rule was not restored');
      }
    }
  }

  /** SIGHUP, mcrctl config reload: the config file again, only its difference applied. */
  reloadFile(): ReloadResult {
    if (this.configPath === undefined) {
      throw new ControlError(
        'E_NO_CONFIG',
        'mcrd was started without --config, so there is no file to reload; start it with one, or use mcrctl config load FILE',
      );
    }
    notifySystemd(`RELOADING=1\nSTATUS=reloading ${this.configPath}`);
    try {
      const read = readConfigFile(this.configPath);
      if (!read.ok) throw invalid(this.configPath, read.problems);
      return this.apply(read.config, this.configPath, false);
    } finally {
      notifySystemd('READY=1\nSTATUS=serving');
    }
  }

  /** mcrctl config load FILE: a document sent by a client, applied the same way. */
  loadText(text: string, source: string, replace: boolean): ReloadResult {
    const parsed = parseConfig(text, source);
    if (!parsed.ok) throw invalid(source, parsed.problems);
    return this.apply(parsed.config, source, replace);
  }

  /** Every running rule as a config document. */
  show(): string {
    return renderRules(this.rules(), `The rules of mcrd (pid ${process.pid}), ${new Date().toISOString()}.`);
  }

  /**
   * Writes the running rules over the config file mcrd was started with (its previous content
   * kept as FILE.bak): loading it gives the same rules, names and ids. From then on they are
   * all config rules, and none is kept as a runtime rule any more.
   */
  save(): { path: string; rules: number } {
    if (this.configPath === undefined) {
      throw new ControlError(
        'E_NO_CONFIG',
        'mcrd was started without --config: give mcrctl config save a FILE to write to',
      );
    }
    const rules = this.rules();
    const temporary = `${this.configPath}.new-${process.pid}`;
    try {
      writeFileSync(
        temporary,
        renderRules(
          rules,
          `Saved by mcrd (pid ${process.pid}), ${new Date().toISOString()}; the previous file is ${this.configPath}.bak.\nDaemon settings given by the previous file were not kept: add them again above rules.`,
        ),
        { mode: 0o640 },
      );
      if (existsSync(this.configPath)) copyFileSync(this.configPath, `${this.configPath}.bak`);
      renameSync(temporary, this.configPath);
    } catch (err) {
      rmSync(temporary, { force: true });
      const reason = err instanceof Error && 'code' in err ? String(err.code) : String(err);
      throw new ControlError(
        'E_CONFIG_WRITE',
        `mcrd cannot write ${this.configPath} (${reason}); as a service its config directory is not its own, on purpose: run mcrctl config save FILE to write the rules to a file of yours, and copy it over as root`,
      );
    }
    this.table.adopt();
    this.log.info({ path: this.configPath, rules: rules.length }, 'running rules saved to the config file');
    return { path: this.configPath, rules: rules.length };
  }

  private rules(): Rule[] {
    return this.table.list().map((s) => s.rule);
  }

  private apply(config: ConfigFile, source: string, replace: boolean): ReloadResult {
    const desired = config.rules.map((r) => validateRule(r));
    const plan = planReload(this.table.running(), desired, replace);
    const report = this.table.apply(plan);
    const needsRestart = this.applySettings(config.settings);
    const result: ReloadResult = { source, ...report, warnings: config.warnings, needsRestart };
    this.events.configApplied(result);
    return result;
  }
}

function invalid(source: string, problems: ConfigProblem[]): ControlError {
  return new ControlError(
    'E_CONFIG_INVALID',
    `${source} has ${problems.length} problem${problems.length === 1 ? '' : 's'}; nothing was changed:\n${problems.map((p) => `  ${p.message}`).join('\n')}`,
    { problems: problems.map((p) => ({ path: p.path, code: p.code, message: p.message })) },
  );
}
