import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';
import { readConfig, writeConfig } from '../../settings.js';

export default class ConfigUse extends BaseCommand<typeof ConfigUse> {
  static override summary = 'Make a profile the active one (created empty if new).';
  static override examples = ['<%= config.bin %> config use staging'];
  static override args = { profile: Args.string({ description: 'profile name', required: true }) };

  async run(): Promise<{ profile: string; created: boolean }> {
    const file = this.settings.configFile;
    const cfg = readConfig(file);
    const created = !cfg.profiles[this.args.profile];
    cfg.profiles[this.args.profile] ??= {};
    cfg.currentProfile = this.args.profile;
    writeConfig(file, cfg);
    this.log(`${tag.ok()} Using profile '${this.args.profile}'${created ? ' (new)' : ''}`);
    return { profile: this.args.profile, created };
  }
}
