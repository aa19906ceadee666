/**
 * OpenTelemetry for the producer (issue 17 item 5), through `@opentelemetry/api` only: with no SDK
 * registered the spans are no-ops and nothing is sent. `submit()` runs in a `codeq.submit <command>`
 * span (kind PRODUCER, a child of the active context) whose W3C context travels with the create:
 * the `traceparent`/`tracestate` headers (HTTP) or `CreateTask.trace_parent`/`trace_state` (gRPC).
 */
import { context, createTraceState, ROOT_CONTEXT, SpanKind, SpanStatusCode, trace, type Context, type Span } from '@opentelemetry/api';
import { formatTraceParent, parseTraceParent } from '@codeq/proto/trace-context';
import type { CreateTaskInput } from './transport/transport.js';

const tracer = trace.getTracer('@codeq/sdk-producer');

/** Starts the submit span of `input` and stamps its trace context on `input` (when it is valid). */
export function startSubmitSpan(input: CreateTaskInput): Span {
  const span = tracer.startSpan(
    `codeq.submit ${input.command}`,
    {
      kind: SpanKind.PRODUCER,
      attributes: {
        'messaging.system': 'codeq',
        'messaging.operation.name': 'submit',
        'messaging.operation.type': 'send',
        'messaging.destination.name': input.command,
      },
    },
    context.active(),
  );
  const sc = span.spanContext();
  if (trace.isSpanContextValid(sc)) {
    input.traceParent = formatTraceParent(sc);
    const state = sc.traceState?.serialize();
    if (state) input.traceState = state;
  }
  return span;
}

/** Ends a submit span with the created task's id, or with the error. */
export function endSubmitSpan(span: Span, outcome: { id: string } | { error: unknown }): void {
  if ('id' in outcome) span.setAttribute('messaging.message.id', outcome.id);
  else {
    const e = outcome.error;
    span.recordException(e instanceof Error ? e : String(e));
    span.setStatus({ code: SpanStatusCode.ERROR, message: e instanceof Error ? e.message : String(e) });
  }
  span.end();
}

/** Runs `fn` (one create) inside the submit span of `input`. */
export async function tracedSubmit<T extends { id: string }>(input: CreateTaskInput, fn: () => Promise<T>): Promise<T> {
  const span = startSubmitSpan(input);
  try {
    const out = await fn();
    endSubmitSpan(span, out);
    return out;
  } catch (e) {
    endSubmitSpan(span, { error: e });
    throw e;
  }
}

/**
 * The remote parent context of a task's stored W3C trace context (`task.traceParent`), for a span
 * that continues the producer's trace (the worker's `codeq.process` span); `base` when it has none.
 */
export function traceContextOf(task: { traceParent?: string | undefined; traceState?: string | undefined }, base: Context = ROOT_CONTEXT): Context {
  const p = parseTraceParent(task.traceParent);
  if (!p) return base;
  return trace.setSpanContext(base, {
    traceId: p.traceId,
    spanId: p.spanId,
    traceFlags: p.traceFlags,
    isRemote: true,
    ...(task.traceState ? { traceState: createTraceState(task.traceState) } : {}),
  });
}
