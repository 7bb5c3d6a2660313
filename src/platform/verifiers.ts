/**
 * The pipeline's key-event verifiers, bound to core/identity: inception and rotation are checked
 * by the identity rules (self-certifying ids, pre-rotation) and their key state is what the
 * ledger projection records.
 */
import { checkInception, checkRotation } from "../core/identity/index.ts";
import type { KeyEventVerifiers } from "../core/pipeline/authenticate.ts";

/** Verifiers for `Pipeline.open` and `replay`. */
export const identityVerifiers: KeyEventVerifiers = {
  inception: (wire) => {
    const r = checkInception(wire);
    return r.ok ? { ok: true, state: r.state } : { ok: false, reason: `${r.code}: ${r.reason}` };
  },
  rotation: (current, wire) => {
    const r = checkRotation(current, wire);
    return r.ok ? { ok: true, state: r.state } : { ok: false, reason: `${r.code}: ${r.reason}` };
  },
};
