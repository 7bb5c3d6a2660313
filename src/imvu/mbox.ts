/**
 * Maildir folders and their mbox form. The mbox is "mboxrd" (the variant of qmail's mbox(5) and
 * RFC 4155's application/mbox): each message starts with a `From ` separator line, every body
 * line matching /^>*From / gains one more ">", and a blank line ends the message, so the original
 * bytes are recoverable exactly and counting separators counts messages.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";

/** Most messages one folder may hold in an export. */
export const FOLDER_MESSAGES_MAX = 10_000_000;
/** Most Maildir++ folders of one mailbox. */
export const FOLDERS_MAX = 1000;

/** One folder of a Maildir: "INBOX" (the top level) or a Maildir++ folder ("Sent" for ".Sent"). */
export interface MaildirFolderFiles {
  readonly name: string;
  /** Paths of the message files (cur and new), sorted by file name (delivery order). */
  readonly messages: readonly string[];
}

function messagesIn(dir: string): string[] {
  const out: string[] = [];
  for (const sub of ["new", "cur"]) {
    const d = join(dir, sub);
    if (!existsSync(d)) continue;
    for (const f of readdirSync(d)) {
      if (f.startsWith(".")) continue;
      const p = join(d, f);
      if (statSync(p).isFile()) out.push(p);
      if (out.length > FOLDER_MESSAGES_MAX) throw new RangeError(`more than ${FOLDER_MESSAGES_MAX} messages in ${dir}`);
    }
  }
  return out.sort((a, b) => (baseName(a) < baseName(b) ? -1 : baseName(a) > baseName(b) ? 1 : 0));
}

function baseName(p: string): string {
  return p.slice(p.lastIndexOf("/") + 1);
}

/** The folders of the Maildir at `root` (INBOX first, then Maildir++ folders by name). */
export function maildirFolders(root: string): MaildirFolderFiles[] {
  if (!existsSync(root)) return [];
  const out: MaildirFolderFiles[] = [{ name: "INBOX", messages: messagesIn(root) }];
  const subs = readdirSync(root)
    .filter((f) => f.startsWith(".") && f !== "." && f !== ".." && statSync(join(root, f)).isDirectory() && existsSync(join(root, f, "cur")))
    .sort();
  if (subs.length > FOLDERS_MAX) throw new RangeError(`more than ${FOLDERS_MAX} folders in ${root}`);
  for (const s of subs) out.push({ name: s.slice(1), messages: messagesIn(join(root, s)) });
  return out;
}

const FROM_LINE = /^(>*From )/gm;

/** One message in mboxrd form (separator, quoted From lines, LF line ends, a blank line after). */
export function mboxMessage(raw: Buffer, mtime: Date): Buffer {
  const text = raw.toString("latin1").replace(/\r\n/g, "\n");
  const body = text.replace(FROM_LINE, ">$1");
  const sep = `From MAILER-DAEMON ${asctime(mtime)}\n`;
  return Buffer.from(sep + body + (body.endsWith("\n") ? "" : "\n") + "\n", "latin1");
}

/** The mbox of a folder's message files. */
export function mboxOf(files: readonly string[]): Buffer {
  return Buffer.concat(files.map((f) => mboxMessage(readFileSync(f), statSync(f).mtime)));
}

/** Messages in an mbox: its separator lines. */
export function countMbox(text: string): number {
  let n = 0;
  if (text.startsWith("From ")) n++;
  for (let i = text.indexOf("\nFrom "); i >= 0; i = text.indexOf("\nFrom ", i + 1)) n++;
  return n;
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** The asctime(3) form of a UTC time, as mbox separator lines carry it. */
function asctime(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, "0");
  const day = String(d.getUTCDate()).padStart(2, " ");
  return `${DAYS[d.getUTCDay()]} ${MONTHS[d.getUTCMonth()]} ${day} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} ${d.getUTCFullYear()}`;
}
