/** Token-bucket rate limits per caller: 429 with Retry-After and upstream's body, then recovery. */
import { client, sleep, startServer, T, type RunningServer } from './harness.js';

let s: RunningServer;
afterEach(async () => {
  await s.stop();
});

describe('rate limits', () => {
  it('limits creates per token, answers 429 with Retry-After, counts hits and recovers', async () => {
    s = await startServer({ rateLimit: { producer: { requestsPerMinute: 120, burstSize: 3 }, worker: { requestsPerMinute: 60, burstSize: 1 } } });
    const c = client(s.url);
    for (let i = 0; i < 3; i++) expect((await c.create({ command: 'rl', payload: i })).status).toBe(202);
    const limited = await c.create({ command: 'rl', payload: 4 });
    expect(limited.status).toBe(429);
    expect(limited.headers.get('retry-after')).toBe('1');
    expect(limited.body).toMatchObject({ error: 'rate limit exceeded', operation: 'create_task', retryAfterSeconds: 1, scope: 'producer' });
    // another caller has its own bucket
    expect((await c.create({ command: 'rl', payload: 5 }, T.user)).status).toBe(202);
    // claims have their own bucket
    expect((await c.claim({ commands: ['rl'] })).status).toBe(200);
    const claimLimited = await c.claim({ commands: ['rl'] });
    expect(claimLimited.status).toBe(429);
    expect(claimLimited.body).toMatchObject({ operation: 'claim', scope: 'worker' });
    // other worker routes are not limited
    expect((await c.get(limited.body.id ?? 'x', T.worker)).status).toBe(404);
    const m = await c.call('GET', '/metrics');
    expect(m.text).toContain('codeq_rate_limit_hits_total{scope="producer",operation="create_task"} 1');
    expect(m.text).toContain('codeq_rate_limit_hits_total{scope="worker",operation="claim"} 1');
    await sleep(600); // 2 tokens/s refill
    expect((await c.create({ command: 'rl', payload: 6 })).status).toBe(202);
    // nothing was created by the refused request
    expect((await c.call('GET', '/v1/codeq/admin/queues/rl', { token: T.producer })).body.ready + 1).toBe(5);
  });

  it('does not spend tokens on unauthenticated requests', async () => {
    s = await startServer({ rateLimit: { producer: { requestsPerMinute: 60, burstSize: 1 } } });
    const c = client(s.url);
    for (let i = 0; i < 3; i++) expect((await c.create({ command: 'x', payload: 1 }, 'bad-token')).status).toBe(401);
    expect((await c.create({ command: 'x', payload: 1 })).status).toBe(202);
  });
});
