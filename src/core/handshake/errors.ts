/**
 * Error codes of core/handshake (money, splits, statements). Listed in docs/errors.md under
 * "## handshake". Rule violations (a refund beyond its original, a payout beyond the balance, a
 * replayed event that differs) are failed checks (exit 1); malformed input is bad input (exit 2).
 */
import { defineErrors } from "../errors.ts";

/** The handshake part's error table. */
export const handshakeErrors = defineErrors({
  HANDSHAKE_CURRENCY_UNKNOWN: {
    message: "The currency is not an ISO 4217 code with a minor unit known to Nexus",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_AMOUNT_MALFORMED: {
    message: "The amount is not a plain decimal (digits, an optional '.' and at most the currency's fraction digits)",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_AMOUNT_OUT_OF_RANGE: {
    message: "The amount is zero or negative where it must be positive, or beyond the largest amount Nexus handles",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_CONSTITUTION_UNKNOWN: {
    message: "No split table exists for this constitution version or split class",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_ACCUMULATOR_INVALID: {
    message: "The split accumulator is not one the cumulative formula can produce",
    http: 422,
    exit: 1,
  },
  HANDSHAKE_EVENT_MALFORMED: {
    message: "The money event is malformed (event id, unit, source, time or kind)",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_EVENT_CONFLICT: {
    message: "This event id was already recorded with different content",
    http: 409,
    exit: 1,
  },
  HANDSHAKE_REFUND_ORIGINAL_UNKNOWN: {
    message: "The refund references no recorded revenue of this unit",
    http: 422,
    exit: 1,
  },
  HANDSHAKE_REFUND_MISMATCH: {
    message: "The refund's currency differs from its original's",
    http: 422,
    exit: 1,
  },
  HANDSHAKE_REFUND_EXCEEDS_ORIGINAL: {
    message: "The refund is larger than what remains refundable of its original",
    http: 422,
    exit: 1,
  },
  HANDSHAKE_PAYOUT_EXCEEDS_BALANCE: {
    message: "The payout is larger than the creator's accrued balance in that currency",
    http: 422,
    exit: 1,
  },
  HANDSHAKE_UNIT_MISMATCH: {
    message: "The event belongs to another unit than the statement's",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_EVENTS_UNORDERED: {
    message: "Events must come in ledger order: strictly increasing index, non-decreasing time",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_PERIOD_INVALID: {
    message: "The period is not a pair of RFC 3339 UTC times with from before to",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_EVENT_OUTSIDE_PERIOD: {
    message: "A statement entry lies outside the statement's period",
    http: 422,
    exit: 1,
  },
  HANDSHAKE_STATEMENT_MALFORMED: {
    message: "The statement does not match the statement format",
    http: 400,
    exit: 2,
  },
  HANDSHAKE_STATEMENT_TOO_LARGE: {
    message: "The statement or event list is larger than the declared limit",
    http: 413,
    exit: 2,
  },
  HANDSHAKE_STATEMENT_MISMATCH: {
    message: "A figure of the statement differs from its recomputation from the opening state and the entries",
    http: 422,
    exit: 1,
  },
});

/** Every code of the handshake part. */
export type HandshakeErrorCode = keyof typeof handshakeErrors.specs;
