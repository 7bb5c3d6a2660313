/**
 * Maildir file names (https://cr.yp.to/proto/maildir.html) with Dovecot's extensions: the unique
 * base, the `,S=<size>` and `,W=<vsize>` fields inside it, and the `:2,<flags>` info suffix whose
 * letters are the system flags (upper case) and the keywords of `dovecot-keywords` (a–z).
 */
import { hostname as osHostname } from "node:os";
import { maildirHost } from "../maildir-deliver.ts";

/** The IMAP system flags a Maildir info suffix can hold, by letter (RFC 3501 2.3.2; Maildir spec). */
export const FLAG_LETTERS: Readonly<Record<string, string>> = {
  D: "\\Draft",
  F: "\\Flagged",
  R: "\\Answered",
  S: "\\Seen",
  T: "\\Deleted",
};

/** The letter of each IMAP system flag stored in the file name (\Recent is per session, never stored). */
export const LETTER_OF_FLAG: Readonly<Record<string, string>> = {
  "\\draft": "D",
  "\\flagged": "F",
  "\\answered": "R",
  "\\seen": "S",
  "\\deleted": "T",
};

/** The longest file name a Maildir reader accepts (NAME_MAX of common file systems). */
export const FILENAME_BYTES_MAX = 255;

/** A parsed Maildir file name. */
export interface ParsedName {
  /** The unique part, before the info separator ':' (what dovecot-uidlist records). */
  readonly base: string;
  /** The flag letters of a `:2,` info suffix, sorted and without duplicates ("" when none). */
  readonly letters: string;
  /** The `,S=` file size, when present. */
  readonly size: number | undefined;
  /** The `,W=` size with CRLF line ends (RFC822.SIZE), when present. */
  readonly vsize: number | undefined;
}

const SIZE_RE = /,S=(\d{1,15})(?=[,:]|$)/;
const VSIZE_RE = /,W=(\d{1,15})(?=[,:]|$)/;

/** Sorts flag letters in ASCII order without duplicates, as the Maildir spec requires. */
export function sortLetters(letters: string): string {
  return [...new Set(letters)].filter((c) => /^[A-Za-z]$/.test(c)).sort().join("");
}

/** Parses a Maildir file name; undefined for names a reader must skip (dot files, empty, too long). */
export function parseName(name: string): ParsedName | undefined {
  if (name.length === 0 || name.startsWith(".") || name.includes("/") || Buffer.byteLength(name) > FILENAME_BYTES_MAX) {
    return undefined;
  }
  const colon = name.indexOf(":");
  const base = colon < 0 ? name : name.slice(0, colon);
  if (base.length === 0) return undefined;
  const info = colon < 0 ? "" : name.slice(colon + 1);
  const letters = info.startsWith("2,") ? sortLetters(info.slice(2)) : "";
  const s = SIZE_RE.exec(base)?.[1];
  const w = VSIZE_RE.exec(base)?.[1];
  return { base, letters, size: s === undefined ? undefined : Number(s), vsize: w === undefined ? undefined : Number(w) };
}

/** The file name in cur/ for `base` with `letters` (always with a `:2,` suffix, even when empty). */
export function curName(base: string, letters: string): string {
  return `${base}:2,${sortLetters(letters)}`;
}

/** The IMAP system flags of `letters` (letters outside FLAG_LETTERS, e.g. P or keywords, are skipped). */
export function systemFlagsOf(letters: string): string[] {
  const out: string[] = [];
  for (const c of letters) {
    const f = FLAG_LETTERS[c];
    if (f !== undefined) out.push(f);
  }
  return out;
}

/** Makes unique names for files this process writes (Maildir spec "new" style, as maildir-deliver.ts). */
export class UniqueNames {
  readonly host: string;
  #counter = 0;

  /** Names after `host` (default: this machine's host name, escaped for Maildir). */
  constructor(host: string = osHostname()) {
    this.host = maildirHost(host);
  }

  /** `<sec>.M<usec>P<pid>Q<n>.<host>,S=<size>,W=<vsize>`. */
  next(size: number, vsize: number, nowMs: number = performance.timeOrigin + performance.now()): string {
    this.#counter += 1;
    const sec = Math.floor(nowMs / 1000);
    const usec = Math.floor((nowMs - sec * 1000) * 1000);
    return `${sec}.M${usec}P${process.pid}Q${this.#counter}.${this.host},S=${size},W=${vsize}`;
  }
}

/** Orders bases by their leading seconds and microseconds, then as strings (delivery order). */
export function compareBases(a: string, b: string): number {
  const ka = baseTime(a);
  const kb = baseTime(b);
  if (ka[0] !== kb[0]) return ka[0] - kb[0];
  if (ka[1] !== kb[1]) return ka[1] - kb[1];
  return a < b ? -1 : a > b ? 1 : 0;
}

function baseTime(base: string): [number, number] {
  const m = /^(\d{1,12})\.(?:M(\d{1,7}))?/.exec(base);
  return [m?.[1] === undefined ? 0 : Number(m[1]), m?.[2] === undefined ? 0 : Number(m[2])];
}
