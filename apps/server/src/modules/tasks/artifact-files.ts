/**
 * Uploaded result artifacts on disk (issue 12 item 5): written to a temporary name first and
 * renamed to their final name only once the result is committed (a refused or failed result leaves
 * nothing behind), and deleted with their task by retention.
 */
import { randomBytes } from 'node:crypto';
import { readdir, rename, rm, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { TaskStore } from '../../domain/task-store.js';

/** Suffix of files not yet committed (never served: artifact names cannot contain '~'). */
export const PENDING_SUFFIX = '~pending';

export function pendingName(file: string): string {
  return `${file}.${randomBytes(6).toString('hex')}${PENDING_SUFFIX}`;
}

/** Move written files to their final names (after the commit). */
export async function publish(files: { tmp: string; final: string }[]): Promise<void> {
  for (const f of files) await rename(f.tmp, f.final);
}

/** Remove files of a result that was not committed. */
export async function discard(files: { tmp: string }[]): Promise<void> {
  await Promise.all(files.map((f) => unlink(f.tmp).catch(() => undefined)));
}

/**
 * Delete the artifact directories (`<root>/results/<taskId>`) of tasks that no longer exist
 * (purged by retention or cleanup). Returns the number of directories removed.
 */
export async function removeOrphanArtifacts(root: string, store: TaskStore, limit = 10_000): Promise<number> {
  const dir = join(root, 'results');
  let entries: string[];
  try {
    entries = await readdir(dir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const id of entries.slice(0, limit)) {
    // System access (tenant null): a read that changes nothing.
    const exists = await store.transition(null, id, (t) => ({ value: t !== null }));
    if (exists) continue;
    await rm(join(dir, id), { recursive: true, force: true });
    removed++;
  }
  return removed;
}
