import { useState } from 'react';
import { api } from '../api';
import { Link, navigate, useLocation } from '../router';
import { ago, Confirm, ErrorNote, Pager, usePoll } from '../ui';

export function DeadLetters() {
  const { search } = useLocation();
  const command = search.get('command') ?? '';
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const cursor = cursors[cursors.length - 1] ?? null;
  const page = usePoll(() => api.dlq({ command, limit: 50, cursor }), 5000, [command, cursor]);
  const cmds = usePoll(() => api.commands(), 5000, []);
  const [selected, setSelected] = useState<Set<string>>(new Set());
  const [confirm, setConfirm] = useState<{ kind: 'ids' } | { kind: 'all'; command: string; count: number } | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const [error, setError] = useState<string | null>(null);

  const tasks = page.data?.tasks ?? [];
  const withDlq = (cmds.data?.commands ?? []).filter((c) => c.dlq > 0);
  const toggle = (id: string) =>
    setSelected((s) => {
      const n = new Set(s);
      if (n.has(id)) n.delete(id);
      else n.add(id);
      return n;
    });
  const allSelected = tasks.length > 0 && tasks.every((t) => selected.has(t.id));

  const run = async () => {
    const c = confirm;
    setConfirm(null);
    setError(null);
    try {
      if (c?.kind === 'ids') {
        const out = await api.redrive({ ids: [...selected] });
        setNote(`Redriven: ${out.redriven} task(s).`);
        setSelected(new Set());
      } else if (c?.kind === 'all') {
        const out = await api.redrive({ command: c.command, limit: Math.min(1000, Math.max(1, c.count)) });
        setNote(`Redriven: ${out.redriven} task(s) of ${c.command}.`);
      }
    } catch (e) {
      setError((e as Error).message);
    }
    await Promise.all([page.reload(), cmds.reload()]);
  };

  return (
    <section aria-labelledby="dlq-title">
      <h1 id="dlq-title">Dead letters</h1>
      <div className="card">
        <h2>By command</h2>
        {withDlq.length === 0 ? (
          <p className="muted">{cmds.loading ? 'Loading…' : 'No dead-lettered tasks.'}</p>
        ) : (
          <ul className="chips">
            {withDlq.map((c) => (
              <li key={c.command} className="chip">
                <Link to={`/dead-letters?command=${encodeURIComponent(c.command)}`} aria-current={c.command === command ? 'true' : undefined}>
                  {c.command} <strong>{c.dlq}</strong>
                </Link>
                <button type="button" onClick={() => setConfirm({ kind: 'all', command: c.command, count: c.dlq })} aria-label={`Redrive all ${c.dlq} dead letters of ${c.command}`}>
                  Redrive all
                </button>
              </li>
            ))}
            {command && (
              <li>
                <button type="button" className="link" onClick={() => navigate('/dead-letters')}>
                  Show all commands
                </button>
              </li>
            )}
          </ul>
        )}
      </div>
      {note && (
        <p className="note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={error ?? page.error} />
      <div className="row between wrap">
        <p className="muted">{command ? `Command ${command}` : 'All commands'} · newest first</p>
        <button type="button" className="primary" disabled={selected.size === 0} onClick={() => setConfirm({ kind: 'ids' })}>
          Redrive selected ({selected.size})
        </button>
      </div>
      <div className="scroll card">
        <table aria-label="Dead-lettered tasks">
          <thead>
            <tr>
              <th scope="col" className="sel">
                <input
                  type="checkbox"
                  aria-label="Select all on this page"
                  checked={allSelected}
                  onChange={() => setSelected(allSelected ? new Set() : new Set(tasks.map((t) => t.id)))}
                />
              </th>
              <th scope="col">Task</th>
              <th scope="col">Command</th>
              <th scope="col" className="num">Attempts</th>
              <th scope="col">Last error</th>
              <th scope="col" className="hide-sm">Updated</th>
            </tr>
          </thead>
          <tbody>
            {tasks.length === 0 && (
              <tr>
                <td colSpan={6} className="muted">
                  {page.loading ? 'Loading…' : 'Empty.'}
                </td>
              </tr>
            )}
            {tasks.map((t) => (
              <tr key={t.id} data-task-id={t.id}>
                <td>
                  <input type="checkbox" aria-label={`Select task ${t.id}`} checked={selected.has(t.id)} onChange={() => toggle(t.id)} />
                </td>
                <td>
                  <Link to={`/tasks/${encodeURIComponent(t.id)}`} className="mono small nowrap" title={t.id}>
                    <span className="hide-sm">{t.id.slice(0, -12)}</span>
                    <span className="show-sm" aria-hidden="true">
                      …
                    </span>
                    {t.id.slice(-12)}
                  </Link>
                </td>
                <td>{t.command}</td>
                <td className="num">{t.attempts ?? 0}</td>
                <td className="truncate" title={t.lastError ?? t.error ?? ''}>
                  {t.lastError ?? t.error ?? ''}
                </td>
                <td className="hide-sm">{ago(t.updatedAt)}</td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager cursors={cursors} setCursors={setCursors} next={page.data?.nextCursor ?? null} />
      <Confirm
        open={confirm !== null}
        title={confirm?.kind === 'all' ? `Redrive all dead letters of ${confirm.command}?` : `Redrive ${selected.size} task(s)?`}
        confirmLabel="Redrive"
        onConfirm={() => void run()}
        onClose={() => setConfirm(null)}
      >
        <p>The tasks go back to their queues with their attempts reset.</p>
      </Confirm>
    </section>
  );
}
