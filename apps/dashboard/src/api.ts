/** The codeQ HTTP API as the dashboard uses it: bearer token from session storage, JSON in and out. */
const TOKEN_KEY = 'codeq.token';

export function getToken(): string | null {
  return sessionStorage.getItem(TOKEN_KEY);
}
export function setToken(t: string | null): void {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

/** Called when the server answers 401: the session is over. */
let onUnauthorized: () => void = () => {};
export function setUnauthorizedHandler(f: () => void): void {
  onUnauthorized = f;
}

export async function request<T>(method: string, path: string, body?: unknown, token = getToken()): Promise<T> {
  const headers: Record<string, string> = { accept: 'application/json' };
  if (token) headers['authorization'] = `Bearer ${token}`;
  if (body !== undefined) headers['content-type'] = 'application/json';
  const r = await fetch(`/v1/codeq${path}`, { method, headers, ...(body !== undefined ? { body: JSON.stringify(body) } : {}) });
  const text = await r.text();
  let json: unknown = undefined;
  try {
    json = text ? JSON.parse(text) : undefined;
  } catch {
    /* not JSON */
  }
  if (!r.ok) {
    const o = (json ?? {}) as { error?: string; code?: string };
    if (r.status === 401 && token === getToken()) onUnauthorized();
    throw new ApiError(r.status, o.error ?? `${r.status} ${r.statusText}`, o.code);
  }
  return json as T;
}

export interface Me {
  tenantId: string;
  subject: string;
  kind: 'producer' | 'worker';
  role: string;
  admin: boolean;
}

export type Status = 'PENDING' | 'DELAYED' | 'IN_PROGRESS' | 'COMPLETED' | 'FAILED' | 'CANCELLED';
export const STATUSES: Status[] = ['PENDING', 'DELAYED', 'IN_PROGRESS', 'COMPLETED', 'FAILED', 'CANCELLED'];

export interface Task {
  id: string;
  command: string;
  payload: string;
  priority?: number;
  webhook?: string;
  status: Status;
  lastKnownLocation?: string;
  workerId?: string;
  leaseUntil?: string;
  leaseId?: string;
  attempts?: number;
  maxAttempts?: number;
  error?: string;
  lastError?: string;
  cancelRequested?: boolean;
  resultKey?: string;
  tenantId?: string;
  createdAt: string;
  updatedAt: string;
  /** The current delivery's latest `ctx.progress()`: a number (0–100 by convention) or an object. */
  progress?: number | Record<string, unknown>;
}

/** One line of a task's log (`GET /tasks/:id/logs`; the server keeps the last 200). */
export interface LogLine {
  n: number;
  attempt: number;
  level: 'debug' | 'info' | 'warn' | 'error';
  message: string;
  at: string;
}

export interface TaskPage {
  tasks: Task[];
  nextCursor: string | null;
}

export interface ResultRecord {
  taskId: string;
  status: 'COMPLETED' | 'FAILED' | 'CANCELLED';
  result?: unknown;
  error?: string;
  artifacts?: { name: string; url: string }[];
  completedAt: string;
}

export interface CommandRow {
  command: string;
  ready: number;
  delayed: number;
  inProgress: number;
  dlq: number;
  paused: boolean;
}

export interface Throughput {
  bucketSeconds: number;
  minutes: number;
  buckets: { at: string; created: number; completed: number; failed: number }[];
  totals: { created: number; completed: number; failed: number };
  perSecond: { created: number; completed: number; failed: number };
}

export interface TaskQuery {
  command?: string;
  status?: string;
  createdAfter?: string;
  createdBefore?: string;
  limit?: number;
  cursor?: string | null;
  dlq?: boolean;
}

function qs(q: Record<string, string | number | boolean | null | undefined>): string {
  const p = new URLSearchParams();
  for (const [k, v] of Object.entries(q)) if (v !== undefined && v !== null && v !== '' && v !== false) p.set(k, String(v));
  const s = p.toString();
  return s ? `?${s}` : '';
}

export const api = {
  whoami: (token?: string) => request<Me>('GET', '/whoami', undefined, token ?? getToken()),
  tasks: (q: TaskQuery) => request<TaskPage>('GET', `/tasks${qs({ ...q })}`),
  task: (id: string) => request<Task>('GET', `/tasks/${encodeURIComponent(id)}`),
  logs: async (id: string): Promise<LogLine[]> => (await request<{ lines: LogLine[] }>('GET', `/tasks/${encodeURIComponent(id)}/logs?limit=200`)).lines,
  result: async (id: string): Promise<ResultRecord | null> => {
    try {
      return (await request<{ result: ResultRecord }>('GET', `/tasks/${encodeURIComponent(id)}/result`)).result;
    } catch (e) {
      if (e instanceof ApiError && e.status === 404) return null;
      throw e;
    }
  },
  cancel: (id: string) => request<Task>('POST', `/tasks/${encodeURIComponent(id)}/cancel`, {}),
  commands: () => request<{ commands: CommandRow[] }>('GET', '/admin/commands'),
  pause: (command: string) => request<{ command: string; paused: boolean }>('POST', `/admin/queues/${encodeURIComponent(command)}/pause`, {}),
  resume: (command: string) => request<{ command: string; paused: boolean }>('POST', `/admin/queues/${encodeURIComponent(command)}/resume`, {}),
  dlq: (q: { command?: string; limit?: number; cursor?: string | null }) => request<TaskPage>('GET', `/admin/dlq${qs(q)}`),
  redrive: (body: { ids: string[] } | { command: string; limit?: number }) => request<{ redriven: number; ids: string[] }>('POST', '/admin/dlq/redrive', body),
  throughput: (minutes = 15) => request<Throughput>('GET', `/admin/throughput?minutes=${minutes}`),
  /** Artifacts need the bearer token: fetch, then hand the browser a blob to save. */
  async download(url: string, name: string): Promise<void> {
    const token = getToken();
    const r = await fetch(url, { headers: token ? { authorization: `Bearer ${token}` } : {} });
    if (!r.ok) throw new ApiError(r.status, `download failed: ${r.status}`);
    const blob = await r.blob();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(blob);
    a.download = name;
    document.body.appendChild(a);
    a.click();
    a.remove();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  },
};
