/**
 * `nexus note verify`: checks a C2SP signed note read on stdin against verifier keys, offline
 * (exit 0 verified, 1 not verified, 2 malformed note or key).
 */
import type { Command } from "commander";
import { NexusError, isNexusError } from "../../core/errors.ts";
import { toBase64, toHex } from "../../core/crypto/bytes.ts";
import { NOTE_BYTES_MAX, VERIFIER_KEYS_MAX, decodeNote, openNote, parseCheckpoint, parseVerifierKey } from "../../core/ledger/note.ts";
import { commonErrors } from "../../core/common-errors.ts";
import { action, emit } from "../output.ts";
import { readStdin } from "./tlog.ts";

interface VerifyOpts {
  key: string[];
  checkpoint?: boolean;
  json?: boolean;
}

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

/** Checks each --key first, so a bad key is named by its position before stdin is read. */
function checkKeys(keys: readonly string[]): void {
  if (keys.length === 0) throw commonErrors.make("INPUT_INVALID", "--key: give at least one verifier key (name+hash+base64)");
  if (keys.length > VERIFIER_KEYS_MAX) throw commonErrors.make("INPUT_INVALID", `--key: at most ${VERIFIER_KEYS_MAX} keys`);
  keys.forEach((k, i) => {
    try {
      parseVerifierKey(k);
    } catch (e) {
      if (!isNexusError(e)) throw e;
      throw new NexusError(e.code, { message: `--key #${i + 1}`, http: e.http, exit: e.exit }, e.message);
    }
  });
}

/** Adds `note verify` to the program. */
export function register(program: Command): void {
  const note = program.command("note").description("C2SP signed notes (checkpoints are signed notes)");
  note
    .command("verify")
    .description("verify a signed note read on stdin: exit 0 verified, 1 not verified, 2 malformed")
    .option("--key <vkey>", "a verifier key name+hash+base64(0x01||pubkey); repeat for several", collect, [])
    .option("--checkpoint", "also parse the text as a C2SP tlog checkpoint and print its origin, size and root")
    .option("--json", "print JSON {verified, verifiedBy, text[, checkpoint]}")
    .addHelpText(
      "after",
      "\nSignatures by keys not given are ignored; a note needs at least one valid signature by a given key,\n" +
        `and any given key's signature that fails rejects the note. Notes are at most ${NOTE_BYTES_MAX} bytes.`,
    )
    .action(
      action(async (opts: VerifyOpts) => {
        checkKeys(opts.key);
        const text = decodeNote(await readStdin(NOTE_BYTES_MAX, "stdin"));
        let opened: { text: string; verifiedBy: string[] };
        try {
          opened = openNote(text, opts.key);
        } catch (e) {
          // Not verified (exit 1) is an answer, not a crash: --json says so on stdout too.
          if (isNexusError(e) && e.exit === 1 && opts.json === true) {
            emit({ verified: false, error: e.toJSON().error }, true, () => "");
            process.exitCode = 1;
            return;
          }
          throw e;
        }
        const cp = opts.checkpoint === true ? parseCheckpoint(opened.text) : undefined;
        const checkpoint = cp && { origin: cp.origin, size: cp.size, root: toHex(cp.root), rootBase64: toBase64(cp.root), extensions: cp.extensions };
        emit({ verified: true, verifiedBy: opened.verifiedBy, text: opened.text, ...(checkpoint ? { checkpoint } : {}) }, opts.json, (v) =>
          [
            `verified by ${v.verifiedBy.join(", ")}`,
            ...(v.checkpoint ? [`origin ${v.checkpoint.origin}`, `size ${v.checkpoint.size}`, `root ${v.checkpoint.root}`] : []),
            "",
            v.text.slice(0, -1),
          ].join("\n"),
        );
      }),
    );
}
