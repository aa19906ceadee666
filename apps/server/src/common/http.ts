/** HTTP helpers shared by controllers. */
import { createParamDecorator, type ExecutionContext } from '@nestjs/common';
import type { FastifyReply, FastifyRequest } from 'fastify';
import type { Principal } from '../domain/claims.js';

/** The authenticated caller (set by AuthGuard). */
export const Caller = createParamDecorator((_: unknown, ctx: ExecutionContext): Principal => {
  const req = ctx.switchToHttp().getRequest<FastifyRequest & { principal?: Principal }>();
  if (!req.principal) throw new Error('route has no @Auth requirement');
  return req.principal;
});

/** An AbortSignal that fires when the client goes away before the answer is sent. */
export function disconnectSignal(reply: FastifyReply): AbortSignal {
  const ac = new AbortController();
  reply.raw.once('close', () => {
    if (!reply.raw.writableFinished) ac.abort();
  });
  return ac.signal;
}

/** Marker for a body that was sent but is not JSON: validators answer with the route's message. */
// A null-prototype object: never mistaken for a parsed JSON object (see domain/requests.ts isObj).
export const INVALID_JSON: object = Object.freeze(Object.create(null) as object);
