/**
 * `@codeq/testkit`: a throwaway codeQ server for tests ({@link startCodeq}), plus the lower-level
 * helpers codeQ's own SDK and CLI suites use (`startServer` with restart/crash, raw `api` calls, a
 * fault-injecting TCP proxy, packing workspace packages).
 */
export * from './codeq.js';
export * from './server.js';
export * from './tcp-proxy.js';
export * from './pack.js';
export * from './suite.js';
