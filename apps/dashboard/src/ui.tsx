/** Small shared pieces: polling, status badges, JSON blocks, confirmation dialog, SVG chart. */
import { useCallback, useEffect, useRef, useState, type ReactNode } from 'react';
import type { CommandRow, Throughput } from './api';

/** Load `f` now and every `ms` while `live`; reload() on demand. */
export function usePoll<T>(f: () => Promise<T>, ms: number, deps: unknown[], live = true) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [loading, setLoading] = useState(true);
  const fn = useRef(f);
  fn.current = f;
  const seq = useRef(0);
  const reload = useCallback(async () => {
    const n = ++seq.current;
    try {
      const d = await fn.current();
      if (n === seq.current) {
        setData(d);
        setError(null);
      }
    } catch (e) {
      if (n === seq.current) setError((e as Error).message);
    } finally {
      if (n === seq.current) setLoading(false);
    }
  }, []);
  useEffect(() => {
    setLoading(true);
    void reload();
    if (!live) return;
    const t = setInterval(() => void reload(), ms);
    return () => clearInterval(t);
  }, [...deps, live, ms, reload]);
  return { data, error, loading, reload };
}

export function StatusBadge({ status }: { status: string }) {
  return <span className={`badge badge-${status.toLowerCase()}`}>{status.replace('_', ' ')}</span>;
}

export function fmtTime(iso?: string): string {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return iso;
  return d.toLocaleString(undefined, { hour12: false });
}

