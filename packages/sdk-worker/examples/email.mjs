// A worker with a handler map and event listeners, and a producer awaiting typed results.
//   node examples/email.mjs        (a server on localhost: `npm start` in the repository)
// Env: CODEQ_URL (http://localhost:8080), CODEQ_PRODUCER_ADDR (localhost:9092),
//      CODEQ_WORKER_ADDR (localhost:9091), CODEQ_TOKEN (dev-token).
import { createProducer, TaskFailedError } from '@codeq/sdk-producer';
import { createWorker } from '@codeq/sdk-worker';
import { z } from 'zod';

const token = process.env.CODEQ_TOKEN ?? 'dev-token';

const worker = createWorker({
  grpcAddress: process.env.CODEQ_WORKER_ADDR ?? 'localhost:9091',
  token,
  concurrency: 4,
  // The worker claims exactly the commands of the map.
  handlers: {
    'email.send': async (data, ctx) => {
      if (data.to.endsWith('@invalid.example')) ctx.fail(`cannot deliver to ${data.to}`); // FAILED, no retry
      return { messageId: `msg-${ctx.task.id.slice(0, 8)}` };
    },
    'report.build': async ({ month }) => ({ rows: month * 10 }),
  },
  // Validated before the handler: an invalid payload ends FAILED with the issues, unretried.
  schemas: { 'report.build': z.object({ month: z.number().int().min(1).max(12) }) },
  handleSignals: true,
});
const log = [];
worker
  .on('completed', (e) => log.push(`completed ${e.command}`))
  .on('failed', (e) => log.push(`failed ${e.command}: ${e.error}`))
  .start();

const producer = createProducer({
  grpcAddress: process.env.CODEQ_PRODUCER_ADDR ?? 'localhost:9092',
  baseUrl: process.env.CODEQ_URL ?? 'http://localhost:8080',
  token,
});

const email = await producer.submit('email.send', { to: 'ana@example.com' });
const { messageId } = await email.result({ timeoutMs: 30_000 });
console.log('email sent', messageId === `msg-${email.id.slice(0, 8)}`);

const report = await producer.submit('report.build', { month: 3 });
console.log('report rows', (await report.result({ timeoutMs: 30_000 })).rows);

for (const [command, payload] of [['email.send', { to: 'bob@invalid.example' }], ['report.build', { month: 13 }]]) {
  const handle = await producer.submit(command, payload);
  try {
    await handle.result({ timeoutMs: 30_000 });
  } catch (e) {
    if (!(e instanceof TaskFailedError)) throw e;
    console.log('failed', command, '-', e.reason.split(' [')[0]);
  }
}

await producer.close();
await worker.stop();
console.log(log.sort().join('\n'));
