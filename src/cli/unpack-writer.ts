/**
 * Writing a downloaded archive's files as they arrive (`nexus imvu exit`, docs/exit.md).
 *
 * Every file's bytes are copied into 1 MiB slots of page-aligned memory that are reused. A file
 * that ends inside its first slot (most Maildir messages) is written at once, synchronously. A
 * larger file is written slot by slot through libuv's thread pool, on the other core while this
 * one reads, parses and hashes, with O_DIRECT where the file system takes it: the page cache
 * then allocates nothing. Measured here (docs/performance.md, "IMVU lifecycle"), 1 GiB written
 * through the page cache cost 1.7 to 4.3 s of kernel time on fresh memory (a VM's first touch of
 * pages); with O_DIRECT 0.13 s. A file system that refuses O_DIRECT (EINVAL) gets plain writes.
 */
import { constants, writeFileSync } from "node:fs";
import { open as openFile, type FileHandle } from "node:fs/promises";

/** Bytes of one slot: the size of each write of a large file. */
export const UNPACK_SLOT_BYTES = 1 << 20;
/** Bytes written behind the download at most before reading from the socket waits. */
export const UNPACK_BYTES_IN_FLIGHT_MAX = 32 * 1024 * 1024;
/** O_DIRECT needs buffers, offsets and lengths aligned to the device's logical block (512 or 4096). */
const DIRECT_ALIGN = 4096;
/** Slots allocated at a time. */
const SLOTS_PER_GROWTH = 8;
/** A WebAssembly page. */
const WASM_PAGE_BYTES = 65_536;
/** Node's WebAssembly.Memory (a runtime global the project's "lib" setting does not declare). */
const WasmMemory = (globalThis as unknown as { WebAssembly: { Memory: new (d: { initial: number; maximum: number }) => { buffer: ArrayBuffer } } }).WebAssembly.Memory;

/**
 * Reused 1 MiB buffers that start on a page boundary: carved from WebAssembly memories (whose
 * buffers V8 maps page-aligned), since a Node Buffer's address is not known to JavaScript.
 */
export class SlotPool {
  readonly #free: Buffer[] = [];

  take(): Buffer {
    if (this.#free.length === 0) {
      const pages = (SLOTS_PER_GROWTH * UNPACK_SLOT_BYTES) / WASM_PAGE_BYTES;
      const all = Buffer.from(new WasmMemory({ initial: pages, maximum: pages }).buffer);
      for (let i = 0; i < SLOTS_PER_GROWTH; i++) this.#free.push(all.subarray(i * UNPACK_SLOT_BYTES, (i + 1) * UNPACK_SLOT_BYTES));
    }
    return this.#free.pop() as Buffer;
  }

  give(slot: Buffer): void {
    this.#free.push(slot);
  }
}

/** The writes of the download's large files under way: bounded, and the first failure kept. */
export class WriteBehind {
  readonly pool = new SlotPool();
  /** Whether large files are tried with O_DIRECT first (tests turn it off to exercise plain writes). */
  readonly direct: boolean;
  #bytes = 0;
  #failure: unknown;
  #wake: (() => void) | undefined;
  readonly #pending = new Set<Promise<unknown>>();

  constructor(opts: { direct?: boolean } = {}) {
    this.direct = opts.direct ?? true;
  }

  /** Tracks `p`, which holds `bytes` of the download until it settles. */
  track<T>(p: Promise<T>, bytes: number): Promise<T | undefined> {
    this.#bytes += bytes;
    const settled = p.then(
      (v) => v,
      (e: unknown) => {
        this.#failure ??= e;
        return undefined;
      },
    );
    this.#pending.add(settled);
    void settled.finally(() => {
      this.#pending.delete(settled);
      this.#bytes -= bytes;
      if (this.#wake !== undefined && this.#bytes <= UNPACK_BYTES_IN_FLIGHT_MAX) {
        const w = this.#wake;
        this.#wake = undefined;
        w();
      }
    });
    return settled;
  }