export function ago(iso?: string): string {
  if (!iso) return '';
  const s = Math.round((Date.now() - new Date(iso).getTime()) / 1000);
  if (s < -1) return `in ${fmtDur(-s)}`;
  return `${fmtDur(Math.max(0, s))} ago`;
}
function fmtDur(s: number): string {
  if (s < 60) return `${s}s`;
  if (s < 3600) return `${Math.floor(s / 60)}m`;
  if (s < 86400) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86400)}d`;
}

/** Pretty-prints JSON text or a value. */
export function JsonBlock({ value, label }: { value: unknown; label: string }) {
  let text: string;
  if (typeof value === 'string') {
    try {
      text = JSON.stringify(JSON.parse(value), null, 2);
    } catch {
      text = value;
    }
  } else text = JSON.stringify(value, null, 2);
  return (
    <pre className="json" tabIndex={0} aria-label={label}>
      {text}
    </pre>
  );
}

/** Keyset paging: `cursors` is the stack of page cursors (null = first page); `next` the page's nextCursor. */
export function Pager({ cursors, setCursors, next }: { cursors: (string | null)[]; setCursors: (f: (c: (string | null)[]) => (string | null)[]) => void; next: string | null }) {
  return (
    <nav className="row pager" aria-label="Pages">
      <button type="button" disabled={cursors.length <= 1} onClick={() => setCursors((c) => c.slice(0, -1))}>
        ← Newer
      </button>
      <span className="muted">Page {cursors.length}</span>
      <button type="button" disabled={!next} onClick={() => setCursors((c) => [...c, next])}>
        Older →
      </button>
    </nav>
  );
}

export function ErrorNote({ error }: { error: string | null }) {
  if (!error) return null;
  return (
    <p className="error" role="alert">
      {error}
    </p>
  );
}

/** A modal confirmation (native <dialog>: focus trap and Escape for free). */
export function Confirm({ open, title, children, confirmLabel, danger, onConfirm, onClose }: { open: boolean; title: string; children?: ReactNode; confirmLabel: string; danger?: boolean; onConfirm: () => void; onClose: () => void }) {
  const ref = useRef<HTMLDialogElement>(null);
  useEffect(() => {
    const d = ref.current;
    if (!d) return;
    if (open && !d.open) d.showModal();
    if (!open && d.open) d.close();
  }, [open]);
  return (
    <dialog ref={ref} onClose={onClose} aria-labelledby="confirm-title" className="dialog">
      <h2 id="confirm-title">{title}</h2>
      <div>{children}</div>
      <div className="row end">
        <button type="button" onClick={onClose}>
          Cancel
        </button>
        <button type="button" className={danger ? 'danger' : 'primary'} onClick={onConfirm} autoFocus>
          {confirmLabel}
        </button>
      </div>
    </dialog>
  );
}

/** Created / completed / failed per bucket as three lines (hand-drawn SVG). */
export function ThroughputChart({ data }: { data: Throughput }) {
  const W = 640;
  const H = 160;
  const P = 24;
  const b = data.buckets;
  const max = Math.max(1, ...b.map((x) => Math.max(x.created, x.completed, x.failed)));
  const x = (i: number) => (i * W) / Math.max(1, b.length - 1);
  const y = (v: number) => H - P - (v * (H - 2 * P)) / max;
  const line = (k: 'created' | 'completed' | 'failed') => b.map((p, i) => `${i ? 'L' : 'M'}${x(i).toFixed(1)},${y(p[k]).toFixed(1)}`).join(' ');
  const first = b[0]?.at;
  const summary = `Last ${data.minutes} minutes: ${data.totals.created} created, ${data.totals.completed} completed, ${data.totals.failed} failed (per ${data.bucketSeconds} s bucket, peak ${max}).`;
  return (
    <figure className="chart">
      <div className="chart-max" aria-hidden="true">
        {max}
      </div>
      <svg viewBox={`0 0 ${W} ${H}`} role="img" aria-label={summary} preserveAspectRatio="none">
        <line x1={0} y1={H - P} x2={W} y2={H - P} className="axis" />
        <line x1={0} y1={P} x2={W} y2={P} className="grid" />
        <path d={line('created')} className="series created" />
        <path d={line('completed')} className="series completed" />
        <path d={line('failed')} className="series failed" />
      </svg>
      <div className="row between chart-x" aria-hidden="true">
        <span>{first ? new Date(first).toLocaleTimeString(undefined, { hour12: false, hour: '2-digit', minute: '2-digit' }) : ''}</span>
        <span>now</span>
      </div>
      <figcaption>
        <span className="key created">created</span> <span className="key completed">completed</span> <span className="key failed">failed</span> per {data.bucketSeconds} s
      </figcaption>
    </figure>
  );
}

/** One row per command: depths and the paused state. `name` renders the command cell (a link on
 * the overview); `action` adds a last column (the pause/resume button on the Queues page). */
export function CommandTable({ label, rows, loading, name, dlq, action }: { label: string; rows: CommandRow[]; loading: boolean; name?: (c: CommandRow) => ReactNode; dlq?: (c: CommandRow) => ReactNode; action?: (c: CommandRow) => ReactNode }) {
  const cols = action ? 7 : 6;
  return (
    <table aria-label={label}>
      <thead>
        <tr>
          <th scope="col">Command</th>
          <th scope="col" className="num">Ready</th>
          <th scope="col" className="num">Delayed</th>
          <th scope="col" className="num">In progress</th>
          <th scope="col" className="num">DLQ</th>
          <th scope="col">State</th>
          {action && (
            <th scope="col">
              <span className="sr-only">Action</span>
            </th>
          )}
        </tr>
      </thead>
      <tbody>
        {rows.length === 0 && (
          <tr>
            <td colSpan={cols} className="muted">
              {loading ? 'Loading…' : 'No commands yet.'}
            </td>
          </tr>
        )}
        {rows.map((c) => (
          <tr key={c.command} data-command={c.command}>
            <th scope="row">{name ? name(c) : c.command}</th>
            <td className="num">{c.ready}</td>
            <td className="num">{c.delayed}</td>
            <td className="num">{c.inProgress}</td>
            <td className="num">{dlq ? dlq(c) : c.dlq}</td>
            <td>{c.paused ? <span className="badge badge-paused">paused</span> : <span className="badge badge-running">running</span>}</td>
            {action && <td>{action(c)}</td>}
          </tr>
        ))}
      </tbody>
    </table>
  );
}
