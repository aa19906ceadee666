import { CodeqError } from '@codeq/proto';
import { Args } from '@oclif/core';
import { BaseCommand } from '../../base-command.js';
import { tag } from '../../output.js';
import { normalizeGrpcAddress } from '@codeq/sdk-producer/transport';
import { mask, PROFILE_KEYS, readConfig, writeConfig, type ProfileKey, type TransportKind } from '../../settings.js';

export default class ConfigSet extends BaseCommand<typeof ConfigSet> {
  static override summary = 'Set url, token, output (table|json), transport (http|grpc), workerAddress or producerAddress in a profile.';
  static override description = 'Writes the active profile (or --profile) in $CODEQ_CONFIG_DIR/config.json (default ~/.config/codeq/config.json, mode 0600).';
  static override examples = [
    '<%= config.bin %> config set url http://codeq.internal:8080',
    '<%= config.bin %> config set token dev-token',
    '<%= config.bin %> config set output json --profile ci',
    '<%= config.bin %> config set transport grpc',
    '<%= config.bin %> config set workerAddress codeq.internal:9091',
  ];
  static override args = {
    key: Args.string({ description: 'setting', options: [...PROFILE_KEYS], required: true }),
    value: Args.string({ description: 'value', required: true }),
  };

  async run(): Promise<{ profile: string; key: string; value: string }> {
    const key = this.args.key as ProfileKey;
    let value = this.args.value;
    if (key === 'url') {
      try {
        const u = new URL(value);
        if (u.protocol !== 'http:' && u.protocol !== 'https:') throw new Error('not http(s)');
      } catch {
        throw new CodeqError('VALIDATION_FAILED', `invalid url: ${value} (expected e.g. http://localhost:8080)`);
      }
      value = value.replace(/\/+$/, '');
    }
    if (key === 'output' && value !== 'table' && value !== 'json') throw new CodeqError('VALIDATION_FAILED', 'output must be table or json');
    if (key === 'transport' && value !== 'http' && value !== 'grpc') throw new CodeqError('VALIDATION_FAILED', 'transport must be http or grpc');
    if (key === 'workerAddress' || key === 'producerAddress') value = normalizeGrpcAddress(value);
    const file = this.settings.configFile;
    const cfg = readConfig(file);
    const profile = this.settings.profile;
    const p = (cfg.profiles[profile] ??= {});
    if (key === 'output') p.output = value as 'table' | 'json';
    else if (key === 'transport') p.transport = value as TransportKind;
    else p[key] = value;
    cfg.currentProfile ??= profile;
    writeConfig(file, cfg);
    const shown = key === 'token' ? mask(value) : value;
    this.log(`${tag.ok()} Set ${key} = ${shown} in profile '${profile}' (${file})`);
    return { profile, key, value: shown };
  }
}
