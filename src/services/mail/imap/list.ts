/**
 * LIST and LSUB (RFC 3501 6.3.8, 6.3.9) over a Maildir++ store, with the CHILDREN attributes
 * (RFC 3348) and the special-use attributes (RFC 6154) of the usual folder names.
 *
 * Patterns: "*" matches anything, "%" anything but the hierarchy separator; the reference is
 * prefixed to the pattern; "INBOX" matches in any case (RFC 3501 5.1). A hierarchy level with
 * descendants but no folder of its own is listed \Noselect, as Dovecot does.
 */
import { HIERARCHY_SEPARATOR, parentName, specialUseOf, type MaildirStore } from "../maildir/index.ts";
import { mailboxOut, type Chunk } from "./wire.ts";

/** Longest pattern accepted (wildcards make matching cost grow with pattern length). */
export const LIST_PATTERN_BYTES_MAX = 1024;

/** A LIST pattern as a regular expression over normalised names. */
export function patternRegExp(pattern: string): RegExp {
  const inboxFixed = pattern.replace(/^inbox(?=$|\.)/i, "INBOX");
  let re = "";
  for (const ch of inboxFixed.slice(0, LIST_PATTERN_BYTES_MAX)) {
    if (ch === "*") re += ".*";
    else if (ch === "%") re += "[^.]*";
    else re += ch.replace(/[\\^$.|?+()[\]{}]/g, (c) => `\\${c}`);
  }
  return new RegExp(`^${re}$`, "s");
}

function attributes(name: string, exists: boolean, names: ReadonlySet<string>): string {
  const prefix = name + HIERARCHY_SEPARATOR;
  const children = [...names].some((n) => n.startsWith(prefix));
  const attrs: string[] = [];
  if (!exists) attrs.push("\\Noselect");
  attrs.push(children ? "\\HasChildren" : "\\HasNoChildren");
  const special = specialUseOf(name);
  if (special !== undefined && exists) attrs.push(special);
  return attrs.join(" ");
}

/** The LIST or LSUB responses for `reference` + `pattern`. */
export async function listMailboxes(store: MaildirStore, verb: "LIST" | "LSUB", reference: string, pattern: string): Promise<Chunk[]> {
  // RFC 3501 6.3.8: an empty pattern asks for the hierarchy delimiter and root.
  if (pattern === "" && verb === "LIST") return [`* LIST (\\Noselect) "${HIERARCHY_SEPARATOR}" ""\r\n`];
  const folders = new Set((await store.list()).map((f) => f.name));
  const source = verb === "LIST" ? folders : new Set(await store.subscriptions());
  const all = new Set<string>(source);
  for (const n of source) for (let p = parentName(n); p !== undefined; p = parentName(p)) all.add(p);
  const re = patternRegExp(reference + pattern);
  const out: Chunk[] = [];
  const sorted = [...all].sort((a, b) => (a === "INBOX" ? -1 : b === "INBOX" ? 1 : a < b ? -1 : a > b ? 1 : 0));
  for (const name of sorted) {
    if (!re.test(name)) continue;
    const exists = verb === "LIST" ? folders.has(name) : source.has(name);
    const attrs = verb === "LIST" ? attributes(name, exists, folders) : exists ? "" : "\\Noselect";
    out.push(`* ${verb} (${attrs}) "${HIERARCHY_SEPARATOR}" ${mailboxOut(name)}\r\n`);
  }
  return out;
}
