/**
 * TLS credentials for STARTTLS (RFC 3207): configured PEM files, or a self-signed certificate
 * generated on first start and kept under the data directory (key mode 0600).
 *
 * node:crypto makes keys but not certificates, so the certificate is built here: a minimal X.509
 * v3 (RFC 5280) DER with an ECDSA P-256 key signed with SHA-256 (RFC 5758 3.2), the host name as
 * CN and as a subjectAltName dNSName, basicConstraints cA=false and extKeyUsage serverAuth.
 * Opportunistic STARTTLS between MTAs does not authenticate certificates (RFC 7435), so a
 * self-signed one gives encryption from the first start; operators configure a real one with
 * `tls: { key, cert }` or by replacing the two files.
 */
import { X509Certificate, createPrivateKey, createPublicKey, generateKeyPairSync, randomBytes, sign } from "node:crypto";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { smtpErrors } from "./smtp/errors.ts";

/** A private key and certificate chain in PEM. */
export interface TlsCredentials {
  readonly key: string;
  readonly cert: string;
}

/** Validity of a generated certificate. */
export const SELF_SIGNED_DAYS = 825;
const DAY_MS = 86_400_000;

// ---- DER (X.690) encoding, just what a certificate needs

function derLength(n: number): Buffer {
  if (n < 0x80) return Buffer.from([n]);
  const bytes: number[] = [];
  for (let v = n; v > 0; v = Math.floor(v / 256)) bytes.unshift(v & 0xff);
  return Buffer.from([0x80 | bytes.length, ...bytes]);
}

function tlv(tag: number, ...content: Buffer[]): Buffer {
  const body = Buffer.concat(content);
  return Buffer.concat([Buffer.from([tag]), derLength(body.length), body]);
}

const seq = (...c: Buffer[]): Buffer => tlv(0x30, ...c);
const set = (...c: Buffer[]): Buffer => tlv(0x31, ...c);

function oid(dotted: string): Buffer {
  const parts = dotted.split(".").map(Number);
  const [a = 0, b = 0, ...rest] = parts;
  const out: number[] = [a * 40 + b];
  for (const p of rest) {
    const chunk: number[] = [p & 0x7f];
    for (let v = Math.floor(p / 128); v > 0; v = Math.floor(v / 128)) chunk.unshift(0x80 | (v & 0x7f));
    out.push(...chunk);
  }
  return tlv(0x06, Buffer.from(out));
}

function positiveInteger(bytes: Buffer): Buffer {
  const trimmed = bytes[0] === 0 ? bytes.subarray(1) : bytes;
  return tlv(0x02, (trimmed[0] ?? 0) & 0x80 ? Buffer.concat([Buffer.from([0]), trimmed]) : trimmed);
}

/** RFC 5280 4.1.2.5: UTCTime through 2049, GeneralizedTime from 2050. */
function time(d: Date): Buffer {
  const iso = d.toISOString().replace(/[-:T]/g, "").slice(0, 14) + "Z";
  return d.getUTCFullYear() < 2050 ? tlv(0x17, Buffer.from(iso.slice(2), "ascii")) : tlv(0x18, Buffer.from(iso, "ascii"));
}

const OID_ECDSA_SHA256 = "1.2.840.10045.4.3.2";
const OID_CN = "2.5.4.3";
const OID_SAN = "2.5.29.17";
const OID_BASIC_CONSTRAINTS = "2.5.29.19";
const OID_EXT_KEY_USAGE = "2.5.29.37";
const OID_SERVER_AUTH = "1.3.6.1.5.5.7.3.1";

/** A fresh ECDSA P-256 key and a self-signed certificate for `hostname`. */
export function selfSignedCertificate(hostname: string, now: Date = new Date()): TlsCredentials {
  if (!/^[a-zA-Z0-9.-]{1,253}$/.test(hostname)) throw smtpErrors.make("SMTP_CONFIG_INVALID", `host name ${hostname}`);
  const { privateKey, publicKey } = generateKeyPairSync("ec", { namedCurve: "P-256" });
  const sigAlg = seq(oid(OID_ECDSA_SHA256));
  const name = seq(set(seq(oid(OID_CN), tlv(0x0c, Buffer.from(hostname, "utf8")))));
  const extensions = tlv(
    0xa3,
    seq(
      seq(oid(OID_SAN), tlv(0x04, seq(tlv(0x82, Buffer.from(hostname, "ascii"))))),
      seq(oid(OID_BASIC_CONSTRAINTS), tlv(0x01, Buffer.from([0xff])), tlv(0x04, seq())),
      seq(oid(OID_EXT_KEY_USAGE), tlv(0x04, seq(oid(OID_SERVER_AUTH)))),
    ),
  );
  const serial = randomBytes(16);
  serial[0] = ((serial[0] ?? 0) & 0x7f) | 0x01;
  const tbs = seq(
    tlv(0xa0, positiveInteger(Buffer.from([2]))),
    positiveInteger(serial),
    sigAlg,
    name,
    seq(time(new Date(now.getTime() - DAY_MS)), time(new Date(now.getTime() + SELF_SIGNED_DAYS * DAY_MS))),
    name,
    publicKey.export({ format: "der", type: "spki" }),
    extensions,
  );
  const signature = sign("sha256", tbs, { key: privateKey, dsaEncoding: "der" });
  const der = seq(tbs, sigAlg, tlv(0x03, Buffer.from([0]), signature));
  const b64 = der.toString("base64").replace(/(.{64})/g, "$1\n").replace(/\n$/, "");
  return {
    key: privateKey.export({ format: "pem", type: "pkcs8" }).toString(),
    cert: `-----BEGIN CERTIFICATE-----\n${b64}\n-----END CERTIFICATE-----\n`,
  };
}

/** Checks that `creds` parse and that the key belongs to the (first) certificate. */
export function checkTlsCredentials(creds: TlsCredentials): void {
  try {
    const cert = new X509Certificate(creds.cert);
    const key = createPrivateKey(creds.key);
    if (!cert.checkPrivateKey(key)) throw new Error("the key does not match the certificate");
    createPublicKey(key);
  } catch (e) {
    throw smtpErrors.make("SMTP_TLS_INVALID", (e as Error).message);
  }
}

function writePrivate(path: string, text: string, mode: number): void {
  const tmp = `${path}.${process.pid}.tmp`;
  const fd = openSync(tmp, "w", mode);
  try {
    writeSync(fd, text);
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
  renameSync(tmp, path);
}

/**
 * The credentials in `<dir>/smtp-key.pem` and `<dir>/smtp-cert.pem`, generating a self-signed
 * pair for `hostname` on first use. SMTP_TLS_INVALID when existing files do not parse or match.
 */
export function loadOrCreateTls(dir: string, hostname: string): TlsCredentials {
  const keyPath = join(dir, "smtp-key.pem");
  const certPath = join(dir, "smtp-cert.pem");
  if (!existsSync(keyPath) || !existsSync(certPath)) {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    const fresh = selfSignedCertificate(hostname);
    writePrivate(keyPath, fresh.key, 0o600);
    writePrivate(certPath, fresh.cert, 0o644);
  }
  let creds: TlsCredentials;
  try {
    creds = { key: readFileSync(keyPath, "utf8"), cert: readFileSync(certPath, "utf8") };
  } catch (e) {
    throw smtpErrors.make("SMTP_TLS_INVALID", (e as Error).message);
  }
  checkTlsCredentials(creds);
  return creds;
}
