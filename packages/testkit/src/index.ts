/** `@codeq/testkit`: private test helpers of the SDK and CLI suites (never published). */
export * from './server.js';
export * from './tcp-proxy.js';
