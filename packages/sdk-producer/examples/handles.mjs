// Handles, typed errors and schema validation, producer side only.
//   node examples/handles.mjs        (a server on localhost: `npm start` in the repository)
// Env: CODEQ_URL (http://localhost:8080), CODEQ_PRODUCER_ADDR (localhost:9092), CODEQ_TOKEN (dev-token).
import { CodeqError, createProducer, TaskCancelledError } from '@codeq/sdk-producer';
import { z } from 'zod'; // any Standard Schema validator works: zod, valibot, arktype …

const producer = createProducer({
  grpcAddress: process.env.CODEQ_PRODUCER_ADDR ?? 'localhost:9092', // submit on the producer stream
  baseUrl: process.env.CODEQ_URL ?? 'http://localhost:8080', //          read and wait over HTTP
  token: process.env.CODEQ_TOKEN ?? 'dev-token',
  schemas: { 'email.send': z.object({ to: z.email(), subject: z.string().default('Hello') }) },
});

// submit() resolves a handle: the stored task (from CreateAck.task over gRPC) plus methods.
const handle = await producer.submit('email.send', { to: 'ana@example.com' }, { delaySeconds: 3600 });
console.log('submitted', handle.status, handle.maxAttempts, JSON.stringify(handle.data));

// A cancelled task: result() throws TaskCancelledError.
await handle.cancel();
try {
  await handle.result({ timeoutMs: 10_000 });
} catch (e) {
  if (!(e instanceof TaskCancelledError)) throw e;
  console.log('cancelled', e.taskId === handle.id, e.task.status);
}

// An invalid payload is rejected before anything is sent.
try {
  await producer.submit('email.send', { to: 'not an address' });
} catch (e) {
  if (!(CodeqError.is(e) && e.code === 'VALIDATION_FAILED')) throw e;
  console.log('rejected', e.message);
}
await producer.close();
