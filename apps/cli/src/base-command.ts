import { CodeqError, ERRORS, type ErrorCode } from '@codeq/proto';
import { GrpcProducerTransport, HttpTransport, isConnectionError, withRetry, type ProducerTransport, type RetryPolicy, type Transport, type WorkerTransport } from '@codeq/sdk-producer/transport';
import { GrpcWorkerTransport } from '@codeq/sdk-worker';
import { Command, Errors, Flags, type Interfaces } from '@oclif/core';
import { tag } from './output.js';
import { configPath, readConfig, activeProfile, resolveSettings, type Settings } from './settings.js';

export type BaseFlags<T extends typeof Command> = Interfaces.InferredFlags<(typeof BaseCommand)['baseFlags'] & T['flags']>;
export type BaseArgs<T extends typeof Command> = Interfaces.InferredArgs<T['args']>;

/** Process exit code for a catalogue code (2 validation, 3 auth, 4 not found, 5 conflict, 6 rate limited, 7 unavailable, 1 internal). */
export function exitCodeFor(code: ErrorCode): number {
  return ERRORS[code].exit;
}

/** Exit code of `tasks wait` when the task ended FAILED (incl. dead-lettered); not an error code of the catalogue. */
export const EXIT_TASK_FAILED = 8;

/** Exit code of `tasks wait` when the task ended CANCELLED (a producer cancelled it); not an error code of the catalogue. */
export const EXIT_TASK_CANCELLED = 9;

/** `--transport` and `--grpc-address` of the commands that can use a gRPC stream. */
export function transportFlags(role: 'worker' | 'producer') {
  const port = role === 'worker' ? 9091 : 9092;
  return {
    transport: Flags.string({
      summary: `Wire: http, or grpc (the ${role} stream). Env CODEQ_TRANSPORT, profile key transport; default http.`,
      options: ['http', 'grpc'],
      helpGroup: 'TRANSPORT',
    }),
    'grpc-address': Flags.string({
      summary: `${role === 'worker' ? 'Worker' : 'Producer'} stream host:port; implies --transport grpc. Env ${role === 'worker' ? 'CODEQ_WORKER_ADDRESS' : 'CODEQ_PRODUCER_ADDRESS'}, profile key ${role}Address; default <url host>:${port}.`,
      helpGroup: 'TRANSPORT',
    }),
  };
}

/** The CLI's retries: short, so a down server is reported within about a second. */
export const CLI_RETRY: RetryPolicy = { maxAttempts: 3, initialMs: 100, maxMs: 1000, factor: 2, jitter: 0.5 };

/**
 * Shared flags (`--url`, `--token`, `--profile`, `--json`), settings resolution, the transport,
 * and error reporting: CodeqErrors become a message on stderr (or `{"error":…}` on stdout with
 * `--json`) and the catalogue's exit code.
 */
export abstract class BaseCommand<T extends typeof Command> extends Command {
  static override enableJsonFlag = true;

  static override baseFlags = {
    url: Flags.string({ summary: 'Server base URL (env CODEQ_URL; default http://localhost:8080).', helpGroup: 'GLOBAL', aliases: ['base-url'] }),
    token: Flags.string({
      summary: "Bearer token (env CODEQ_TOKEN, else upstream's CODEQ_WORKER_TOKEN / CODEQ_PRODUCER_TOKEN).",
      helpGroup: 'GLOBAL',
      aliases: ['producer-token', 'worker-token'],
    }),
    profile: Flags.string({ summary: 'Config profile to use (env CODEQ_PROFILE).', helpGroup: 'GLOBAL' }),
  };

  protected flags!: BaseFlags<T>;
  protected args!: BaseArgs<T>;
  /** Extra arguments (commands with `strict = false`). */
  protected rest: string[] = [];
  protected settings!: Settings;
  private transportInstance: Transport | undefined;
  private streamInstance: ProducerTransport | WorkerTransport | undefined;

  /** The stream `--grpc-address` names for this command (commands with `--transport` set it). */
  static streamRole: 'worker' | 'producer' | undefined;

