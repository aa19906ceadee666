import { useEffect, useState, type FormEvent } from 'react';
import { api, getToken, setToken, setUnauthorizedHandler, type Me } from './api';
import { Link, navigate, useLocation } from './router';
import { Overview } from './pages/Overview';
import { Tasks } from './pages/Tasks';
import { TaskDetail } from './pages/TaskDetail';
import { DeadLetters } from './pages/DeadLetters';
import { Queues } from './pages/Queues';

type Theme = 'system' | 'light' | 'dark';

function useTheme(): [Theme, () => void] {
  const [theme, setTheme] = useState<Theme>(() => (localStorage.getItem('codeq.theme') as Theme | null) ?? 'system');
  useEffect(() => {
    if (theme === 'system') document.documentElement.removeAttribute('data-theme');
    else document.documentElement.setAttribute('data-theme', theme);
    localStorage.setItem('codeq.theme', theme);
  }, [theme]);
  const next = () => setTheme((t) => (t === 'system' ? 'light' : t === 'light' ? 'dark' : 'system'));
  return [theme, next];
}

function SignIn({ onSignedIn }: { onSignedIn: (me: Me, token: string) => void }) {
  const [token, setTok] = useState('');
  const [error, setError] = useState<string | null>(null);
  const [busy, setBusy] = useState(false);
  const submit = async (e: FormEvent) => {
    e.preventDefault();
    setBusy(true);
    setError(null);
    try {
      const t = token.trim();
      const me = await api.whoami(t);
      if (me.kind !== 'producer') throw new Error('this is a worker token: sign in with a producer or admin token');
      onSignedIn(me, t);
    } catch (err) {
      setError((err as Error).message);
    } finally {
      setBusy(false);
    }
  };
  return (
    <main className="signin">
      <form onSubmit={(e) => void submit(e)} className="card" aria-labelledby="signin-title">
        <h1 id="signin-title">codeQ dashboard</h1>
        <p className="muted">Sign in with a producer or admin bearer token. It is kept in this tab's session storage only.</p>
        <label htmlFor="token">Bearer token</label>
        <input id="token" name="token" type="password" autoComplete="off" required value={token} onChange={(e) => setTok(e.target.value)} autoFocus />
        {error && (
          <p className="error" role="alert">
            {error}
          </p>
        )}
        <button type="submit" className="primary" disabled={busy || !token.trim()}>
          {busy ? 'Signing in…' : 'Sign in'}
        </button>
      </form>
    </main>
  );
}

export function App() {
  const [me, setMe] = useState<Me | null>(null);
  const [checking, setChecking] = useState(() => !!getToken());
  const [theme, nextTheme] = useTheme();
  const { path, search } = useLocation();

  const signOut = () => {
    setToken(null);
    setMe(null);
  };
  useEffect(() => {
    setUnauthorizedHandler(signOut);
    if (!getToken()) return;
    api
      .whoami()
      .then(setMe)
      .catch(() => setToken(null))
      .finally(() => setChecking(false));
  }, []);

  if (checking) return <p className="muted center">Loading…</p>;
  if (!me)
    return (
      <SignIn
        onSignedIn={(m, t) => {
          setToken(t);
          setMe(m);
        }}
      />
    );

  const nav = [
    { to: '/', label: 'Overview', show: true },
    { to: '/tasks', label: 'Tasks', show: true },
    { to: '/dead-letters', label: 'Dead letters', show: me.admin },
    { to: '/queues', label: 'Queues', show: me.admin },
  ].filter((n) => n.show);
  const active = (to: string) => (to === '/' ? path === '/' || path === '' : path.startsWith(to));

  let page;
  const detail = /^\/tasks\/([^/]+)$/.exec(path);
  if (detail) page = <TaskDetail id={decodeURIComponent(detail[1]!)} me={me} />;
  else if (path.startsWith('/tasks')) page = <Tasks search={search} />;
  else if (path.startsWith('/dead-letters')) page = me.admin ? <DeadLetters /> : <Forbidden />;
  else if (path.startsWith('/queues')) page = me.admin ? <Queues /> : <Forbidden />;
  else if (path === '/' || path === '') page = <Overview me={me} />;
  else page = <NotFound />;

  return (
    <div className="layout">
      <a href="#main" className="skip">
        Skip to content
      </a>
      <header className="top">
        <Link to="/" className="brand">
          codeQ
        </Link>
        <nav aria-label="Main">
          <ul>
            {nav.map((n) => (
              <li key={n.to}>
                <Link to={n.to} aria-current={active(n.to) ? 'page' : undefined}>
                  {n.label}
                </Link>
              </li>
            ))}
          </ul>
        </nav>
        <div className="who" data-testid="who">
          <span title="tenant">
            Tenant <strong data-testid="tenant">{me.tenantId}</strong>
          </span>
          <span className="muted" title="subject and role">
            {me.subject} · {me.admin ? 'admin' : me.role.toLowerCase()}
          </span>
          <button type="button" onClick={nextTheme} aria-label={`Theme: ${theme} (change)`} title="Theme">
            {theme === 'dark' ? '☾' : theme === 'light' ? '☀' : '◐'}
          </button>
          <button
            type="button"
            onClick={() => {
              signOut();
              navigate('/', true);
            }}
          >
            Sign out
          </button>
        </div>
      </header>
      <main id="main" tabIndex={-1}>
        {page}
      </main>
    </div>
  );
}

function Forbidden() {
  return (
    <section>
      <h1>Not allowed</h1>
      <p>This page needs an admin token.</p>
    </section>
  );
}
function NotFound() {
  return (
    <section>
      <h1>Not found</h1>
      <p>
        <Link to="/">Back to the overview</Link>
      </p>
    </section>
  );
}
