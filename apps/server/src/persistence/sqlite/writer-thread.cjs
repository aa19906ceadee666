// The embedded engine's writer: a worker thread that owns the write connection and commits each
// batch posted by the main thread in one transaction (group commit). Plain CommonJS on purpose:
// worker threads cannot load TypeScript, and this file is loaded as-is from src (tests) and dist.
'use strict';
const { parentPort, workerData } = require('node:worker_threads');
const Database = require('better-sqlite3');

const db = new Database(workerData.file, { timeout: 5000 });
db.pragma('journal_mode = WAL');
db.pragma(`synchronous = ${workerData.fsyncOnCommit ? 'FULL' : 'NORMAL'}`);
db.pragma('temp_store = MEMORY');

const cols = workerData.taskColumns;
const mutable = workerData.mutableColumns;
const insertTask = db.prepare(`INSERT INTO tasks (${cols.map((c) => `"${c}"`).join(', ')}) VALUES (${cols.map(() => '?').join(', ')})`);
const updateTask = db.prepare(`UPDATE tasks SET ${mutable.map((c) => `"${c}" = ?`).join(', ')} WHERE id = ?`);
const deleteTask = db.prepare('DELETE FROM tasks WHERE id = ?');
const upsertResult = db.prepare(
  `INSERT INTO results (task_id, tenant_id, status, result, error, artifacts, completed_at, lease_id, worker_id)
   VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)
   ON CONFLICT(task_id) DO UPDATE SET status = excluded.status, result = excluded.result, error = excluded.error,
     artifacts = excluded.artifacts, completed_at = excluded.completed_at, lease_id = excluded.lease_id, worker_id = excluded.worker_id`,
);
const deleteResult = db.prepare('DELETE FROM results WHERE task_id = ?');
// Task notes (progress, log lines): tables of their own, deleted with their task.
const upsertProgress = db.prepare(
  `INSERT INTO task_progress (task_id, tenant_id, attempt, progress, updated_at) VALUES (?, ?, ?, ?, ?)
   ON CONFLICT(task_id) DO UPDATE SET attempt = excluded.attempt, progress = excluded.progress, updated_at = excluded.updated_at`,
);
const deleteProgress = db.prepare('DELETE FROM task_progress WHERE task_id = ?');
const nextLogN = db.prepare('SELECT coalesce(max(n), 0) AS n FROM task_logs WHERE task_id = ?');
const insertLog = db.prepare('INSERT INTO task_logs (task_id, n, tenant_id, attempt, level, message, at) VALUES (?, ?, ?, ?, ?, ?, ?)');
const trimLogs = db.prepare('DELETE FROM task_logs WHERE task_id = ? AND n <= ?');
const deleteLogs = db.prepare('DELETE FROM task_logs WHERE task_id = ?');
// Result-webhook deliveries, committed with the transition that finishes their task (ADR 0012).
const insertOutbox = db.prepare(workerData.outboxInsert);

// Deletes first: a purged task's idempotency key may be reused by an insert of the same batch.
const commit = db.transaction((b) => {
  for (const id of b.resultDeletes) deleteResult.run(id);
  for (const id of b.deletes) {
    deleteTask.run(id);
    deleteProgress.run(id);
    deleteLogs.run(id);
  }
  for (const p of b.inserts) insertTask.run(p);
  for (const p of b.updates) updateTask.run(p);
  for (const p of b.results) upsertResult.run(p);
  for (const id of b.progressDeletes || []) deleteProgress.run(id);
  for (const p of b.progress || []) upsertProgress.run(p);
  for (const l of b.logs || []) {
    let n = nextLogN.get(l.taskId).n;
    for (const [level, message, at] of l.lines) insertLog.run(l.taskId, ++n, l.tenantId, l.attempt, level, message, at);
    if (n > l.maxLines) trimLogs.run(l.taskId, n - l.maxLines);
  }
  for (const p of b.outbox || []) insertOutbox.run(p);
});

// After a failed commit the main thread's memory is ahead of the disk: every later batch was
// computed on that state, so none is committed until the main thread has reloaded from disk and
// sent 'reset' (ADR 0005).
let halted = null;

parentPort.on('message', (msg) => {
  if (msg.type === 'close') {
    try {
      db.close();
    } finally {
      parentPort.postMessage({ type: 'closed' });
    }
    return;
  }
  if (msg.type === 'reset') {
    // Probe the write lock (waits up to the busy timeout) before accepting batches again.
    try {
      db.exec('BEGIN IMMEDIATE');
      db.exec('ROLLBACK');
      halted = null;
      parentPort.postMessage({ type: 'reset', id: msg.id });
    } catch (e) {
      parentPort.postMessage({ type: 'reset', id: msg.id, error: e && e.message ? e.message : String(e) });
    }
    return;
  }
  if (halted) {
    parentPort.postMessage({ type: 'ack', id: msg.id, error: `halted after a failed commit: ${halted}` });
    return;
  }
  try {
    commit(msg);
    parentPort.postMessage({ type: 'ack', id: msg.id });
  } catch (e) {
    halted = e && e.message ? e.message : String(e);
    parentPort.postMessage({ type: 'ack', id: msg.id, error: halted });
  }
});
parentPort.postMessage({ type: 'ready' });
