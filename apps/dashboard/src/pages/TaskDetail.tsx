import { useState } from 'react';
import { api, type Me } from '../api';
import { Link } from '../router';
import { ago, Confirm, ErrorNote, fmtTime, JsonBlock, StatusBadge, usePoll } from '../ui';

const FINISHED = new Set(['COMPLETED', 'FAILED', 'CANCELLED']);

export function TaskDetail({ id, me }: { id: string; me: Me }) {
  const data = usePoll(async () => ({ task: await api.task(id), result: await api.result(id), logs: await api.logs(id) }), 3000, [id]);
  const [confirm, setConfirm] = useState<'cancel' | 'redrive' | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [actionError, setActionError] = useState<string | null>(null);

  const t = data.data?.task;
  const r = data.data?.result;
  const inDlq = t?.lastKnownLocation === 'DLQ_SET' || t?.lastKnownLocation === 'DLQ';
  const act = async () => {
    const which = confirm;
    setConfirm(null);
    setActionError(null);
    try {
      if (which === 'cancel') {
        const after = await api.cancel(id);
        setNote(after.status === 'CANCELLED' ? 'Task cancelled.' : 'Cancellation requested: the worker is told at its next heartbeat.');
      } else if (which === 'redrive') {
        const out = await api.redrive({ ids: [id] });
        setNote(out.redriven ? 'Task sent back to its queue.' : 'Nothing was redriven (the task is no longer dead-lettered).');
      }
    } catch (e) {
      setActionError((e as Error).message);
    }
    await data.reload();
  };

  if (!t) {
    return (
      <section>
        <h1>Task</h1>
        <ErrorNote error={data.error} />
        {!data.error && <p className="muted">Loading…</p>}
        <Link to="/tasks">← All tasks</Link>
      </section>
    );
  }
  const lastError = t.lastError ?? t.error ?? r?.error;
  return (
    <section aria-labelledby="task-title">
      <p>
        <Link to="/tasks">← All tasks</Link>
      </p>
      <div className="row between wrap">
        <h1 id="task-title">
          {t.command} <span className="mono small muted">{t.id}</span>
        </h1>
        <div className="row">
          {!FINISHED.has(t.status) && !t.cancelRequested && (
            <button type="button" className="danger" onClick={() => setConfirm('cancel')}>
              Cancel task
            </button>
          )}
          {me.admin && inDlq && (
            <button type="button" className="primary" onClick={() => setConfirm('redrive')}>
              Redrive
            </button>
          )}
        </div>
      </div>
      {note && (
        <p className="note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={actionError} />
      <div className="grid2">
        <div className="card">
          <h2>State</h2>
          <dl className="kv">
            <dt>Status</dt>
            <dd data-testid="task-status">
              <StatusBadge status={t.status} />
              {t.cancelRequested && <span className="muted small"> cancel requested</span>}
              {inDlq && <span className="badge badge-failed">dead letter</span>}
            </dd>
            <dt>Location</dt>
            <dd className="mono">{t.lastKnownLocation ?? '—'}</dd>
            <dt>Attempts</dt>
            <dd>
              {t.attempts ?? 0}
              {t.maxAttempts ? ` of ${t.maxAttempts}` : ''}
            </dd>
            <dt>Progress</dt>
            <dd data-testid="task-progress">{t.progress === undefined ? '—' : typeof t.progress === 'number' ? `${t.progress}%` : <span className="mono">{JSON.stringify(t.progress)}</span>}</dd>
            <dt>Priority</dt>
            <dd>{t.priority ?? 0}</dd>
            <dt>Lease holder</dt>
            <dd className="mono" data-testid="lease-holder">
              {t.workerId ?? '—'}
            </dd>
            <dt>Lease expires</dt>
            <dd data-testid="lease-until">{t.leaseUntil ? `${fmtTime(t.leaseUntil)} (${ago(t.leaseUntil)})` : '—'}</dd>
            <dt>Created</dt>
            <dd>{fmtTime(t.createdAt)}</dd>
            <dt>Updated</dt>
            <dd>{fmtTime(t.updatedAt)}</dd>
            <dt>Webhook</dt>
            <dd className="mono break">{t.webhook ?? '—'}</dd>
          </dl>
        </div>
        <div className="card">
          <h2>Last error</h2>
          {lastError ? <pre className="json errortext">{lastError}</pre> : <p className="muted">None.</p>}
          <h2>Result</h2>
          {r ? (
            <>
              <p>
                <StatusBadge status={r.status} /> at {fmtTime(r.completedAt)}
              </p>
              {r.result !== undefined && <JsonBlock value={r.result} label="Result" />}
              {r.artifacts && r.artifacts.length > 0 && (
                <>
                  <h3>Artifacts</h3>
                  <ul className="artifacts">
                    {r.artifacts.map((a) => (
                      <li key={a.name}>
                        {a.url.startsWith('/') ? (
                          <button type="button" className="link" onClick={() => void api.download(a.url, a.name).catch((e: Error) => setActionError(e.message))}>
                            Download {a.name}
                          </button>
                        ) : (
                          <a href={a.url} rel="noreferrer noopener" target="_blank">
                            {a.name}
                          </a>
                        )}
                      </li>
                    ))}
                  </ul>
                </>
              )}
            </>
          ) : (
            <p className="muted">No result yet.</p>
          )}
        </div>
      </div>
      <div className="card">
        <h2>Log</h2>
        {data.data?.logs.length ? (
          <pre className="json" data-testid="task-log" aria-label="Task log">
            {data.data.logs.map((l) => `${fmtTime(l.at)}  #${l.attempt}  ${l.level.toUpperCase().padEnd(5)}  ${l.message}`).join('\n')}
          </pre>
        ) : (
          <p className="muted">No log lines. Workers write them with ctx.log() and ctx.logger.</p>
        )}
      </div>
      <div className="card">
        <h2>Payload</h2>
        <JsonBlock value={t.payload} label="Payload" />
      </div>
      <Confirm
        open={confirm !== null}
        title={confirm === 'cancel' ? 'Cancel this task?' : 'Redrive this task?'}
        confirmLabel={confirm === 'cancel' ? 'Cancel task' : 'Redrive'}
        danger={confirm === 'cancel'}
        onConfirm={() => void act()}
        onClose={() => setConfirm(null)}
      >
        <p>
          {confirm === 'cancel'
            ? 'A queued task is cancelled at once; a running one is asked to stop at its next heartbeat.'
            : 'The task goes back to its queue with its attempts reset.'}
        </p>
      </Confirm>
    </section>
  );
}
