/**
 * The `dovecot-uidlist.lock` dot-lock, taken the way Dovecot takes it so this server and a Dovecot
 * on the same Maildir never both assign UIDs: the lock file is created with O_EXCL, the new
 * uidlist is written into it and the lock is renamed over `dovecot-uidlist` (an atomic replace
 * that also releases the lock). A lock older than the stale time is broken, as Dovecot does
 * (its uidlist lock goes stale after two minutes).
 *
 * Inside one process the callers are queued on a per-directory mutex first, so sessions of this
 * server do not spin on each other's lock file.
 */
import { open, rename, stat, unlink, type FileHandle } from "node:fs/promises";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { maildirErrors } from "./errors.ts";

/** Name of the lock file (Dovecot's). */
export const UIDLIST_LOCK_NAME = "dovecot-uidlist.lock";
/** How long to wait for the lock before MAILDIR_LOCK_TIMEOUT. */
export const LOCK_TIMEOUT_MS = 10_000;
/** Age after which a lock left by a dead process is broken (Dovecot: 2 minutes). */
export const LOCK_STALE_MS = 120_000;
/** Pause between attempts while another process holds the lock. */
const LOCK_RETRY_MS = 20;

/** What the holder of the lock may do. */
export interface HeldLock {
  /** Writes `content` into the lock file and renames it over `target` (atomic replace; releases the lock). */
  replace(target: string, content: string): Promise<void>;
}

const queues = new Map<string, Promise<void>>();

/** Runs `fn` after every earlier caller with the same key has finished (an in-process mutex). */
export async function withMutex<T>(key: string, fn: () => Promise<T>): Promise<T> {
  const previous = queues.get(key) ?? Promise.resolve();
  let release = (): void => undefined;
  const mine = new Promise<void>((r) => {
    release = r;
  });
  const tail = previous.then(() => mine);
  queues.set(key, tail);
  await previous;
  try {
    return await fn();
  } finally {
    release();
    if (queues.get(key) === tail) queues.delete(key);
  }
}

/** Runs `fn` holding the uidlist lock of `dir` (in-process mutex, then the dot-lock). */
export async function withUidlistLock<T>(dir: string, fn: (lock: HeldLock) => Promise<T>, timeoutMs = LOCK_TIMEOUT_MS): Promise<T> {
  return withMutex(dir, () => withDotLock(dir, fn, timeoutMs));
}

async function withDotLock<T>(dir: string, fn: (lock: HeldLock) => Promise<T>, timeoutMs: number): Promise<T> {
  const path = join(dir, UIDLIST_LOCK_NAME);
  const handle = await acquire(path, timeoutMs);
  let renamed = false;
  const lock: HeldLock = {
    async replace(target, content) {
      await handle.truncate(0);
      await handle.write(content, 0, "utf8");
      await handle.datasync();
      await rename(path, target);
      renamed = true;
    },
  };
  try {
    return await fn(lock);
  } finally {
    await handle.close().catch(() => undefined);
    if (!renamed) await unlink(path).catch(() => undefined);
  }
}

async function acquire(path: string, timeoutMs: number): Promise<FileHandle> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await open(path, "wx", 0o600);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "EEXIST") throw maildirErrors.make("MAILDIR_IO", (e as Error).message);
    }
    const st = await stat(path).catch(() => undefined);
    if (st !== undefined && Date.now() - st.mtimeMs > LOCK_STALE_MS) {
      await unlink(path).catch(() => undefined);
      continue;
    }
    if (Date.now() >= deadline) throw maildirErrors.make("MAILDIR_LOCK_TIMEOUT", path);
    await sleep(LOCK_RETRY_MS);
  }
}
