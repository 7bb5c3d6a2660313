/**
 * FETCH data (RFC 3501 6.4.5 and 7.4.2) computed from a message: ENVELOPE, BODY and
 * BODYSTRUCTURE from its MIME tree, and the bytes of BODY[<section>]<partial>.
 * Pure: a message (CRLF line ends) and its parsed tree in, response chunks out.
 */
import { parseAddressList, type EnvelopeAddress } from "./address.ts";
import { countLines, headerValue, parseParamHeader, partAt, type HeaderField, type MimePart } from "./mime.ts";
import type { Section } from "./parser.ts";
import { ResponseBuilder } from "./wire.ts";

function addressList(headers: readonly HeaderField[], name: string): EnvelopeAddress[] | undefined {
  const v = headerValue(headers, name);
  if (v === undefined) return undefined;
  const list = parseAddressList(v);
  return list.length === 0 ? undefined : list;
}

function addresses(out: ResponseBuilder, list: readonly EnvelopeAddress[] | undefined): void {
  if (list === undefined) {
    out.raw("NIL");
    return;
  }
  out.raw("(");
  for (const a of list) {
    out.raw("(").nstring(a.name).raw(" ").nstring(a.adl).raw(" ").nstring(a.mailbox).raw(" ").nstring(a.host).raw(")");
  }
  out.raw(")");
}

/** RFC 3501 7.4.2 ENVELOPE of a header section, appended to `out` (a new builder by default). */
export function envelope(headers: readonly HeaderField[], out = new ResponseBuilder()): ResponseBuilder {
  const from = addressList(headers, "from");
  // "If the Sender or Reply-To lines are absent ... or are present but empty, the server sets the
  // corresponding member of the envelope to be the same value as the from member."
  const sender = addressList(headers, "sender") ?? from;
  const replyTo = addressList(headers, "reply-to") ?? from;
  out.raw("(").nstring(headerValue(headers, "date")).raw(" ").nstring(headerValue(headers, "subject")).raw(" ");
  for (const list of [from, sender, replyTo, addressList(headers, "to"), addressList(headers, "cc"), addressList(headers, "bcc")]) {
    addresses(out, list);
    out.raw(" ");
  }
  return out.nstring(headerValue(headers, "in-reply-to")).raw(" ").nstring(headerValue(headers, "message-id")).raw(")");
}

function params(out: ResponseBuilder, list: ReadonlyArray<readonly [string, string]>): void {
  if (list.length === 0) {
    out.raw("NIL");
    return;
  }
  out.raw("(");
  list.forEach(([k, v], i) => {
    if (i > 0) out.raw(" ");
    out.string(k).raw(" ").string(v);
  });
  out.raw(")");
}

function disposition(out: ResponseBuilder, headers: readonly HeaderField[]): void {
  const v = headerValue(headers, "content-disposition");
  const parsed = v === undefined ? undefined : parseParamHeader(v);
  if (parsed === undefined || parsed.value === "") {
    out.raw("NIL");
    return;
  }
  out.raw("(").string(parsed.value).raw(" ");
  params(out, parsed.params);
  out.raw(")");
}

function language(out: ResponseBuilder, headers: readonly HeaderField[]): void {
  const v = headerValue(headers, "content-language");
  const langs = (v ?? "").split(/[\s,]+/).filter((x) => x.length > 0).slice(0, 50);
  if (langs.length === 0) out.raw("NIL");
  else if (langs.length === 1) out.string(langs[0] ?? "");
  else {
    out.raw("(");
    langs.forEach((l, i) => (i > 0 ? out.raw(" ") : out).string(l));
    out.raw(")");
  }
}

function extension(out: ResponseBuilder, h: readonly HeaderField[]): void {
  out.raw(" ");
  disposition(out, h);
  out.raw(" ");
  language(out, h);
  out.raw(" ").nstring(headerValue(h, "content-location"));
}

/**
 * RFC 3501 7.4.2 BODYSTRUCTURE (`extended`) or BODY of an entity: for a multipart the children
 * then subtype (and parameters, disposition, language, location); for a leaf type, subtype,
 * parameters, id, description, encoding, size, then lines (text/*), envelope, body and lines
 * (message/rfc822), and the extension data (md5, disposition, language, location).
 */
export function bodyStructure(buf: Buffer, part: MimePart, extended: boolean, out = new ResponseBuilder()): ResponseBuilder {
  const ct = part.contentType;
  const h = part.headers;
  out.raw("(");
  if (part.children.length > 0) {
    for (const c of part.children) bodyStructure(buf, c, extended, out);
    out.raw(" ").string(ct.subtype);
    if (extended) {
      out.raw(" ");
      params(out, ct.params);
      extension(out, h);
    }
    return out.raw(")");
  }
  const encoding = headerValue(h, "content-transfer-encoding")?.toLowerCase() || "7bit";
  out.string(ct.type).raw(" ").string(ct.subtype).raw(" ");
  params(out, ct.params);
  out.raw(" ").nstring(headerValue(h, "content-id")).raw(" ").nstring(headerValue(h, "content-description"));
  out.raw(" ").string(encoding).raw(` ${part.end - part.bodyStart}`);
  if (part.message !== undefined) {
    out.raw(" ");
    envelope(part.message.headers, out);
    out.raw(" ");
    bodyStructure(buf, part.message, extended, out);
    out.raw(` ${countLines(buf, part.bodyStart, part.end)}`);
  } else if (ct.type === "text") {
    out.raw(` ${countLines(buf, part.bodyStart, part.end)}`);
  }
  if (extended) {
    out.raw(" ").nstring(headerValue(h, "content-md5"));
    extension(out, h);
  }
  return out.raw(")");
}

function filterHeader(part: MimePart, fields: readonly string[], not: boolean): Buffer {
  const want = new Set(fields.map((f) => f.toLowerCase()));
  const kept = part.headers.filter((f) => want.has(f.name) !== not).map((f) => f.raw);
  // The result ends with the empty line that ends a header section (RFC 3501 6.4.5 examples).
  return Buffer.from(kept.join("") + "\r\n", "latin1");
}

/**
 * The bytes of BODY[<section>] (RFC 3501 6.4.5), or undefined when the section names no part
 * (the response then carries an empty string, as Dovecot's does).
 */
export function sectionBytes(buf: Buffer, root: MimePart, section: Section): Buffer | undefined {
  const part = partAt(root, section.path);
  if (part === undefined) return undefined;
  const top = section.path.length === 0;
  switch (section.text) {
    case undefined:
      return top ? buf : buf.subarray(part.bodyStart, part.end);
    case "MIME":
      return buf.subarray(part.start, part.bodyStart);
    case "HEADER":
    case "TEXT":
    case "HEADER.FIELDS":
    case "HEADER.FIELDS.NOT": {
      // Below the top these apply to a message/rfc822 part's embedded message.
      const msg = top ? part : part.message;
      if (msg === undefined) return undefined;
      if (section.text === "HEADER") return buf.subarray(msg.start, msg.bodyStart);
      if (section.text === "TEXT") return buf.subarray(msg.bodyStart, msg.end);
      return filterHeader(msg, section.fields, section.text === "HEADER.FIELDS.NOT");
    }
    default: {
      const never: never = section.text;
      return never;
    }
  }
}

/** Applies a `<start.length>` partial (RFC 3501 6.4.5): the octets from start, at most length. */
export function applyPartial(data: Buffer, partial: readonly [number, number] | undefined): Buffer {
  if (partial === undefined) return data;
  const [start, length] = partial;
  if (start >= data.length) return Buffer.alloc(0);
  return data.subarray(start, Math.min(data.length, start + length));
}
