/**
 * The SDK logger contract with real loggers: pino (fields object first) and a console (message
 * first), each writing to a stream, while a worker processes a task on a real server.
 */
import { Console } from 'node:console';
import { Writable } from 'node:stream';
import { pino } from 'pino';
import { createProducer, type Producer } from '@codeq/sdk-producer';
import { serverSuite, TOKEN, waitFor } from '@codeq/testkit';
import { createWorker, objectFirstLogger, type Logger, type Worker } from '../src/index.js';

const server = serverSuite();
let producer: Producer;
beforeAll(() => {
  producer = server.atEnd(createProducer({ baseUrl: server.url, token: TOKEN }), (p) => p.close());
});
/** Workers are stopped (deadline 0) after each test. */
const track = (w: Worker): Worker => server.afterEachTest(w, (x) => x.stop({ deadlineMs: 0 }));

function sink(): { stream: Writable; text: () => string } {
  let buf = '';
  const stream = new Writable({
    write(chunk: Buffer, _enc, cb) {
      buf += chunk.toString();
      cb();
    },
  });
  return { stream, text: () => buf };
}

/** Runs a worker with `logger` until one task (its handler throws once, then succeeds) is done. */
async function runWith(logger: Logger, command: string): Promise<void> {
  const w = createWorker({
    baseUrl: server.url,
    token: TOKEN,
    commands: [command],
    waitSeconds: 1,
    nackDelaySeconds: 0,
    logger,
    handler: (_t, ctx) => {
      if (ctx.attempt === 1) throw new Error('first try fails');
      return { ok: true };
    },
  });
  track(w);
  w.start();
  const t = await producer.submit(command, {});
  expect((await producer.waitForResult(t.id, { timeoutMs: 15_000 })).result.status).toBe('COMPLETED');
  await w.stop();
}

type PinoLine = { level: number; msg: string; [k: string]: unknown };
const lines = (text: string): PinoLine[] =>
  text
    .split('\n')
    .filter(Boolean)
    .map((l) => JSON.parse(l) as PinoLine);

describe('SDK logging', () => {
  it('a pino logger gets the fields object first: messages and fields land in the JSON lines', async () => {
    const out = sink();
    const logger = pino({ level: 'debug' }, out.stream);
    await runWith(logger, 'log.pino');
    await waitFor(() => out.text().includes('codeq worker: stopped'));
    const started = lines(out.text()).find((l) => l.msg === 'codeq worker: started');
    expect(started).toMatchObject({ level: 30, commands: ['log.pino'], concurrency: 1 });
    expect(lines(out.text()).every((l) => typeof l.msg === 'string' && l.msg.startsWith('codeq'))).toBe(true);
  });

  it('objectFirstLogger adapts other fields-first loggers (a pino child here)', async () => {
    const out = sink();
    const child = pino({ level: 'info' }, out.stream).child({ component: 'jobs' });
    await runWith(objectFirstLogger(child), 'log.adapted');
    await waitFor(() => out.text().includes('codeq worker: stopped'));
    expect(lines(out.text()).find((l) => l.msg === 'codeq worker: started')).toMatchObject({ component: 'jobs', commands: ['log.adapted'] });
  });

  it('a console logger gets the message first and the fields after it', async () => {
    const out = sink();
    const logger = new Console({ stdout: out.stream, stderr: out.stream });
    await runWith(logger, 'log.console');
    await waitFor(() => out.text().includes('codeq worker: stopped'));
    expect(out.text()).toMatch(/codeq worker: started \{[^}]*commands: \[ 'log\.console' \]/);
  });
});