  /** Which of upstream's token variables (`CODEQ_WORKER_TOKEN` / `CODEQ_PRODUCER_TOKEN`) comes first when `CODEQ_TOKEN` is unset. */
  static tokenRole: 'worker' | 'producer' = 'producer';

  override async init(): Promise<void> {
    await super.init();
    const ctor = this.ctor as typeof BaseCommand;
    const { args, flags, argv } = await this.parse({
      flags: ctor.flags,
      baseFlags: ctor.baseFlags,
      enableJsonFlag: ctor.enableJsonFlag,
      args: ctor.args,
      strict: ctor.strict,
    });
    this.flags = flags as BaseFlags<T>;
    this.args = args as BaseArgs<T>;
    this.rest = argv.map(String);
    const f = this.flags as { transport?: string; 'grpc-address'?: string };
    const role = ctor.streamRole;
    this.settings = resolveSettings({
      url: this.flags.url,
      token: this.flags.token,
      profile: this.flags.profile,
      transport: f.transport,
      ...(role === 'worker' ? { workerAddress: f['grpc-address'] } : role === 'producer' ? { producerAddress: f['grpc-address'] } : {}),
    }, process.env, ctor.tokenRole);
  }

  /** `--json`, or a profile with `output: json`. */
  override jsonEnabled(): boolean {
    if (super.jsonEnabled()) return true;
    if (!(this.ctor as typeof BaseCommand).enableJsonFlag) return false;
    const pass = this.argv.indexOf('--');
    if (pass !== -1 && this.argv.slice(0, pass).includes('--json')) return true;
    try {
      if (this.settings) return this.settings.output === 'json';
      const cfg = readConfig(configPath());
      return cfg.profiles[activeProfile(cfg, {}, process.env)]?.output === 'json';
    } catch {
      return false;
    }
  }

  /** The HTTP transport for the resolved URL and token (fails when no token is configured). */
  protected get transport(): Transport {
    if (!this.transportInstance) {
      this.transportInstance = new HttpTransport({ baseUrl: this.settings.url, token: this.requireToken(), userAgent: this.config.userAgent });
    }
    return this.transportInstance;
  }

  /** The token, or UNAUTHENTICATED (exit 3) when none is configured. */
  private requireToken(): string {
    if (!this.settings.token) throw new CodeqError('UNAUTHENTICATED', 'token is required (use --token, CODEQ_TOKEN or `codeq config set token <token>`)');
    return this.settings.token;
  }

  /**
   * The transport of the command's stream role: with `--transport grpc` (or CODEQ_TRANSPORT /
   * profile `transport`) the worker or producer gRPC stream, with HTTP for everything else;
   * otherwise the HTTP transport.
   */
  protected streamTransport(role: 'worker'): WorkerTransport;
  protected streamTransport(role: 'producer'): ProducerTransport;
  protected streamTransport(role: 'worker' | 'producer'): ProducerTransport | WorkerTransport {
    if (this.settings.transport !== 'grpc') return this.transport;
    if (!this.streamInstance) {
      const token = this.requireToken();
      const http = this.transport;
      this.streamInstance =
        role === 'worker'
          ? new GrpcWorkerTransport({ address: this.settings.workerAddress, token, http })
          : new GrpcProducerTransport({ address: this.settings.producerAddress, token, http });
    }
    return this.streamInstance;
  }

  /** Where the command connects, for messages: the stream address with gRPC, else the URL. */
  protected target(role: 'worker' | 'producer'): string {
    if (this.settings.transport !== 'grpc') return this.settings.url;
    return `grpc://${role === 'worker' ? this.settings.workerAddress : this.settings.producerAddress}`;
  }

  /** Runs a call that is safe to repeat (reads, creates with an idempotency key) with short retries. */
  protected retried<R>(op: () => Promise<R>): Promise<R> {
    return withRetry(op, CLI_RETRY);
  }

