/**
 * `nexus mail add|list|passwd|delete`: mailboxes as signed commands (docs/mail-ledger.md).
 *
 * The password is generated here (or read from stdin) and never leaves this process: the CLI
 * derives the scrypt verifier, signs `mail.mailbox.add` / `mail.mailbox.passwd` carrying only the
 * verifier's SHA-256 (the commitment the ledger records), and once the receipt verified posts the
 * verifier to POST /v1/mail/verifiers, which stores it in the IMVU's secret store only because its
 * hash is the commitment of that applied command. Flags: `--as <name|id>` picks the keyring
 * identity that signs (the `--identity` of `mail add` names the identity the mailbox is bound to).
 * Exit codes: 0 applied, 1 denied or refused, 2 bad input, 3 API unreachable or not found.
 */
import { randomBytes } from "node:crypto";
import type { Command } from "commander";
import { commonErrors } from "../../core/common-errors.ts";
import { NexusError } from "../../core/errors.ts";
import type { Receipt } from "../../core/pipeline/pipeline.ts";
import type { CommandDraft } from "../../core/pipeline/sign.ts";
import { MailAddress } from "../../core/policy/mail-schemas.ts";
import { IdentityId, ImvuName } from "../../core/policy/schemas.ts";
import { commitment, createPasswordVerifier, PASSWORD_BYTES_MAX } from "../../services/mail/directory.ts";
import type { MailboxView } from "../../platform/services/mail-api.ts";
import { apiBase, apiGet, clientErrors, CLIENT_TIMEOUT_MS, submitDraft, type ClientOptions } from "../client.ts";
import { action, emit } from "../output.ts";
import { printReceipt } from "./imvu.ts";

/** Bytes of randomness in a generated password (base64url: 24 characters, 144 bits). */
export const GENERATED_PASSWORD_BYTES = 18;
/** Most bytes read from stdin for --password-stdin. */
const STDIN_BYTES_MAX = PASSWORD_BYTES_MAX + 2;

interface MailFlags {
  readonly as?: string;
  readonly api?: string;
  readonly json?: boolean;
  readonly imvu: string;
  readonly passwordStdin?: boolean;
  readonly identity?: string;
}

function opts(f: MailFlags): ClientOptions {
  return { identity: f.as, api: f.api };
}

function flags(c: Command, imvuRequired = true): Command {
  const withImvu = imvuRequired ? c.requiredOption("--imvu <name>", "the IMVU") : c.option("--imvu <name>", "only this IMVU");
  return withImvu
    .option("--as <name|id>", "keyring identity that signs (default: the keyring's default)")
    .option("--api <url>", "API base URL (default: $NEXUS_API or http://127.0.0.1:8780)")
    .option("--json", "print JSON");
}

function checked<T>(schema: { safeParse(v: unknown): { success: true; data: T } | { success: false } }, v: string, field: string, what: string): T {
  const r = schema.safeParse(v);
  if (!r.success) throw commonErrors.make("INPUT_INVALID", `${field} ${v}: ${what}`, { field });
  return r.data;
}

const address = (a: string): string => checked(MailAddress, a.toLowerCase(), "address", "a mailbox address like creator@stage.nexus.test");
const imvuName = (n: string): string => checked(ImvuName, n, "--imvu", "a lower-case DNS label");

/** The password: one line of stdin, or a fresh random one (returned with `generated`). */
async function password(f: MailFlags): Promise<{ password: string; generated: boolean }> {
  if (!f.passwordStdin) return { password: generatedPassword(), generated: true };
  const chunks: Buffer[] = [];
  let n = 0;
  for await (const chunk of process.stdin) {
    const b = Buffer.isBuffer(chunk) ? chunk : Buffer.from(String(chunk));
    n += b.length;
    if (n > STDIN_BYTES_MAX) throw commonErrors.make("INPUT_INVALID", `--password-stdin: at most ${PASSWORD_BYTES_MAX} bytes`, { field: "password" });
    chunks.push(b);
  }
  const pw = Buffer.concat(chunks).toString("utf8").replace(/\r?\n$/, "");
  if (pw.length === 0) throw commonErrors.make("INPUT_INVALID", "--password-stdin: the password is empty", { field: "password" });
  return { password: pw, generated: false };
}

/** POSTs JSON to the API; the server's typed error keeps its code. */
async function postJson(path: string, body: unknown, o: ClientOptions): Promise<unknown> {
  const url = `${apiBase(o)}${path}`;
  let res: Response;
  try {
    res = await fetch(url, { method: "POST", headers: { "content-type": "application/json", accept: "application/json" }, body: JSON.stringify(body), signal: AbortSignal.timeout(CLIENT_TIMEOUT_MS) });
  } catch (e) {
    throw clientErrors.make("CLIENT_API_UNREACHABLE", `${url}: ${e instanceof Error ? e.message : String(e)}`);
  }
  const json = (await res.json().catch(() => undefined)) as { error?: { code?: string; message?: string } } | undefined;
  if (res.status === 200) return json;
  const code = json?.error?.code;
  if (typeof code !== "string") throw clientErrors.make("CLIENT_BAD_RESPONSE", `POST ${path}: HTTP ${res.status}`);
  throw new NexusError(code, { message: json?.error?.message ?? code, http: res.status, exit: res.status === 400 ? 2 : 1 });
}

