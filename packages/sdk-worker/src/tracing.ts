/**
 * The worker's OpenTelemetry span (issue 17 item 5), through `@opentelemetry/api` only (no-op
 * without a registered SDK): each handler runs inside `codeq.process <command>` (kind CONSUMER),
 * whose parent is the trace context the task was submitted with, so producer, server and worker
 * spans form one trace. The handler runs with that span active: its own spans nest under it.
 */
import { context, SpanKind, SpanStatusCode, trace, type Span } from '@opentelemetry/api';
import { traceContextOf, type Task } from '@codeq/sdk-producer/transport';

const tracer = trace.getTracer('@codeq/sdk-worker');

/** Starts the process span of `task` and returns it with a runner that calls `fn` inside it. */
export function startProcessSpan(task: Task, workerId: string | undefined): { span: Span; run<T>(fn: () => T): T } {
  const parent = traceContextOf(task);
  const span = tracer.startSpan(
    `codeq.process ${task.command}`,
    {
      kind: SpanKind.CONSUMER,
      attributes: {
        'messaging.system': 'codeq',
        'messaging.operation.name': 'process',
        'messaging.operation.type': 'process',
        'messaging.destination.name': task.command,
        'messaging.message.id': task.id,
        'codeq.attempt': task.attempts,
        ...(workerId ? { 'codeq.worker_id': workerId } : {}),
      },
    },
    parent,
  );
  const active = trace.setSpan(parent, span);
  return { span, run: (fn) => context.with(active, fn) };
}

/** Ends a process span with the handler's outcome (`complete`, `fail`, `nack`, …). */
export function endProcessSpan(span: Span, outcome: string, error?: unknown): void {
  span.setAttribute('codeq.outcome', outcome);
  if (error !== undefined) {
    const e = error instanceof Error ? error : new Error(typeof error === 'string' ? error : 'handler failed');
    span.recordException(e);
    span.setStatus({ code: SpanStatusCode.ERROR, message: e.message });
  }
  span.end();
}
