import { CodeqError, decodeHttpError } from '@codeq/proto';
import http from 'node:http';
import https from 'node:https';
import { abortReason, networkError, toCodeqError } from './errors.js';
import { log, type Logger } from './logger.js';
import type {
  AppendLogsInput,
  BatchCreateOutcome,
  CallOptions,
  ClaimInput,
  CleanupInput,
  CreateTaskInput,
  HeartbeatInput,
  LogsQuery,
  NackInput,
  NackOutcome,
  ProgressInput,
  ResultInput,
  Transport,
} from './transport.js';
import { parseResult, parseTask, type CleanupOutcome, type QueueStats, type ResultRecord, type Task, type TaskLogLine, type TaskResult } from './types.js';

/** Options of {@link HttpTransport}. */
export interface HttpTransportOptions {
  /** Server base URL, e.g. `http://localhost:8080` (a path prefix is kept; trailing `/` trimmed). */
  baseUrl: string;
  /** Bearer token (producer or worker). */
  token: string;
  /** Per-request timeout; long-polls add their wait on top. @default 30000 */
  timeoutMs?: number;
  /** Custom agent (TLS options, proxies). Default: a keep-alive agent owned by the transport. */
  agent?: http.Agent;
  /** Extra headers sent with every request. */
  headers?: Record<string, string>;
  logger?: Logger;
  /** @default `codeq-sdk-ts` */
  userAgent?: string;
}

/** A decoded HTTP answer. */
interface HttpAnswer {
  status: number;
  body: unknown;
}

const API = '/v1/codeq';
const enc = encodeURIComponent;

/** Drops `undefined` values so the server sees only fields the caller set. */
function compact(o: object): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) out[k] = v;
  return out;
}

/** Parses `Retry-After` (seconds or HTTP date) into milliseconds. */
function retryAfterMs(h: string | string[] | undefined): number | undefined {
  const v = Array.isArray(h) ? h[0] : h;
  if (!v) return undefined;
  const s = Number(v);
  if (Number.isFinite(s)) return Math.max(0, s * 1000);
  const at = Date.parse(v);
  return Number.isNaN(at) ? undefined : Math.max(0, at - Date.now());
}

/**
 * The REST transport: one keep-alive connection pool, JSON in and out, error answers decoded
 * into CodeqErrors with the shared catalogue. It never retries by itself; the SDKs do.
 */
export class HttpTransport implements Transport {
  readonly target: string;
  private readonly url: URL;
  private readonly prefix: string;
  private readonly agent: http.Agent;
  private readonly ownsAgent: boolean;
  private readonly timeoutMs: number;
  private readonly headers: Record<string, string>;
  private readonly logger: Logger | undefined;
  private closed = false;

