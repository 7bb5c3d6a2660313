/** core/handshake: exact money, the constitution's revenue splits, balances, payouts and statements (pure). */
export { handshakeErrors } from "./errors.ts";
export type { HandshakeErrorCode } from "./errors.ts";
export {
  AMOUNT_CHARS_MAX,
  AMOUNT_MINOR_MAX,
  CURRENCY_EXPONENTS,
  currencyExponent,
  formatAmount,
  isKnownCurrency,
  parseAmount,
} from "./currency.ts";
export type { MinorUnitExponent, ParseAmountOptions } from "./currency.ts";
export {
  CONSTITUTION_VERSIONS,
  EMPTY_ACCUMULATOR,
  EMPTY_BALANCE,
  PERCENT,
  SPLITS,
  SPLITS_V1,
  SPLIT_CLASSES,
  accrue,
  applyPayout,
  availableOf,
  ceilDiv,
  checkAccumulator,
  creatorShareOf,
  isConstitutionVersion,
  isSplitClass,
  payoutAllowed,
  splitEntry,
  splitRatio,
} from "./split.ts";
export type { Balance, ConstitutionVersion, SplitAccumulator, SplitClass, SplitRatio, SplitResult } from "./split.ts";
export { EVENT_ID_CHARS_MAX, SOURCE_CHARS_MAX, UNIT_CHARS_MAX, eventFingerprint, isEventId, timeKey } from "./event.ts";
export type { MoneyEvent, MoneyEventKind, PayoutEvent, RefundEvent, RevenueEvent } from "./event.ts";
export { accumulatorKeyOf, accumulatorKeyString, checkReplay, recordEvent } from "./record.ts";
export type {
  AccumulatorKey,
  EventReads,
  EventWrites,
  Original,
  PayoutEntry,
  RecordResult,
  RefundEntry,
  ReplayCheck,
  RevenueEntry,
  SeenEvent,
  StatementEntry,
} from "./record.ts";
export {
  STATEMENT_EVENTS_MAX,
  STATEMENT_FORMAT,
  STATEMENT_ISSUES_MAX,
  balanceOf,
  buildStatement,
  eventOfEntry,
  recomputeStatement,
} from "./statement.ts";
export type {
  AccumulatorRecord,
  CurrencyTotals,
  PaidRecord,
  Period,
  RefundableRecord,
  SourceTotals,
  Statement,
  StatementCheck,
  StatementInput,
  StatementIssue,
  StatementOpening,
  StatementState,
} from "./statement.ts";
export { FIGURE_DIGITS_MAX, STATEMENT_RECORDS_MAX, parseStatementJson, statementCodec, statementToJson } from "./statement-json.ts";
export type { StatementJson } from "./statement-json.ts";
