// Pluggable transports for the bench's producer and worker processes.
//
// A transport module exports:
//   name                                   'http' | 'grpc' | …
//   describe(cfg)          -> Promise<obj> client/library description for the JSON output
//   preflight(cfg)         -> Promise      side-effect-free check that the server answers and accepts the token
//   createProducer(cfg, {inflight})
//                          -> Promise<{create(payload): Promise, close(): Promise, stats?(): obj}>
//                             create() resolves once the server acknowledged the task
//   createWorker(cfg, {concurrency, onComplete(payload), onError(err), isDone()})
//                          -> Promise<{start(): Promise, close(): Promise, stats?(): obj}>
//                             concurrency slots each claim one task, run a no-op, report COMPLETED,
//                             and call onComplete(payload) only after the server acknowledged the result
// cfg = {url, token, command, leaseSeconds, waitSeconds, client, workerAddr, producerAddr}
//
// 'http' = REST create / long-poll claim / result; 'grpc' = the producer and worker streams
// (workerAddr / producerAddr, generated stubs from packages/proto/dist).
const TRANSPORTS = {
  http: () => import('./http.mjs'),
  grpc: () => import('./grpc.mjs'),
};

export async function loadTransport(mode) {
  const load = TRANSPORTS[mode];
  if (!load) throw new Error(`unknown --mode ${mode}; known: ${Object.keys(TRANSPORTS).join(', ')}`);
  return load();
}
