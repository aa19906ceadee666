import { useState } from 'react';
import { api } from '../api';
import { CommandTable, Confirm, ErrorNote, usePoll } from '../ui';

export function Queues() {
  const cmds = usePoll(() => api.commands(), 5000, []);
  const [confirm, setConfirm] = useState<{ command: string; pause: boolean } | null>(null);
  const [error, setError] = useState<string | null>(null);
  const [note, setNote] = useState<string | null>(null);
  const rows = cmds.data?.commands ?? [];

  const run = async () => {
    const c = confirm;
    setConfirm(null);
    if (!c) return;
    setError(null);
    try {
      const out = c.pause ? await api.pause(c.command) : await api.resume(c.command);
      setNote(`${out.command} is ${out.paused ? 'paused: workers claim none of its tasks' : 'running'}.`);
    } catch (e) {
      setError((e as Error).message);
    }
    await cmds.reload();
  };

  return (
    <section aria-labelledby="queues-title">
      <h1 id="queues-title">Queues</h1>
      <p className="muted">Pausing a command stops claims of its tasks; producers can still enqueue, running tasks finish.</p>
      {note && (
        <p className="note" role="status">
          {note}
        </p>
      )}
      <ErrorNote error={error ?? cmds.error} />
      <div className="scroll card">
        <CommandTable
          label="Queues"
          rows={rows}
          loading={cmds.loading}
          action={(c) => (
            <button type="button" className={c.paused ? 'primary' : ''} onClick={() => setConfirm({ command: c.command, pause: !c.paused })}>
              {c.paused ? `Resume ${c.command}` : `Pause ${c.command}`}
            </button>
          )}
        />
      </div>
      <Confirm
        open={confirm !== null}
        title={confirm ? `${confirm.pause ? 'Pause' : 'Resume'} ${confirm.command}?` : ''}
        confirmLabel={confirm?.pause ? 'Pause' : 'Resume'}
        danger={confirm?.pause}
        onConfirm={() => void run()}
        onClose={() => setConfirm(null)}
      >
        <p>{confirm?.pause ? 'Workers will claim no more tasks of this command until it is resumed.' : 'Workers will claim its tasks again.'}</p>
      </Confirm>
    </section>
  );
}