  /** Parses a JSON flag value; bad JSON is a validation error (exit 2). */
  protected parseJson(what: string, text: string): unknown {
    try {
      return JSON.parse(text);
    } catch (e) {
      throw new CodeqError('VALIDATION_FAILED', `invalid ${what} JSON: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  /** stderr line, suppressed with --json. */
  protected note(message: string): void {
    this.logToStderr(message);
  }

  override async finally(err: Error | undefined): Promise<void> {
    await this.streamInstance?.close();
    await this.transportInstance?.close();
    await super.finally(err);
  }

  /** What to tell a person about an error, besides its message. */
  protected hint(err: CodeqError): string | undefined {
    const target = err.details['target'];
    if (isConnectionError(err) && typeof target === 'string' && target.startsWith('grpc://')) {
      const role = (this.ctor as typeof BaseCommand).streamRole ?? 'worker';
      return `Is the server's ${role} stream listening at ${target.slice(7)} (${role === 'worker' ? 'WORKER_STREAM_ADDR' : 'PRODUCER_STREAM_ADDR'})? Set --grpc-address, ${role === 'worker' ? 'CODEQ_WORKER_ADDRESS' : 'CODEQ_PRODUCER_ADDRESS'} or \`codeq config set ${role}Address <host:port>\`, or use --transport http.`;
    }
    if (isConnectionError(err)) return `Is the server running at ${this.settings?.url ?? 'the configured URL'}? Set --url, CODEQ_URL or \`codeq config set url <url>\`.`;
    if (err.details['timeout'] === true) return `The server at ${this.settings?.url} did not answer in time.`;
    if (err.code === 'UNAUTHENTICATED' && (err.details['httpStatus'] !== undefined || err.details['grpcStatus'] !== undefined)) return 'Check the token: --token, CODEQ_TOKEN or `codeq config set token <token>`.';
    if (err.code === 'FORBIDDEN') return 'The token is valid but not allowed here (admin routes need the ADMIN role; worker routes need codeq:* scopes).';
    return undefined;
  }

  override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number }; code?: string }): Promise<unknown> {
    if (err instanceof Errors.ExitError || err.code === 'EEXIT') return super.catch(err);
    if (!CodeqError.is(err)) {
      if (err instanceof Error && !(err instanceof Errors.CLIError) && !('oclif' in err)) {
        // Unexpected failures (bugs, file errors): exit 1 with the message, no stack.
        return this.catch(new CodeqError('INTERNAL', err.message, {}, { cause: err }));
      }
      // Parse errors (unknown flag, missing argument, bad option value): exit 2.
      const exit = err.oclif?.exit ?? err.exitCode ?? 2;
      if (this.jsonEnabled()) {
        process.exitCode = exit;
        this.logJson({ error: { code: 'VALIDATION_FAILED', message: err.message } });
        return;
      }
      // oclif puts the reason of a bad flag value on a tab-indented second line: keep one line.
      this.reportError(err.message.replace(/\s*\n\t\s*/g, ': '), exit);
      return;
    }
    const exit = exitCodeFor(err.code);
    const hint = this.hint(err);
    const status = typeof err.details['httpStatus'] === 'number' ? err.details['httpStatus'] : undefined;
    if (this.jsonEnabled()) {
      process.exitCode = exit;
      const body: Record<string, unknown> = { code: err.code, message: err.message };
      if (status !== undefined) body['httpStatus'] = status;
      if (typeof err.details['requestId'] === 'string') body['requestId'] = err.details['requestId'];
      if (hint) body['hint'] = hint;
      this.logJson({ error: body });
      return;
    }
    const suffix = status !== undefined ? ` (HTTP ${status})` : '';
    this.reportError(err.message + suffix + (hint ? `\n${hint}` : ''), exit);
  }

  /**
   * Upstream's error line: `[ERROR] <message>` on stderr (further lines, e.g. a hint, follow as
   * they are), never wrapped to the terminal width, so scripts can grep the whole message; the
   * exit code is set for when the command returns.
   */
  private reportError(message: string, exit: number): void {
    process.stderr.write(`${tag.error(process.stderr)} ${message}\n`);
    process.exitCode = exit;
  }
}
