/**
 * Every error becomes upstream's body `{"error": "<message>"}` plus our `code` and `requestId`
 * (conventions §4). Unknown routes answer like upstream (`404 page not found`, plain text);
 * unexpected errors are logged and answered as 500 without internals.
 */
import { Catch, HttpException, Inject, type ArgumentsHost, type ExceptionFilter } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import { CodeqError, ERRORS, codeForHttpStatus } from '@codeq/proto/errors';
import { LOGGER } from './tokens.js';
import type { Logger } from './logger.js';

export function errorBody(e: CodeqError, requestId: string | undefined): Record<string, unknown> {
  const body: Record<string, unknown> = { error: e.message, code: e.code };
  if (e.code === 'RATE_LIMITED') Object.assign(body, e.details);
  if (e.code === 'UNPROCESSABLE' && e.details['field']) body['field'] = e.details['field'];
  if (requestId) body['requestId'] = requestId;
  return body;
}

@Catch()
export class HttpExceptionFilter implements ExceptionFilter {
  constructor(@Inject(LOGGER) private readonly log: Logger) {}

  catch(exception: unknown, host: ArgumentsHost): void {
    const ctx = host.switchToHttp();
    const reply = ctx.getResponse<FastifyReply>();
    const req = ctx.getRequest<FastifyRequest>();
    sendError(reply, req, exception, this.log);
  }
}

export function sendError(reply: FastifyReply, req: FastifyRequest, exception: unknown, log: Logger): void {
  if (CodeqError.is(exception)) {
    if (exception.code === 'RATE_LIMITED' && typeof exception.details['retryAfterSeconds'] === 'number') {
      void reply.header('retry-after', String(exception.details['retryAfterSeconds']));
    }
    void reply.status(ERRORS[exception.code].http).send(errorBody(exception, req.id));
    return;
  }
  if (exception instanceof HttpException) {
    const status = exception.getStatus();
    if (status === 404) {
      void reply.status(404).type('text/plain; charset=utf-8').send('404 page not found');
      return;
    }
    const code = codeForHttpStatus(status);
    const message = status === 413 ? 'request body too large' : status === 400 ? 'invalid body' : exception.message;
    void reply.status(status).send({ error: message, code, requestId: req.id });
    return;
  }
  const fe = exception as { statusCode?: number; code?: string; message?: string };
  if (fe && typeof fe.statusCode === 'number' && fe.statusCode >= 400 && fe.statusCode < 500) {
    // Fastify's own request errors (body too large, bad content length, ...).
    const code = fe.statusCode === 413 ? 'PAYLOAD_TOO_LARGE' : fe.statusCode === 415 ? 'UNSUPPORTED_MEDIA_TYPE' : 'VALIDATION_FAILED';
    const message = fe.statusCode === 413 ? 'request body too large' : fe.message ?? 'invalid body';
    void reply.status(fe.statusCode).send({ error: message, code, requestId: req.id });
    return;
  }
  log.error({ err: exception instanceof Error ? { message: exception.message, stack: exception.stack } : String(exception), requestId: req.id }, 'unhandled error');
  void reply.status(500).send({ error: 'internal error', code: 'INTERNAL', requestId: req.id });
}
