/**
 * OpenTelemetry spans of the server (issue 17 item 5), through `@opentelemetry/api` only: without a
 * registered SDK every call here is a no-op. Each span is recorded after its operation (explicit
 * start time), because the parent is the trace context stored with the task, which is known only
 * once the engine answered (a claim does not know its tasks in advance).
 *
 * Spans: `codeq.create <command>`, `codeq.claim <command>`, `codeq.result <command>`, each a child
 * of the producer's `codeq.submit <command>` span, with the engine's commit time as
 * `codeq.engine.commit_ms`.
 */
import { performance } from 'node:perf_hooks';
import { createTraceState, ProxyTracerProvider, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Attributes, type Context } from '@opentelemetry/api';
import { parseTraceParent } from '@codeq/proto/trace-context';

const tracer = trace.getTracer('@codeq/server');

/** The API's no-op provider: what the global proxy delegates to until an SDK registers one. */
const NOOP_PROVIDER = new ProxyTracerProvider().getDelegate();

/**
 * Whether spans are recorded: an OpenTelemetry SDK registered a tracer provider. Checked per call
 * (an SDK may register after start-up); without one, callers skip building span attributes.
 */
export function spansEnabled(): boolean {
  const p = trace.getTracerProvider();
  return !(p instanceof ProxyTracerProvider) || p.getDelegate() !== NOOP_PROVIDER;
}

/** The remote parent context of a stored `traceparent`/`tracestate`, or the root context. */
export function parentContext(traceParent: string | null | undefined, traceState?: string | null): Context {
  const p = parseTraceParent(traceParent);
  if (!p) return ROOT_CONTEXT;
  return trace.setSpanContext(ROOT_CONTEXT, {
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.traceFlags,
    isRemote: true,
    ...(traceState ? { traceState: createTraceState(traceState) } : {}),
  });
}

/** A started stopwatch: wall-clock start (span start time) and a monotonic start (commit time). */
export interface Stopwatch {
  readonly wallMs: number;
  readonly mono: number;
}

export const stopwatch = (): Stopwatch => ({ wallMs: Date.now(), mono: performance.now() });

/** Milliseconds since `sw` (monotonic), rounded to microseconds. */
export const elapsedMs = (sw: Stopwatch): number => Math.round((performance.now() - sw.mono) * 1000) / 1000;

export interface SpanTask {
  id: string;
  tenantId: string;
  command: string;
  traceParent?: string | null;
  traceState?: string | null;
}

/**
 * Records one finished server span for `task` (`<op> <command>`), started at `sw`, with the engine's
 * commit time (`commitMs`) and an error status when `error` is set.
 */
export function recordTaskSpan(op: 'create' | 'claim' | 'result', task: SpanTask, sw: Stopwatch, commitMs: number, extra: Attributes = {}, error?: unknown): void {
  if (!spansEnabled()) return; // no SDK: the span would be a no-op (per task, three times)
  const span = tracer.startSpan(
    `codeq.${op} ${task.command}`,
    {
      kind: SpanKind.SERVER,
      startTime: sw.wallMs,
      attributes: {
        'messaging.system': 'codeq',
        'messaging.operation.name': op,
        'messaging.destination.name': task.command,
        'messaging.message.id': task.id,
        'codeq.tenant_id': task.tenantId,
        'codeq.engine.commit_ms': commitMs,
        ...extra,
      },
    },
    parentContext(task.traceParent, task.traceState),
  );
  if (error !== undefined) {
    const e = error instanceof Error ? error : new Error(typeof error === 'string' ? error : 'failed');
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  }
  span.end(sw.wallMs + (performance.now() - sw.mono));
}
