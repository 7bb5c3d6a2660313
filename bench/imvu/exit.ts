/**
 * Exit benchmark (BENCHMARKING.md; issue 8 "Benchmark"): not a test. Prints each figure with the
 * command behind it.
 *   node bench/imvu/exit.ts [--mails N] [--mib N] [--runs N]
 * An IMVU holding N mails (default 10,000, ~2 KiB each) in one mailbox and N MiB of volume data
 * (default 1024, in 16 MiB files); times writing the exit bundle (writeBundle: Maildir copy, mbox,
 * volume tar, ledger proofs, statements, secrets) and verifying it offline (verifyBundle), beside
 * the peer in the same run: `tar -cf - mail compute | sha256sum` over the same data. Median of --runs.
 */
import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createIdentity } from "../../src/core/identity/index.ts";
import { signCommand, type CommandDraft } from "../../src/core/pipeline/sign.ts";
import { ENVELOPE_PROFILES, envelopeToWire } from "../../src/core/policy/envelope.ts";
import { countersign, EXIT_MANIFEST_BYTES_MAX, verifyBundle, writeBundle } from "../../src/imvu/index.ts";
import { parseDsse } from "../../src/core/crypto/index.ts";
import { Platform, signerOf } from "../../src/platform/platform.ts";
import { installationFabric, slug } from "../../src/services/compute/names.ts";
import { commitment, createPasswordVerifier, maildirPath, maildirRoot } from "../../src/services/mail/directory.ts";
import { readFileSync } from "node:fs";

const args = process.argv.slice(2);
const flag = (name: string, dflt: number): number => {
  const i = args.indexOf(name);
  return i >= 0 ? Number(args[i + 1]) : dflt;
};
const MAILS = flag("--mails", 10_000);
const MIB = flag("--mib", 1024);
const RUNS = flag("--runs", 3);
const FILE_MIB = 16;

const median = (xs: number[]): number => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? NaN;
const line = (what: string, value: string, cmd: string): void => console.log(`${what.padEnd(52)} ${value.padStart(12)}   [${cmd}]`);
const time = async (fn: () => Promise<unknown> | unknown): Promise<number> => {
  const t = process.hrtime.bigint();
  await fn();
  return Number(process.hrtime.bigint() - t) / 1e6;
};

const work = mkdtempSync(join(tmpdir(), "nexus-exit-bench-"));
const home = join(work, "home");
const p = await Platform.open({ home });
try {
  const owner = createIdentity(join(work, "keyring"), { name: "owner", makeDefault: true });
  const as = (draft: CommandDraft) => p.pipeline.submit(signCommand(draft, signerOf(owner)).json);
  await as({ type: "identity.inception", body: { inception: owner.kel[0] } });
  await as({ type: "imvu.create", imvu: "stage", body: { name: "stage", jurisdiction: "DE", class: "imvu", envelope: { ...envelopeToWire(ENVELOPE_PROFILES.large), diskBytes: String(4n << 30n) } } });
  const address = "creator@stage.nexus.test";
  const r = await as({ type: "mail.mailbox.add", imvu: "stage", body: { address, verifierCommitment: commitment(await createPasswordVerifier("benchmark password")) } });
  if (r.outcome !== "applied") throw new Error(`mailbox: ${JSON.stringify(r.gates.filter((g) => !g.pass))}`);
  const md = maildirPath(maildirRoot(home), "stage", address);
  for (const sub of ["tmp", "new", "cur"]) mkdirSync(join(md, sub), { recursive: true });
  const body = `${"Lorem ipsum dolor sit amet, consectetur adipiscing elit. ".repeat(32)}\n`;
  for (let i = 0; i < MAILS; i++) {
    const m = `From: s${i}@example.org\nTo: ${address}\nSubject: message ${i}\nMessage-ID: <m${i}@example.org>\n\n${body}`;
    writeFileSync(join(md, "cur", `${1_700_000_000 + i}.M${i}P1Q${i}.bench,S=${m.length}:2,S`), m);
  }
  const vol = join(home, "compute", installationFabric(home), "volumes", slug("stage"), "data");
  mkdirSync(vol, { recursive: true });
  for (let i = 0; i < Math.ceil(MIB / FILE_MIB); i++) writeFileSync(join(vol, `blob-${i}.bin`), randomBytes(Math.min(FILE_MIB, MIB - i * FILE_MIB) << 20));
  await as({ type: "imvu.exit.request", imvu: "stage", body: {} });
  execFileSync("sync");

  const exits: number[] = [];
  const verifies: number[] = [];
  const peers: number[] = [];
  for (let run = 0; run < RUNS; run++) {
    const dir = join(work, `bundle-${run}`);
    peers.push(await time(() => execFileSync("sh", ["-c", `tar -C ${home} -cf - mail compute | sha256sum > /dev/null`])));
    exits.push(await time(() => writeBundle(p, { imvu: "stage", passphrase: "benchmark passphrase", ownerKel: owner.kel, seenSizes: [] }, dir)));
    const env = parseDsse(readFileSync(join(dir, "manifest.json"), "utf8"), { payloadBytesMax: EXIT_MANIFEST_BYTES_MAX });
    writeFileSync(join(dir, "manifest.json"), JSON.stringify(countersign(env, owner.id, owner.current.privateKey)));
    verifies.push(await time(() => {
      const v = verifyBundle(dir, { verifierKey: p.verifierKey });
      if (!v.ok) throw new Error(v.problems.join("; "));
    }));
    rmSync(dir, { recursive: true, force: true });
  }
  const peer = median(peers);
  console.log(`exit of an IMVU with ${MAILS} mails and ${MIB} MiB of volume data, median of ${RUNS} (ms)`);
  line("peer: tar | sha256sum of the same data", peer.toFixed(0), `tar -C HOME -cf - mail compute | sha256sum`);
  line("exit bundle written (writeBundle)", median(exits).toFixed(0), "bench/imvu/exit.ts");
  line("  ratio to the peer", `${(median(exits) / peer).toFixed(2)}x`, "aim: within 2x");
  line("bundle verified offline (verifyBundle)", median(verifies).toFixed(0), "bench/imvu/exit.ts");
  line("  ratio to the peer", `${(median(verifies) / peer).toFixed(2)}x`, "");
  line("exit + verify-export", (median(exits) + median(verifies)).toFixed(0), "");
} finally {
  await p.close();
  rmSync(work, { recursive: true, force: true });
}