/** Signs the command carrying the verifier's commitment, then hands the verifier to the secret store. */
/**
 * Signs `mail.mailbox.add` or `mail.mailbox.passwd` carrying the commitment of a fresh verifier of
 * `pw`, then (the receipt verified) hands the verifier to the IMVU's secret store. The password
 * itself never leaves this process.
 */
export async function submitMailboxPassword(
  type: "mail.mailbox.add" | "mail.mailbox.passwd",
  imvu: string,
  addr: string,
  pw: string,
  o: ClientOptions,
  extra: Record<string, unknown> = {},
): Promise<Receipt> {
  const verifier = await createPasswordVerifier(pw);
  const draft: CommandDraft = { type, imvu, body: { address: addr, ...extra, verifierCommitment: commitment(verifier) } };
  const receipt = await submitDraft(draft, o);
  await postJson("/v1/mail/verifiers", { imvu, address: addr, verifier }, o);
  return receipt;
}

/** A fresh generated mailbox password; never with a leading "-", which swaks and other getopt-style tools read as an option. */
export function generatedPassword(): string {
  for (;;) {
    const p = randomBytes(GENERATED_PASSWORD_BYTES).toString("base64url");
    if (!p.startsWith("-")) return p; // 1 draw in 64 is drawn again
  }
}

async function setPassword(type: "mail.mailbox.add" | "mail.mailbox.passwd", f: MailFlags, addr: string, extra: Record<string, unknown>): Promise<void> {
  const imvu = imvuName(f.imvu);
  const pw = await password(f);
  const receipt = await submitMailboxPassword(type, imvu, addr, pw.password, opts(f), extra);
  if (f.json) {
    emit({ receipt, address: addr, ...(pw.generated ? { password: pw.password } : {}) }, true, () => "");
    return;
  }
  printReceipt(`${type === "mail.mailbox.add" ? "mailbox" : "password of"} ${addr}`, receipt, false);
  if (pw.generated) process.stdout.write(`password: ${pw.password}\n(shown once: it is stored nowhere, only a salted scrypt verifier is kept)\n`);
}

/** Adds `mail` to the program. */
export function register(program: Command): void {
  const mail = program.command("mail").description("mailboxes of your IMVUs (signed commands through the API)");
  flags(mail.command("add").argument("<address>"))
    .description("add a mailbox; prints a generated password once (or takes --password-stdin)")
    .option("--identity <id>", "the identity the mailbox is bound to (default: the IMVU's owner)")
    .option("--password-stdin", "read the password from stdin instead of generating one")
    .action(
      action(async (a: string, f: MailFlags) => {
        const bound = f.identity === undefined ? {} : { identity: checked(IdentityId, f.identity, "--identity", "an identity id (nx1…)") };
        await setPassword("mail.mailbox.add", f, address(a), bound);
      }),
    );
  flags(mail.command("list"), false)
    .description("the mailboxes of your IMVUs")
    .action(
      action(async (f: MailFlags) => {
        const q = f.imvu === undefined ? "" : `?imvu=${imvuName(f.imvu)}`;
        const r = await apiGet<{ mailboxes: MailboxView[] }>(`/v1/mail/mailboxes${q}`, opts(f));
        emit(r, f.json, (v) =>
          v.mailboxes.length === 0
            ? "(no mailboxes)"
            : v.mailboxes.map((m) => `${m.address}\t${m.imvu}\t${m.status}${m.verifierStored ? "" : "\tNO PASSWORD (run mail passwd)"}\t${m.identity}`).join("\n"),
        );
      }),
    );
  flags(mail.command("passwd").argument("<address>"))
    .description("set a new password; the old one stops working when the command applies")
    .option("--password-stdin", "read the password from stdin instead of generating one")
    .action(action(async (a: string, f: MailFlags) => setPassword("mail.mailbox.passwd", f, address(a), {})));
  flags(mail.command("delete").argument("<address>"))
    .description("delete a mailbox: the mail service snapshots its Maildir (content-addressed) before removing it")
    .action(
      action(async (a: string, f: MailFlags) => {
        const r = await submitDraft({ type: "mail.mailbox.delete", imvu: imvuName(f.imvu), body: { address: address(a) } }, opts(f));
        printReceipt(`deletion of ${a} (snapshot first, then removal)`, r, f.json);
      }),
    );
}
