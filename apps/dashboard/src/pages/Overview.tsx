import { useState } from 'react';
import { api, type Me } from '../api';
import { Link } from '../router';
import { CommandTable, ErrorNote, ThroughputChart, usePoll } from '../ui';

export function Overview({ me }: { me: Me }) {
  const [minutes, setMinutes] = useState(15);
  const tp = usePoll(() => api.throughput(minutes), 5000, [minutes]);
  const cmds = usePoll(() => (me.admin ? api.commands() : Promise.resolve(null)), 5000, [me.admin]);
  const rows = cmds.data?.commands ?? [];
  return (
    <section aria-labelledby="overview-title">
      <h1 id="overview-title">Overview</h1>
      <div className="stats" aria-label="Throughput over the last minute">
        <Stat label="Created / s" value={tp.data?.perSecond.created} testId="rate-created" />
        <Stat label="Completed / s" value={tp.data?.perSecond.completed} testId="rate-completed" />
        <Stat label="Failed / s" value={tp.data?.perSecond.failed} testId="rate-failed" />
        <Stat label={`Created (${minutes} min)`} value={tp.data?.totals.created} testId="total-created" />
        <Stat label={`Completed (${minutes} min)`} value={tp.data?.totals.completed} testId="total-completed" />
      </div>
      <ErrorNote error={tp.error} />
      <div className="card">
        <div className="row between wrap">
          <h2>Throughput, last {minutes} minutes</h2>
          <label className="check">
            Window{' '}
            <select value={minutes} onChange={(e) => setMinutes(Number(e.target.value))}>
              {[5, 15, 30, 60].map((m) => (
                <option key={m} value={m}>
                  {m} min
                </option>
              ))}
            </select>
          </label>
        </div>
        {tp.data ? <ThroughputChart data={tp.data} /> : <p className="muted">Loading…</p>}
        <p className="muted small">Counted by this server process since it started (not Prometheus).</p>
      </div>
      <div className="card">
        <h2>Commands</h2>
        {!me.admin ? (
          <p className="muted">Queue depths per command need an admin token. <Link to="/tasks">Browse your tasks</Link>.</p>
        ) : (
          <>
            <ErrorNote error={cmds.error} />
            <div className="scroll">
              <CommandTable
                label="Queue depth per command"
                rows={rows}
                loading={cmds.loading}
                name={(c) => <Link to={`/tasks?command=${encodeURIComponent(c.command)}`}>{c.command}</Link>}
                dlq={(c) => (c.dlq > 0 ? <Link to={`/dead-letters?command=${encodeURIComponent(c.command)}`}>{c.dlq}</Link> : 0)}
              />
            </div>
          </>
        )}
      </div>
    </section>
  );
}

function Stat({ label, value, testId }: { label: string; value: number | undefined; testId: string }) {
  return (
    <div className="stat">
      <div className="stat-value" data-testid={testId}>
        {value ?? '—'}
      </div>
      <div className="stat-label">{label}</div>
    </div>
  );
}
