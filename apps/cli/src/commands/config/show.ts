import { BaseCommand } from '../../base-command.js';
import { mask, readConfig } from '../../settings.js';

export default class ConfigShow extends BaseCommand<typeof ConfigShow> {
  static override summary = 'Show the settings in effect and where each comes from.';
  static override examples = ['<%= config.bin %> config show', 'CODEQ_URL=http://other:8080 <%= config.bin %> config show --json'];

  async run(): Promise<Record<string, unknown>> {
    const s = this.settings;
    const profiles = Object.keys(readConfig(s.configFile).profiles);
    this.log(`• profile: ${s.profile}`);
    this.log(`• url: ${s.url} (${s.urlSource})`);
    this.log(`• token: ${mask(s.token)}${s.tokenSource ? ` (${s.tokenSource})` : ''}`);
    this.log(`• output: ${s.output}`);
    this.log(`• transport: ${s.transport} (${s.transportSource}; used by tasks submit and worker start)`);
    this.log(`• worker stream: ${s.workerAddress} (${s.workerAddressSource})`);
    this.log(`• producer stream: ${s.producerAddress} (${s.producerAddressSource})`);
    this.log(`• config file: ${s.configFile}`);
    if (profiles.length) this.log(`• profiles: ${profiles.join(', ')}`);
    return { profile: s.profile, url: s.url, urlSource: s.urlSource, token: mask(s.token), tokenSource: s.tokenSource ?? null, output: s.output, transport: s.transport, transportSource: s.transportSource, workerAddress: s.workerAddress, workerAddressSource: s.workerAddressSource, producerAddress: s.producerAddress, producerAddressSource: s.producerAddressSource, configFile: s.configFile, profiles };
  }
}
