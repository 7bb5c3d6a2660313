/**
 * Zone transfer answers: AXFR (RFC 5936 §2.2) and IXFR (RFC 1995 §4), packed into TCP messages with
 * name compression, every message TSIG-signed (RFC 8945 §5.3.1: the first with the request MAC,
 * each later one with the prior MAC and the timers).
 */
import { RCODE } from "./lookup.ts";
import { FLAG, writeHeader, writeRecord, type Question } from "./message.ts";
import { echoQuestionCase, type TransferRequest } from "./responder.ts";
import type { JournalStep } from "./store.ts";
import { signMessage, tsigOctets, type TsigKey } from "./tsig.ts";
import { WireWriter, MESSAGE_OCTETS_MAX } from "./writer.ts";
import { serialGreater, zoneSerial, type Zone, type ZoneRecord } from "./zone.ts";

/** Target size of one transfer message (well under 65,535 so a slow reader holds little). */
export const TRANSFER_MESSAGE_OCTETS = 16_384;

/** What the transfer sent, for logs and tests. */
export type TransferStyle = "AXFR" | "IXFR" | "IXFR-UP-TO-DATE" | "IXFR-AS-AXFR";

/** The journal of a store (`ZoneStore.journal`). */
export type JournalSource = (origin: Zone["origin"], from: number) => JournalStep[] | undefined;

function soaRecord(s: Zone["soa"]): ZoneRecord {
  return { name: s.name, ttl: s.ttl, data: s.data };
}

/** The records of a full transfer: SOA, every record, SOA (RFC 5936 §2.2). */
export function axfrRecords(zone: Zone): ZoneRecord[] {
  const soa = soaRecord(zone.soa);
  return [soa, ...zone.records, soa];
}

/** The records of an incremental transfer from `clientSerial`, and which style that is (RFC 1995 §4). */
export function ixfrRecords(zone: Zone, clientSerial: number, journal: JournalSource): { style: TransferStyle; records: ZoneRecord[] } {
  const current = soaRecord(zone.soa);
  if (!serialGreater(zoneSerial(zone), clientSerial)) return { style: "IXFR-UP-TO-DATE", records: [current] };
  const steps = journal(zone.origin, clientSerial);
  if (steps === undefined || steps.length === 0) return { style: "IXFR-AS-AXFR", records: axfrRecords(zone) };
  const out: ZoneRecord[] = [current];
  for (const s of steps) {
    out.push(soaRecord(s.from), ...s.diff.removed, soaRecord(s.to), ...s.diff.added);
  }
  out.push(current);
  return { style: "IXFR", records: out };
}

/** Packs records into signed answer messages; the first carries the question (RFC 5936 §2.2.1). */
export function packTransfer(
  query: { readonly id: number; readonly question: Question; readonly buf: Uint8Array },
  records: readonly ZoneRecord[],
  key: TsigKey,
  requestMac: Uint8Array,
  nowS: number,
): Buffer[] {
  const out: Buffer[] = [];
  const budget = TRANSFER_MESSAGE_OCTETS - tsigOctets(key.name);
  let prior: Uint8Array | undefined;
  let i = 0;
  while (i < records.length || out.length === 0) {
    const w = new WireWriter(MESSAGE_OCTETS_MAX - tsigOctets(key.name));
    const first = out.length === 0;
    writeHeader(w, query.id, FLAG.QR | FLAG.AA | RCODE.NOERROR, [first ? 1 : 0, 0, 0, 0]);
    if (first) {
      w.name(query.question.name, true);
      w.u16(query.question.type);
      w.u16(query.question.klass);
    }
    let n = 0;
    while (i < records.length) {
      const m = w.mark();
      const r = records[i];
      if (r === undefined) break;
      writeRecord(w, r);
      // A record that does not fit goes to the next message, unless the message is still empty.
      if (w.pos > budget && n > 0) {
        w.rewind(m);
        break;
      }
      n++;
      i++;
    }
    w.buf.writeUInt16BE(n, 6);
    const unsigned = w.finish();
    if (first) echoQuestionCase(unsigned, query.buf, query.question);
    const signed = signMessage(unsigned, key, prior === undefined ? { timeSigned: nowS, requestMac } : { timeSigned: nowS, priorMac: prior });
    prior = signed.mac;
    out.push(signed.message);
  }
  return out;
}

/** The signed messages answering a transfer request, and the style chosen. */
export function transferAnswer(req: TransferRequest, journal: JournalSource, nowS: number): { style: TransferStyle; messages: Buffer[] } {
  const picked = req.type === "AXFR" || req.clientSerial === undefined
    ? { style: "AXFR" as const, records: axfrRecords(req.zone) }
    : ixfrRecords(req.zone, req.clientSerial, journal);
  const q = { id: req.query.msg.id, question: req.query.question, buf: req.query.buf };
  return { style: picked.style, messages: packTransfer(q, picked.records, req.key, req.requestMac, nowS) };
}
