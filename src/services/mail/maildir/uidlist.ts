/**
 * The `dovecot-uidlist` file: Dovecot's persistent map of IMAP UIDs to Maildir base names, read and
 * written in Dovecot's own format so Dovecot opening the same Maildir sees the same UIDs and
 * UIDVALIDITY (RFC 3501 2.3.1.1).
 *
 * Version 3 (Dovecot 1.1+):
 *
 *     3 V<uidvalidity> N<nextuid> G<guid, 32 hex>
 *     <uid>[ <ext>]... :<base>
 *
 * Version 1 (`1 <uidvalidity> <nextuid>`, then `<uid> <base>`) is read too. Dovecot appends lines
 * without rewriting the header, so the next UID is max(N, last UID + 1). Pure functions: no I/O.
 */
import { randomBytes } from "node:crypto";
import { maildirErrors } from "./errors.ts";

/** The largest UID (RFC 3501 2.3.1.1: unsigned non-zero 32-bit). */
export const UID_MAX = 0xffff_ffff;
/** The largest dovecot-uidlist read (about 1.5 million entries of ordinary names). */
export const UIDLIST_BYTES_MAX = 128 * 1024 * 1024;

/** One line: a UID, Dovecot's extension fields (kept as written) and the base name. */
export interface UidlistEntry {
  readonly uid: number;
  readonly base: string;
  /** Extension fields between the UID and the name (e.g. `W1234 G…`), "" when none. */
  readonly ext: string;
}

/** A parsed dovecot-uidlist. */
export interface Uidlist {
  readonly uidValidity: number;
  /** The next UID to assign: max(header N, last entry + 1). */
  readonly nextUid: number;
  /** The mailbox GUID (32 lower-case hex digits). */
  readonly guid: string;
  /** Entries in strictly ascending UID order. */
  readonly entries: readonly UidlistEntry[];
}

/** A fresh mailbox GUID (128 random bits in hex, Dovecot's G field). */
export function newGuid(): string {
  return randomBytes(16).toString("hex");
}

function bad(detail: string): Error {
  return maildirErrors.make("MAILDIR_UIDLIST_INVALID", detail);
}

function uidOf(s: string | undefined, what: string): number {
  if (s === undefined || !/^[1-9]\d{0,9}$/.test(s)) throw bad(`${what} is not a UID`);
  const n = Number(s);
  if (n > UID_MAX) throw bad(`${what} exceeds 2^32-1`);
  return n;
}

function parseHeader(line: string): { version: 1 | 3; uidValidity: number; next: number; guid: string } {
  const fields = line.split(" ");
  if (fields[0] === "1") {
    return { version: 1, uidValidity: uidOf(fields[1], "UIDVALIDITY"), next: uidOf(fields[2], "next UID"), guid: newGuid() };
  }
  if (fields[0] !== "3") throw bad(`unknown version ${JSON.stringify(fields[0] ?? "")}`);
  let uidValidity: number | undefined;
  let next: number | undefined;
  let guid: string | undefined;
  for (const f of fields.slice(1)) {
    if (f.startsWith("V")) uidValidity = uidOf(f.slice(1), "UIDVALIDITY");
    else if (f.startsWith("N")) next = uidOf(f.slice(1), "next UID");
    else if (f.startsWith("G") && /^[0-9a-f]{32}$/.test(f.slice(1))) guid = f.slice(1);
  }
  if (uidValidity === undefined || next === undefined) throw bad("header lacks V or N");
  return { version: 3, uidValidity, next, guid: guid ?? newGuid() };
}

function parseEntry(line: string, version: 1 | 3, n: number): UidlistEntry {
  const sp = line.indexOf(" ");
  if (sp < 0) throw bad(`line ${n} has no name`);
  const uid = uidOf(line.slice(0, sp), `line ${n}`);
  if (version === 1) return { uid, base: baseOf(line.slice(sp + 1), n), ext: "" };
  const rest = line.slice(sp + 1);
  const colon = rest.startsWith(":") ? 0 : rest.indexOf(" :");
  if (colon < 0) throw bad(`line ${n} has no ':' before the name`);
  const ext = colon === 0 ? "" : rest.slice(0, colon);
  return { uid, base: baseOf(rest.slice(colon === 0 ? 1 : colon + 2), n), ext };
}

/** Older Dovecot versions wrote the full name; the base is what precedes the info separator. */
function baseOf(name: string, n: number): string {
  const colon = name.indexOf(":");
  const base = colon < 0 ? name : name.slice(0, colon);
  if (base.length === 0 || base.includes("/")) throw bad(`line ${n} has an empty or unsafe name`);
  return base;
}

/** Parses a dovecot-uidlist; MAILDIR_UIDLIST_INVALID for anything Dovecot would also reject. */
export function parseUidlist(text: string, entriesMax: number = Number.MAX_SAFE_INTEGER): Uidlist {
  if (text.length > UIDLIST_BYTES_MAX) throw bad("file too large");
  const lines = text.split("\n");
  const header = parseHeader(lines[0] ?? "");
  const entries: UidlistEntry[] = [];
  let last = 0;
  for (let i = 1; i < lines.length; i++) {
    const line = lines[i] ?? "";
    if (line === "") continue;
    if (entries.length >= entriesMax) throw maildirErrors.make("MAILDIR_TOO_MANY_MESSAGES", `more than ${entriesMax}`);
    const e = parseEntry(line, header.version, i + 1);
    if (e.uid <= last) throw bad(`line ${i + 1}: UIDs must ascend`);
    last = e.uid;
    entries.push(e);
  }
  return { uidValidity: header.uidValidity, nextUid: Math.max(header.next, last + 1), guid: header.guid, entries };
}

/** Serialises as version 3 (the header then one line per entry), ending in a newline. */
export function formatUidlist(u: Uidlist): string {
  const parts: string[] = [`3 V${u.uidValidity} N${u.nextUid} G${u.guid}\n`];
  for (const e of u.entries) parts.push(e.ext === "" ? `${e.uid} :${e.base}\n` : `${e.uid} ${e.ext} :${e.base}\n`);
  return parts.join("");
}
