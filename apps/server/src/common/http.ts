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

/**
 * End of the first JSON object or array in `text` (after leading whitespace), or -1. Upstream
 * decodes only the first JSON value of a body and ignores the bytes after it (http-api §1.2).
 * Tracks only brackets and strings; JSON.parse of the slice checks everything else.
 */
export function firstJsonValueEnd(text: string): number {
  const n = text.length;
  let i = 0;
  while (i < n && (text.charCodeAt(i) === 32 || text.charCodeAt(i) === 9 || text.charCodeAt(i) === 10 || text.charCodeAt(i) === 13)) i++;
  const open = text.charCodeAt(i);
  if (open !== 123 && open !== 91) return -1;
  let depth = 0;
  for (; i < n; i++) {
    const c = text.charCodeAt(i);
    if (c === 34) {
      for (i++; i < n; i++) {
        const d = text.charCodeAt(i);
        if (d === 92) i++;
        else if (d === 34) break;
      }
      if (i >= n) return -1;
    } else if (c === 123 || c === 91) depth++;
    else if (c === 125 || c === 93) {
      depth--;
      if (depth === 0) return i + 1;
    }
  }
  return -1;
}

// The routes of http-api §3 (plus our GET /v1/codeq/tasks, /healthz and /readyz), per method, without a trailing slash.
const KNOWN_ROUTES: Record<string, RegExp> = {
  GET: /^(?:\/v1\/codeq\/(?:tasks(?:\/[^/]+(?:\/result)?)?|admin\/topics\/[^/]+|admin\/queues(?:\/[^/]+)?|raft\/status)|\/metrics|\/healthz|\/readyz)$/,
  POST: /^\/v1\/codeq\/(?:tasks(?:\/batch|\/claim|\/claim\/batch|\/batch\/results|\/[^/]+\/(?:heartbeat|abandon|nack|result))?|workers\/subscriptions(?:\/[^/]+\/heartbeat)?|admin\/tasks\/cleanup)$/,
  PUT: /^\/v1\/codeq\/admin\/topics\/[^/]+$/,
  DELETE: /^\/v1\/codeq\/admin\/topics\/[^/]+$/,
};

/**
 * Upstream (gin) redirects a request for a known route with one trailing slash to the path without
 * it (http-api §1.1): the Location (path and query) to redirect to, or null. Cheap for the common
 * case: only a path ending in `/` is looked at.
 */
export function trailingSlashTarget(method: string, url: string): string | null {
  const q = url.indexOf('?');
  const end = q < 0 ? url.length : q;
  if (end < 2 || url.charCodeAt(end - 1) !== 47) return null;
  const routes = KNOWN_ROUTES[method];
  const path = url.slice(0, end - 1);
  if (!routes || !routes.test(path)) return null;
  return q < 0 ? path : path + url.slice(q);
}
