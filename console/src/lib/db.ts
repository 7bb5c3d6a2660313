/**
 * The console's IndexedDB: identities (with their non-extractable WebCrypto keys), the receipts
 * of the creator's commands, and the last checkpoint this browser saw. Nothing here leaves the
 * browser; a CryptoKey stored with extractable=false can sign but its private bytes cannot be
 * read back, not even by this page.
 */

/** The database name and version. */
export const DB_NAME = "nexus-console";
const DB_VERSION = 1;
/** Most receipts kept (oldest dropped first). */
export const RECEIPTS_MAX = 10_000;

/** A stored identity. */
export interface StoredIdentity {
  readonly id: string;
  readonly name?: string;
  /** Current key sequence number (0 after inception). */
  readonly seq: number;
  /** The key event log (signed events) as the CLI file holds it. */
  readonly kel: readonly unknown[];
  /** Standard base64 of the raw current public key. */
  readonly publicKey: string;
  readonly current: CryptoKey;
  /** The pre-committed next key (for a later rotation), never used to sign commands. */
  readonly next?: CryptoKey;
  readonly source: "browser" | "cli-file";
  readonly createdAt: string;
}

/** A receipt kept with what it answered. */
export interface StoredReceipt {
  readonly key?: number;
  readonly identity: string;
  readonly type: string;
  readonly imvu?: string;
  readonly at: string;
  readonly receipt: Receipt;
}

/** A receipt as the API sends it (POST /v1/commands). */
export interface Receipt {
  readonly index: string;
  readonly leafHash: string;
  readonly outcome: "applied" | "denied";
  readonly gates: readonly { readonly gate: number; readonly pass: boolean; readonly reason: string }[];
  readonly digest: string;
  readonly treeSize: string;
  readonly checkpoint: string;
  readonly inclusionProof: readonly string[];
}

/** The last checkpoint seen by this browser, pinned to a verifier key. */
export interface SeenCheckpoint {
  readonly verifierKey: string;
  readonly size: string;
  readonly root: string; // hex
  readonly note: string;
  readonly seenAt: string;
}

let opened: Promise<IDBDatabase> | undefined;

function db(): Promise<IDBDatabase> {
  opened ??= new Promise((resolve, reject) => {
    const req = indexedDB.open(DB_NAME, DB_VERSION);
    req.onupgradeneeded = () => {
      const d = req.result;
      if (!d.objectStoreNames.contains("identities")) d.createObjectStore("identities", { keyPath: "id" });
      if (!d.objectStoreNames.contains("receipts")) d.createObjectStore("receipts", { keyPath: "key", autoIncrement: true });
      if (!d.objectStoreNames.contains("meta")) d.createObjectStore("meta");
    };
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB did not open"));
  });
  return opened;
}

function done<T>(req: IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    req.onsuccess = () => resolve(req.result);
    req.onerror = () => reject(req.error ?? new Error("IndexedDB request failed"));
  });
}

async function store(name: string, mode: IDBTransactionMode): Promise<IDBObjectStore> {
  return (await db()).transaction(name, mode).objectStore(name);
}

/** Every stored identity. */
export async function listIdentities(): Promise<StoredIdentity[]> {
  return done((await store("identities", "readonly")).getAll() as IDBRequest<StoredIdentity[]>);
}

/** One stored identity. */
export async function getIdentity(id: string): Promise<StoredIdentity | undefined> {
  return done((await store("identities", "readonly")).get(id) as IDBRequest<StoredIdentity | undefined>);
}

/** Stores (or replaces) an identity. */
export async function putIdentity(i: StoredIdentity): Promise<void> {
  await done((await store("identities", "readwrite")).put(i));
}

/** Forgets an identity and its keys (irreversible for a browser key). */
export async function deleteIdentity(id: string): Promise<void> {
  await done((await store("identities", "readwrite")).delete(id));
}

/** Keeps a receipt. */
export async function addReceipt(r: StoredReceipt): Promise<void> {
  const s = await store("receipts", "readwrite");
  await done(s.add(r));
  const count = await done(s.count());
  if (count > RECEIPTS_MAX) {
    const first = await done(s.openCursor());
    first?.delete();
  }
}

/** The receipts of one identity, newest first. */
export async function listReceipts(identity: string): Promise<StoredReceipt[]> {
  const all = await done((await store("receipts", "readonly")).getAll() as IDBRequest<StoredReceipt[]>);
  return all.filter((r) => r.identity === identity).reverse();
}

/** A value of the meta store. */
export async function getMeta<T>(key: string): Promise<T | undefined> {
  return done((await store("meta", "readonly")).get(key) as IDBRequest<T | undefined>);
}

/** Sets a value of the meta store. */
export async function setMeta(key: string, value: unknown): Promise<void> {
  await done((await store("meta", "readwrite")).put(value, key));
}
