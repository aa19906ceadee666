import { useState, type FormEvent } from 'react';
import { api, STATUSES, type TaskQuery } from '../api';
import { Link, navigate } from '../router';
import { ago, ErrorNote, Pager, StatusBadge, usePoll } from '../ui';

/** datetime-local value → ISO (local time as the browser sees it). */
const toIso = (v: string) => (v ? new Date(v).toISOString() : '');

export function Tasks({ search }: { search: URLSearchParams }) {
  const command = search.get('command') ?? '';
  const status = search.get('status') ?? '';
  const after = search.get('createdAfter') ?? '';
  const before = search.get('createdBefore') ?? '';
  const [cursors, setCursors] = useState<(string | null)[]>([null]);
  const [live, setLive] = useState(true);
  const cursor = cursors[cursors.length - 1] ?? null;
  const query: TaskQuery = { command, status, createdAfter: toIso(after), createdBefore: toIso(before), limit: 50, cursor };
  const page = usePoll(() => api.tasks(query), 3000, [command, status, after, before, cursor], live);

  const apply = (e: FormEvent<HTMLFormElement>) => {
    e.preventDefault();
    const f = new FormData(e.currentTarget);
    const p = new URLSearchParams();
    for (const k of ['command', 'status', 'createdAfter', 'createdBefore']) {
      const raw = f.get(k);
      const v = typeof raw === 'string' ? raw.trim() : '';
      if (v) p.set(k, v);
    }
    setCursors([null]);
    const s = p.toString();
    navigate(`/tasks${s ? `?${s}` : ''}`);
  };

  const tasks = page.data?.tasks ?? [];
  return (
    <section aria-labelledby="tasks-title">
      <h1 id="tasks-title">Tasks</h1>
      <form className="filters card" onSubmit={apply} aria-label="Filters" key={search.toString()}>
        <div className="field">
          <label htmlFor="f-command">Command</label>
          <input id="f-command" name="command" defaultValue={command} placeholder="any" />
        </div>
        <div className="field">
          <label htmlFor="f-status">Status</label>
          <select id="f-status" name="status" defaultValue={status}>
            <option value="">any</option>
            {STATUSES.map((s) => (
              <option key={s} value={s}>
                {s}
              </option>
            ))}
          </select>
        </div>
        <div className="field">
          <label htmlFor="f-after">Created after</label>
          <input id="f-after" name="createdAfter" type="datetime-local" defaultValue={after} />
        </div>
        <div className="field">
          <label htmlFor="f-before">Created before</label>
          <input id="f-before" name="createdBefore" type="datetime-local" defaultValue={before} />
        </div>
        <div className="field actions">
          <button type="submit" className="primary">
            Apply
          </button>
          <label className="check">
            <input type="checkbox" checked={live} onChange={(e) => setLive(e.target.checked)} /> Live refresh
          </label>
        </div>
      </form>
      <ErrorNote error={page.error} />
      <div className="scroll card">
        <table aria-label="Tasks" aria-busy={page.loading}>
          <thead>
            <tr>
              <th scope="col">Task</th>
              <th scope="col">Command</th>
              <th scope="col">Status</th>
              <th scope="col" className="num">Attempts</th>
              <th scope="col" className="hide-sm">Created</th>
              <th scope="col" className="hide-sm">Last error</th>
            </tr>
          </thead>
          <tbody>
            {tasks.length === 0 && (
              <tr>
                <td colSpan={6} className="muted">
                  {page.loading ? 'Loading…' : 'No tasks match.'}
                </td>
              </tr>
            )}
            {tasks.map((t) => (
              <tr key={t.id} data-task-id={t.id}>
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
                <td>
                  <StatusBadge status={t.status} />
                  {t.cancelRequested && <span className="muted small"> cancel requested</span>}
                </td>
                <td className="num">
                  {t.attempts ?? 0}
                  {t.maxAttempts ? `/${t.maxAttempts}` : ''}
                </td>
                <td className="hide-sm" title={t.createdAt}>
                  {ago(t.createdAt)}
                </td>
                <td className="hide-sm truncate" title={t.lastError ?? t.error ?? ''}>
                  {t.lastError ?? t.error ?? ''}
                </td>
              </tr>
            ))}
          </tbody>
        </table>
      </div>
      <Pager cursors={cursors} setCursors={setCursors} next={page.data?.nextCursor ?? null} />
    </section>
  );
}
