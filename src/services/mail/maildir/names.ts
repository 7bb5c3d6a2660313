/**
 * Mailbox names and their Maildir++ directories. The hierarchy separator is "." (Dovecot's default
 * for Maildir++): folder `Archive.2024` lives in `<root>/.Archive.2024/`, INBOX is the root itself.
 * Names travel and are stored in modified UTF-7 (RFC 3501 5.1.3), as Dovecot 2.3 stores them.
 *
 * A name is the only client input that becomes a path, so it is checked strictly: every hierarchy
 * level non-empty (no "." or ".." directory can come out), no "/" nor "~", printable US-ASCII only,
 * no LIST wildcards, well-formed modified UTF-7, and bounded length and depth. This is what keeps
 * a session inside its own Maildir (gate 16).
 */
import { maildirErrors } from "./errors.ts";

/** The hierarchy separator (Maildir++). */
export const HIERARCHY_SEPARATOR = ".";
/** Longest mailbox name in bytes (its directory name, with the leading dot, stays within NAME_MAX). */
export const MAILBOX_NAME_BYTES_MAX = 200;
/** Deepest hierarchy. */
export const MAILBOX_DEPTH_MAX = 16;

/** The special-use attribute (RFC 6154) of the usual folder names. */
export const SPECIAL_USE: Readonly<Record<string, string>> = {
  Drafts: "\\Drafts",
  Sent: "\\Sent",
  Trash: "\\Trash",
  Junk: "\\Junk",
  Archive: "\\Archive",
};

// RFC 3501 5.1.3: "&" starts a modified BASE64 run ending in "-"; "&-" is a literal "&".
const MUTF7_RUN_RE = /&([A-Za-z0-9+,]*)-/g;

function invalid(name: string, why: string): Error {
  return maildirErrors.make("MAILDIR_NAME_INVALID", `${JSON.stringify(name.slice(0, 80))}: ${why}`);
}

/**
 * The canonical form of a mailbox name: "INBOX" in any case becomes "INBOX" (RFC 3501 5.1), also
 * as the first level of a longer name. MAILDIR_NAME_INVALID when the name is not storable.
 */
export function normalizeMailboxName(name: string): string {
  if (name.length === 0) throw invalid(name, "empty");
  if (Buffer.byteLength(name) > MAILBOX_NAME_BYTES_MAX) throw invalid(name, "too long");
  if (!/^[\x20-\x7e]+$/.test(name)) throw invalid(name, "control or 8-bit character");
  if (/[/*%\\"]/.test(name) || name.startsWith("~")) throw invalid(name, "'/', '~', '*', '%', '\\' or '\"'");
  const levels = name.split(HIERARCHY_SEPARATOR);
  if (levels.length > MAILBOX_DEPTH_MAX) throw invalid(name, "too deep");
  if (levels.some((l) => l.length === 0)) throw invalid(name, "empty hierarchy level");
  const stripped = name.replace(MUTF7_RUN_RE, (run: string, b64: string) => (b64.length % 4 === 1 ? "\u0000" : ""));
  if (stripped.includes("&") || stripped.includes("\u0000")) throw invalid(name, "bad modified UTF-7");
  const first = levels[0] ?? "";
  return first.toUpperCase() === "INBOX" ? ["INBOX", ...levels.slice(1)].join(HIERARCHY_SEPARATOR) : name;
}

/** The directory (relative to the Maildir root) of a normalised name: "" for INBOX, ".<name>" otherwise. */
export function folderDirName(normalized: string): string {
  return normalized === "INBOX" ? "" : `.${normalized}`;
}

/** The name of a Maildir++ directory entry (".Sent" → "Sent"), or undefined when it is not a folder name. */
export function nameOfDir(entry: string): string | undefined {
  if (!entry.startsWith(".") || entry === "." || entry === "..") return undefined;
  const name = entry.slice(1);
  try {
    const n = normalizeMailboxName(name);
    return n === "INBOX" ? undefined : n;
  } catch {
    return undefined;
  }
}

/** The parent of a name ("a.b.c" → "a.b"), undefined at the top. */
export function parentName(name: string): string | undefined {
  const i = name.lastIndexOf(HIERARCHY_SEPARATOR);
  return i < 0 ? undefined : name.slice(0, i);
}

/** The special-use attribute of a top-level folder name, if any (RFC 6154). */
export function specialUseOf(name: string): string | undefined {
  return Object.hasOwn(SPECIAL_USE, name) ? SPECIAL_USE[name] : undefined;
}
