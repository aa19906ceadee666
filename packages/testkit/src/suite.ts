/**
 * One test server per test file, with the clean-up every SDK suite repeated: stop what a test
 * started (workers) after each test, close what the file opened (producers) at its end, then stop
 * the server and delete its data. Registers itself on the test runner's hooks (jest's and vitest's
 * globals `beforeAll`/`afterEach`/`afterAll`; pass `hooks` for node:test or mocha).
 */
import { startServer, type StartOptions, type TestServer } from './server.js';

type Hook = (fn: () => Promise<void>, timeoutMs?: number) => unknown;

/** The hooks of the test runner. */
export interface SuiteHooks {
  beforeAll: Hook;
  afterEach: Hook;
  afterAll: Hook;
}

/** A {@link TestServer} that belongs to a test file (available from its first `beforeAll` on). */
export interface ServerSuite extends TestServer {
  /** Stops `value` with `stop` after the current test (e.g. a worker: `(w) => w.stop({ deadlineMs: 0 })`). */
  afterEachTest<T>(value: T, stop: (v: T) => Promise<unknown>): T;
  /** Closes `value` with `close` when the file ends, before the server stops (e.g. a producer). */
  atEnd<T>(value: T, close: (v: T) => Promise<unknown>): T;
}

function runnerHooks(): SuiteHooks {
  const g = globalThis as Partial<Record<keyof SuiteHooks, unknown>>;
  if (typeof g.beforeAll === 'function' && typeof g.afterEach === 'function' && typeof g.afterAll === 'function') {
    return { beforeAll: g.beforeAll as Hook, afterEach: g.afterEach as Hook, afterAll: g.afterAll as Hook };
  }
  throw new Error('serverSuite: no beforeAll/afterEach/afterAll globals; pass hooks (node:test: { beforeAll: before, afterEach, afterAll: after })');
}

/** Starts a server before the file's tests (options as {@link startServer}) and cleans up after them. */
export function serverSuite(opts: StartOptions & { hooks?: SuiteHooks } = {}): ServerSuite {
  const { hooks = runnerHooks(), ...start } = opts;
  let s: TestServer | undefined;
  const perTest: (() => Promise<unknown>)[] = [];
  const atEnd: (() => Promise<unknown>)[] = [];
  const server = (): TestServer => {
    if (!s) throw new Error('serverSuite: the server is not started yet (use it in hooks and tests)');
    return s;
  };
  hooks.beforeAll(async () => {
    s = await startServer(start);
  }, (start.startTimeoutMs ?? 20_000) + 10_000);
  hooks.afterEach(async () => {
    await Promise.all(perTest.splice(0).map((f) => f()));
  });
  hooks.afterAll(async () => {
    await Promise.all(atEnd.splice(0).map((f) => f()));
    await s?.dispose();
  });
  return {
    get url() {
      return server().url;
    },
    get port() {
      return server().port;
    },
    get workerAddress() {
      return server().workerAddress;
    },
    get producerAddress() {
      return server().producerAddress;
    },
    get dataDir() {
      return server().dataDir;
    },
    output: () => server().output(),
    stop: (signal) => server().stop(signal),
    restart: (signal) => server().restart(signal),
    dispose: () => server().dispose(),
    afterEachTest(value, stop) {
      perTest.push(() => stop(value));
      return value;
    },
    atEnd(value, close) {
      atEnd.push(() => close(value));
      return value;
    },
  };
}
