/**
 * The authenticator that binds IMAP logins to the mail directory the SMTP side uses: the user
 * name is the mailbox address, the password is checked against its scrypt verifier, and the
 * session is confined to that mailbox's Maildir (`<root>/<imvu>/<address>/Maildir`), so an
 * identity reaches only its own IMVU's mail (gate 16). Quota comes from the IMVU's envelope.
 */
import { PASSWORD_BYTES_MAX, parseAddress, type MailDirectory } from "../directory.ts";
import type { ImapAuthenticator } from "./session.ts";

/** An ImapAuthenticator over a MailDirectory (its ledger projection, or StaticMailDirectory). */
export function directoryAuthenticator(directory: MailDirectory): ImapAuthenticator {
  return async (user, password) => {
    const parsed = parseAddress(user);
    if (parsed === undefined || password.length === 0 || Buffer.byteLength(password) > PASSWORD_BYTES_MAX) return undefined;
    if (!(await directory.verifyPassword(parsed.address, password))) return undefined;
    const info = await directory.lookupMailbox(parsed.address);
    if (info === undefined) return undefined;
    return {
      mailboxRoot: info.maildirPath,
      user: info.address,
      async allowStore(bytes) {
        const now = await directory.lookupMailbox(parsed.address);
        if (now === undefined) return false;
        if (now.usedBytes + bytes > now.quotaBytes) return false;
        return now.quotaMessages === undefined || (now.usedMessages ?? 0) < now.quotaMessages;
      },
      onStored(bytes) {
        directory.recordDelivery(parsed.address, bytes);
      },
    };
  };
}
