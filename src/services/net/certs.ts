/**
 * Per-domain TLS certificates for SNI (RFC 6066 §3): one self-signed ECDSA P-256 certificate per
 * routed host, made on first use by the mail part's generator (services/mail/tls.ts) and kept as
 * `<dir>/<host>.key.pem` (mode 0600) and `<dir>/<host>.cert.pem`. Only hosts of the current
 * route table get a certificate, so a client cannot make the gateway mint (and store) one for an
 * arbitrary name; other names get the default certificate. ACME replaces the files later.
 */
import { createSecureContext, type SecureContext } from "node:tls";
import { closeSync, existsSync, fsyncSync, mkdirSync, openSync, readFileSync, renameSync, writeSync } from "node:fs";
import { join } from "node:path";
import { checkTlsCredentials, selfSignedCertificate, type TlsCredentials } from "../mail/tls.ts";
import { netErrors } from "./errors.ts";
import { isCanonicalHost } from "./normalize.ts";

/** The name on the default certificate (served for unknown or absent SNI). */
export const DEFAULT_CERT_HOST = "gateway.nexus.invalid";
/** Most secure contexts kept in memory. */
export const CERT_CONTEXTS_MAX = 10_000;

function writeFileDurably(path: string, text: string, mode: number): void {
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

/** The credentials of `host` under `dir`, generated self-signed on first use. Throws NET_TLS_FAILED. */
export function loadOrCreateHostCert(dir: string, host: string): TlsCredentials {
  if (!isCanonicalHost(host)) throw netErrors.make("NET_TLS_FAILED", `not a host name: ${host}`);
  const keyPath = join(dir, `${host}.key.pem`);
  const certPath = join(dir, `${host}.cert.pem`);
  try {
    if (!existsSync(keyPath) || !existsSync(certPath)) {
      mkdirSync(dir, { recursive: true, mode: 0o700 });
      const fresh = selfSignedCertificate(host);
      writeFileDurably(keyPath, fresh.key, 0o600);
      writeFileDurably(certPath, fresh.cert, 0o644);
    }
    const creds = { key: readFileSync(keyPath, "utf8"), cert: readFileSync(certPath, "utf8") };
    checkTlsCredentials(creds);
    return creds;
  } catch (e) {
    throw netErrors.make("NET_TLS_FAILED", `${host}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

/** Secure contexts per routed host, created lazily. */
export class CertStore {
  private readonly contexts = new Map<string, SecureContext>();
  private hosts: ReadonlySet<string> = new Set();
  readonly defaultCreds: TlsCredentials;
  readonly dir: string;

  constructor(dir: string) {
    this.dir = dir;
    this.defaultCreds = loadOrCreateHostCert(dir, DEFAULT_CERT_HOST);
  }

  /** Adopts the hosts of a new route table. */
  setHosts(hosts: Iterable<string>): void {
    this.hosts = new Set(hosts);
    for (const h of this.contexts.keys()) if (!this.hosts.has(h)) this.contexts.delete(h);
  }

  /** The context for an SNI server name, or undefined (the default certificate) when it is not routed. */
  context(servername: string): SecureContext | undefined {
    const host = servername.toLowerCase().replace(/\.$/, "");
    if (!this.hosts.has(host)) return undefined;
    let ctx = this.contexts.get(host);
    if (ctx === undefined) {
      if (this.contexts.size >= CERT_CONTEXTS_MAX) this.contexts.clear();
      ctx = createSecureContext(loadOrCreateHostCert(this.dir, host));
      this.contexts.set(host, ctx);
    }
    return ctx;
  }
}
