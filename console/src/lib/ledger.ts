/** Reading ledger entries in the page: an entry is the JCS of {index, time, envelope, outcome, gates}. */
import { fromBase64, fromUtf8 } from "./bytes.ts";

/** The 17 gates of constitution v1 (CONSTITUTION.md). */
export const GATE_NAMES: Readonly<Record<number, string>> = {
  1: "Identity binding", 2: "IMVU isolation", 3: "Domain ownership", 4: "DNS authority", 5: "Mail attribution",
  6: "Revenue metering", 7: "Resource quotas", 8: "Network governance", 9: "Jurisdiction tagging", 10: "Consent logging",
  11: "Audit logging", 12: "Immutable snapshots", 13: "Exit portability", 14: "No silent redirection",
  15: "No silent throttling", 16: "No cross-IMVU leakage", 17: "Platform non-repudiation",
};

/** A gate's verdict. */
export interface GateVerdict {
  readonly gate: number;
  readonly pass: boolean;
  readonly reason: string;
}

/** A decoded entry. */
export interface DecodedEntry {
  readonly index: string;
  readonly time: string;
  readonly outcome: string;
  readonly gates: readonly GateVerdict[];
  readonly type: string;
  readonly actor: string;
  readonly imvu?: string;
  readonly keyid: string;
  readonly body: unknown;
  readonly bytes: Uint8Array;
}

/** Decodes an entry's base64 bytes; undefined when they are not an entry. */
export function decodeEntry(b64: string): DecodedEntry | undefined {
  const bytes = fromBase64(b64);
  if (bytes === undefined) return undefined;
  try {
    const e = JSON.parse(fromUtf8(bytes)) as {
      index?: unknown; time?: unknown; outcome?: unknown; gates?: unknown;
      envelope?: { payload?: string; signatures?: { keyid?: string }[] };
    };
    const payload = fromBase64(e.envelope?.payload ?? "");
    const cmd = payload === undefined ? {} : (JSON.parse(fromUtf8(payload)) as { type?: unknown; actor?: unknown; imvu?: unknown; body?: unknown });
    return {
      index: String(e.index),
      time: String(e.time),
      outcome: String(e.outcome),
      gates: Array.isArray(e.gates) ? (e.gates as GateVerdict[]) : [],
      type: String(cmd.type ?? "?"),
      actor: String(cmd.actor ?? "?"),
      ...(typeof cmd.imvu === "string" ? { imvu: cmd.imvu } : {}),
      keyid: e.envelope?.signatures?.[0]?.keyid ?? "",
      body: cmd.body,
      bytes,
    };
  } catch {
    return undefined;
  }
}

/** The failing verdicts of a list. */
export function failing(gates: readonly GateVerdict[]): GateVerdict[] {
  return gates.filter((g) => !g.pass);
}