  constructor(opts: HttpTransportOptions) {
    let url: URL;
    try {
      url = new URL(opts.baseUrl);
    } catch {
      throw new CodeqError('VALIDATION_FAILED', `invalid baseUrl: ${JSON.stringify(opts.baseUrl)}`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new CodeqError('VALIDATION_FAILED', `baseUrl must be http(s): ${opts.baseUrl}`);
    if (!opts.token) throw new CodeqError('VALIDATION_FAILED', 'token is required');
    this.url = url;
    this.prefix = url.pathname.replace(/\/+$/, '');
    this.target = `${url.protocol}//${url.host}${this.prefix}`;
    const secure = url.protocol === 'https:';
    this.ownsAgent = !opts.agent;
    // Idle sockets are closed after 4 s (below common server keep-alive timeouts, so a reused
    // socket is rarely one the server already closed) and never keep the process alive.
    this.agent = opts.agent ?? (secure ? new https.Agent({ keepAlive: true, timeout: 4000 }) : new http.Agent({ keepAlive: true, timeout: 4000 }));
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.logger = opts.logger;
    this.headers = {
      accept: 'application/json',
      'user-agent': opts.userAgent ?? 'codeq-sdk-ts',
      ...opts.headers,
      authorization: `Bearer ${opts.token}`,
    };
  }

  /** Sends one request; resolves with status and parsed body, rejects with CodeqError / AbortError. */
  request(method: string, path: string, body: unknown, opts: CallOptions = {}, extraHeaders?: Record<string, string>): Promise<HttpAnswer> {
    if (this.closed) return Promise.reject(new CodeqError('UNAVAILABLE', 'transport is closed', { closed: true }));
    if (opts.signal?.aborted) return Promise.reject(abortReason(opts.signal));
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const timeoutMs = opts.timeoutMs ?? this.timeoutMs;
    const lib = this.url.protocol === 'https:' ? https : http;
    const started = Date.now();
    return new Promise<HttpAnswer>((resolve, reject) => {
      let settled = false;
      const fail = (e: Error): void => {
        if (settled) return;
        settled = true;
        cleanup();
        reject(e);
      };
      const onAbort = (): void => {
        req.destroy();
        fail(opts.signal ? abortReason(opts.signal) : new Error('aborted'));
      };
      const cleanup = (): void => opts.signal?.removeEventListener('abort', onAbort);
      const headers: Record<string, string | number> = { ...this.headers, ...extraHeaders };
      if (payload) {
        headers['content-type'] = 'application/json';
        headers['content-length'] = payload.length;
      }
      const req = lib.request(
        {
          protocol: this.url.protocol,
          hostname: this.url.hostname.replace(/^\[|\]$/g, ''),
          port: this.url.port || undefined,
          method,
          path: this.prefix + path,
          headers,
          agent: this.agent,
          timeout: timeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('error', (e) => fail(networkError(e, this.target)));
          res.on('aborted', () => fail(networkError(Object.assign(new Error('response aborted'), { code: 'ECONNRESET' }), this.target)));
          res.on('end', () => {
            if (settled) return;
            const text = Buffer.concat(chunks).toString('utf8');
            const status = res.statusCode ?? 0;
            let parsed: unknown;
            if (text.length) {
              try {
                parsed = JSON.parse(text);
              } catch {
                parsed = undefined;
              }
            }
            log(this.logger, 'debug', 'codeq: http', { method, path, status, ms: Date.now() - started });
            settled = true;
            cleanup();
            if (status >= 200 && status < 300) {
              if (text.length && parsed === undefined) {
                reject(new CodeqError('INTERNAL', `unexpected non-JSON answer from ${this.target}${path}`, { httpStatus: status }));
                return;
              }
              resolve({ status, body: parsed });
              return;
            }
            const errBody = parsed !== undefined && typeof parsed === 'object' ? parsed : { error: text.trim() || `HTTP ${status}` };
            let err = decodeHttpError(status, errBody);
            const ra = retryAfterMs(res.headers['retry-after']);
            const rid = res.headers['x-request-id'];
            if (ra !== undefined || (typeof rid === 'string' && !err.details['requestId'])) {
              err = new CodeqError(err.code, err.message, { ...err.details, ...(ra !== undefined ? { retryAfterMs: ra } : {}), ...(typeof rid === 'string' && !err.details['requestId'] ? { requestId: rid } : {}) });
            }
            reject(err);
          });
        },
      );
      req.on('timeout', () => {
        req.destroy();
        fail(new CodeqError('UNAVAILABLE', `request to ${this.target}${path} timed out after ${timeoutMs} ms`, { timeout: true, target: this.target }));
      });
      req.on('error', (e) => fail(toCodeqError(e, this.target)));
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      req.end(payload);
    });
  }

  private async json(method: string, path: string, body: unknown, opts?: CallOptions, extraHeaders?: Record<string, string>): Promise<unknown> {
    return (await this.request(method, path, body, opts, extraHeaders)).body;
  }

  private static wire(input: CreateTaskInput): Record<string, unknown> {
    return compact({
      command: input.command,
      payload: input.payload === undefined ? null : input.payload,
      priority: input.priority,
      webhook: input.webhook,
      maxAttempts: input.maxAttempts,
      idempotencyKey: input.idempotencyKey,
      runAt: input.runAt,
      delaySeconds: input.delaySeconds,
    });
  }

  /** The W3C `traceparent`/`tracestate` headers of a create (none without a trace context). */
  private static traceHeaders(input: CreateTaskInput | undefined): Record<string, string> | undefined {
    if (!input?.traceParent) return undefined;
    return input.traceState ? { traceparent: input.traceParent, tracestate: input.traceState } : { traceparent: input.traceParent };
  }

  async createTask(input: CreateTaskInput, opts?: CallOptions): Promise<Task> {
    return parseTask(await this.json('POST', `${API}/tasks`, HttpTransport.wire(input), opts, HttpTransport.traceHeaders(input)));
  }

  async createTasks(inputs: readonly CreateTaskInput[], opts?: CallOptions): Promise<BatchCreateOutcome[]> {
    // Each item carries its own trace context (codeQ-TS body fields, coalesced submits come from
    // different spans); when all items share one, it also goes in the headers.
    const tasks = inputs.map((i) => ({ ...HttpTransport.wire(i), ...compact({ traceParent: i.traceParent, traceState: i.traceState }) }));
    const shared = inputs.every((i) => i.traceParent === inputs[0]?.traceParent && i.traceState === inputs[0]?.traceState);
    const body = (await this.json('POST', `${API}/tasks/batch`, { tasks }, opts, shared ? HttpTransport.traceHeaders(inputs[0]) : undefined)) as { results?: unknown };
    if (!Array.isArray(body?.results) || body.results.length !== inputs.length) throw new CodeqError('INTERNAL', 'unexpected answer from the server: batch results');
    return body.results.map((r: unknown): BatchCreateOutcome => {
      const o = (r ?? {}) as { task?: unknown; error?: unknown };
      if (o.task !== undefined) return { task: parseTask(o.task) };
      return { error: new CodeqError('VALIDATION_FAILED', typeof o.error === 'string' ? o.error : 'rejected', { httpStatus: 200 }) };
    });
  }

  async getTask(id: string, opts?: CallOptions): Promise<Task> {
    return parseTask(await this.json('GET', `${API}/tasks/${enc(id)}`, undefined, opts));
  }

  async getResult(id: string, waitSeconds = 0, opts: CallOptions = {}): Promise<TaskResult> {
    const wait = Math.max(0, Math.min(60, Math.floor(waitSeconds)));
    const q = wait > 0 ? `?waitSeconds=${wait}` : '';
    const body = (await this.json('GET', `${API}/tasks/${enc(id)}/result${q}`, undefined, { ...opts, timeoutMs: (opts.timeoutMs ?? this.timeoutMs) + wait * 1000 })) as { task?: unknown; result?: unknown };
    return { task: parseTask(body?.task), result: parseResult(body?.result) };
  }

  async claim(input: ClaimInput, opts: CallOptions = {}): Promise<Task | null> {
    const wait = Math.max(0, Math.min(30, Math.floor(input.waitSeconds ?? 0)));
    const body = compact({ commands: input.commands, leaseSeconds: input.leaseSeconds, waitSeconds: wait || undefined });
    const res = await this.request('POST', `${API}/tasks/claim`, body, { ...opts, timeoutMs: (opts.timeoutMs ?? this.timeoutMs) + wait * 1000 });
    return res.status === 204 || res.body === undefined ? null : parseTask(res.body);
  }

  async heartbeat(id: string, input: HeartbeatInput, opts?: CallOptions): Promise<{ leaseUntil?: string }> {
    const body = (await this.json('POST', `${API}/tasks/${enc(id)}/heartbeat`, compact(input), opts)) as { leaseUntil?: unknown };
    return typeof body?.leaseUntil === 'string' ? { leaseUntil: body.leaseUntil } : {};
  }

  async nack(id: string, input: NackInput, opts?: CallOptions): Promise<NackOutcome> {
    const body = (await this.json('POST', `${API}/tasks/${enc(id)}/nack`, compact(input), opts)) as Partial<NackOutcome>;
    return { status: body?.status === 'dlq' ? 'dlq' : 'requeued', delaySeconds: typeof body?.delaySeconds === 'number' ? body.delaySeconds : 0 };
  }

  async abandon(id: string, input: { leaseId?: string } = {}, opts?: CallOptions): Promise<{ status: string }> {
    const body = (await this.json('POST', `${API}/tasks/${enc(id)}/abandon`, compact(input), opts)) as { status?: unknown };
    return { status: typeof body?.status === 'string' ? body.status : 'requeued' };
  }

  async submitResult(id: string, input: ResultInput, opts?: CallOptions): Promise<ResultRecord> {
    return parseResult(await this.json('POST', `${API}/tasks/${enc(id)}/result`, compact(input), opts));
  }

  async reportProgress(id: string, input: ProgressInput, opts?: CallOptions): Promise<void> {
    await this.json('POST', `${API}/tasks/${enc(id)}/progress`, compact({ progress: input.progress, leaseId: input.leaseId }), opts);
  }

  async appendLogs(id: string, input: AppendLogsInput, opts?: CallOptions): Promise<void> {
    await this.json('POST', `${API}/tasks/${enc(id)}/logs`, compact({ lines: input.lines, leaseId: input.leaseId }), opts);
  }

  async getLogs(id: string, query: LogsQuery = {}, opts?: CallOptions): Promise<TaskLogLine[]> {
    const q = new URLSearchParams();
    if (query.after !== undefined) q.set('after', String(query.after));
    if (query.limit !== undefined) q.set('limit', String(query.limit));
    const qs = q.toString();
    const body = (await this.json('GET', `${API}/tasks/${enc(id)}/logs${qs ? `?${qs}` : ''}`, undefined, opts)) as { lines?: unknown };
    return Array.isArray(body?.lines) ? (body.lines as TaskLogLine[]) : [];
  }

  async listQueues(opts?: CallOptions): Promise<Record<string, number>> {
    return ((await this.json('GET', `${API}/admin/queues`, undefined, opts)) ?? {}) as Record<string, number>;
  }

  async queueStats(command: string, opts?: CallOptions): Promise<QueueStats> {
    return (await this.json('GET', `${API}/admin/queues/${enc(command)}`, undefined, opts)) as QueueStats;
  }

  async cleanup(input: CleanupInput = {}, opts?: CallOptions): Promise<CleanupOutcome> {
    return (await this.json('POST', `${API}/admin/tasks/cleanup`, compact(input), opts)) as CleanupOutcome;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    if (this.ownsAgent) this.agent.destroy();
  }
}