  /** Resolves once the writes in flight are under the bound; throws the first failure. */
  async room(): Promise<void> {
    while (this.#bytes > UNPACK_BYTES_IN_FLIGHT_MAX && this.#failure === undefined) await new Promise<void>((r) => (this.#wake = r));
    if (this.#failure !== undefined) throw this.#failure;
  }

  /** Waits for every write; throws the first failure. */
  async drain(): Promise<void> {
    while (this.#pending.size > 0) await Promise.all([...this.#pending]);
    if (this.#failure !== undefined) throw this.#failure;
  }
}

/** An open large file: direct while the file system takes O_DIRECT. */
interface Target {
  fh: FileHandle;
  direct: boolean;
}

const isEinval = (e: unknown): boolean => (e as { code?: unknown } | null)?.code === "EINVAL";

/** Creates `path` (never overwrites), with O_DIRECT when asked and the file system takes it. */
async function create(path: string, direct: boolean): Promise<Target> {
  if (!direct) return { fh: await openFile(path, "wx", 0o600), direct: false };
  try {
    return { fh: await openFile(path, constants.O_WRONLY | constants.O_CREAT | constants.O_EXCL | constants.O_DIRECT, 0o600), direct: true };
  } catch (e) {
    // EINVAL comes after O_EXCL's check: the file is the one this call just created.
    if (!isEinval(e)) throw e;
    return { fh: await openFile(path, "r+"), direct: false };
  }
}

/** Writes `len` bytes of `slot` at `position`; a direct write the file system refuses is done again plainly. */
async function writeSlot(path: string, t: Target, slot: Buffer, len: number, position: number): Promise<void> {
  if (t.direct) {
    const padded = Math.ceil(len / DIRECT_ALIGN) * DIRECT_ALIGN;
    try {
      const { bytesWritten } = await t.fh.write(slot, 0, padded, position);
      if (bytesWritten === padded) return;
    } catch (e) {
      if (!isEinval(e)) throw e;
    }
    await t.fh.close();
    t.fh = await openFile(path, "r+");
    t.direct = false;
  }
  for (let off = 0; off < len; ) off += (await t.fh.write(slot, off, len - off, position + off)).bytesWritten;
}

/** One file of the download, written as its slots fill; never overwrites. */
export class UnpackedFile {
  readonly #path: string;
  readonly #behind: WriteBehind;
  #slot: Buffer | undefined;
  #fill = 0;
  /** Bytes of the file handed to writes so far. */
  #handed = 0;
  /** The file once it outgrew one slot: each write chained on the one before. */
  #chain: Promise<Target | undefined> | undefined;

  constructor(path: string, behind: WriteBehind) {
    this.#path = path;
    this.#behind = behind;
  }

  write(chunk: Buffer): void {
    for (let off = 0; off < chunk.length; ) {
      this.#slot ??= this.#behind.pool.take();
      const n = chunk.copy(this.#slot, this.#fill, off);
      this.#fill += n;
      off += n;
      if (this.#fill === this.#slot.length) this.#flush();
    }
  }

  #flush(): void {
    const slot = this.#slot as Buffer;
    const len = this.#fill;
    const position = this.#handed;
    this.#slot = undefined;
    this.#fill = 0;
    this.#handed += len;
    const path = this.#path;
    const pool = this.#behind.pool;
    const before = this.#chain ?? this.#behind.track(create(path, this.#behind.direct), 0);
    this.#chain = this.#behind.track(
      before.then(async (t) => {
        if (t === undefined) return undefined; // an earlier step failed: the failure is kept
        try {
          await writeSlot(path, t, slot, len, position);
        } catch (e) {
          await t.fh.close();
          throw e;
        } finally {
          pool.give(slot);
        }
        return t;
      }),
      len,
    );
  }

  close(): void {
    if (this.#chain === undefined) {
      // A file within one slot: one open, write and close.
      writeFileSync(this.#path, this.#slot === undefined ? new Uint8Array(0) : this.#slot.subarray(0, this.#fill), { flag: "wx", mode: 0o600 });
      if (this.#slot !== undefined) this.#behind.pool.give(this.#slot);
      this.#slot = undefined;
      return;
    }
    if (this.#fill > 0) this.#flush();
    const size = this.#handed;
    const done = this.#chain.then(async (t) => {
      if (t === undefined) return;
      try {
        await t.fh.truncate(size); // a direct last write was padded to the alignment
      } finally {
        await t.fh.close();
      }
    });
    this.#chain = undefined;
    void this.#behind.track(done, 0);
  }

  /** Closes the file once its writes are done (after a failure part-way). */
  abort(): void {
    if (this.#slot !== undefined) this.#behind.pool.give(this.#slot);
    this.#slot = undefined;
    if (this.#chain !== undefined) void this.#behind.track(this.#chain.then((t) => t?.fh.close()), 0);
    this.#chain = undefined;
  }
}
