/**
 * Start-up warm-up of the HTTP request path (issue 13 item 2), run before the listener opens (so
 * before /readyz can answer 200). A cold server interprets its request path for its first few
 * thousand requests; under a burst of new clients that start-up backlog was the largest part of
 * the first second's latency (bench/latency-timeline.mjs: run 1, cold server, against runs 2–3).
 *
 * Only requests without effects are sent, in-process (`fastify.inject`): every hot route with a
 * valid-looking body and a token no validator accepts, so routing, Fastify's hooks, the body
 * parser, the route handlers, token validation and the error answer run, and nothing is read or
 * written, no rate-limit bucket is touched (buckets are taken after authentication) and no
 * request id is consumed (each warm-up request brings its own). The success path's pure parts
 * (request validation, the task JSON and its compiled serialiser) warm up on the first requests.
 */
import type { FastifyInstance, InjectOptions } from 'fastify';

const ID = '00000000-0000-4000-8000-000000000000';
const H = { 'content-type': 'application/json', authorization: 'Bearer warm-up', 'x-request-id': 'warm-up' } as const;

const REQUESTS: InjectOptions[] = [
  { method: 'POST', url: '/v1/codeq/tasks', headers: H, payload: '{"command":"warm_up","payload":{"a":1,"b":"x"},"priority":1}' },
  { method: 'POST', url: '/v1/codeq/tasks/claim', headers: H, payload: '{"commands":["warm_up"],"leaseSeconds":30,"waitSeconds":5}' },
  { method: 'POST', url: `/v1/codeq/tasks/${ID}/result`, headers: H, payload: '{"status":"COMPLETED","result":{"ok":true}}' },
  { method: 'POST', url: `/v1/codeq/tasks/${ID}/heartbeat`, headers: H, payload: '{"extendSeconds":30}' },
  { method: 'GET', url: `/v1/codeq/tasks/${ID}`, headers: H },
];

/** Sends `rounds` × the requests above; returns how many were refused (401, or 500 without validators) and the time taken. */
export async function warmUpHttp(fastify: FastifyInstance, rounds = 30): Promise<{ requests: number; ms: number }> {
  const t0 = performance.now();
  let n = 0;
  for (let r = 0; r < rounds; r++) {
    await Promise.all(
      REQUESTS.map(async (req) => {
        const res = await fastify.inject(req);
        if (res.statusCode === 401 || res.statusCode === 500) n++;
      }),
    );
  }
  return { requests: n, ms: Math.round(performance.now() - t0) };
}
