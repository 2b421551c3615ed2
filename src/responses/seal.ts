// Reasoning returned as `encrypted_content` (store: false with include reasoning.encrypted_content):
// AES-256-GCM under a server key, bound to the owner, so a client can hand it back in the next
// input but can neither read, forge nor alter it, and another account cannot use it.
import { createCipheriv, createDecipheriv, randomBytes } from "node:crypto";

const VERSION = 1;
const IV_BYTES = 12;
const TAG_BYTES = 16;

export class ReasoningSeal {
  constructor(private readonly key: Buffer) {
    if (key.length !== 32) throw new Error("the reasoning seal needs a 32-byte key");
  }

  /** The opaque token: version, IV, ciphertext and tag, base64. */
  seal(owner: string, text: string): string {
    const iv = randomBytes(IV_BYTES);
    const cipher = createCipheriv("aes-256-gcm", this.key, iv);
    cipher.setAAD(Buffer.from(owner));
    const body = Buffer.concat([cipher.update(JSON.stringify({ text }), "utf8"), cipher.final()]);
    return Buffer.concat([Buffer.from([VERSION]), iv, body, cipher.getAuthTag()]).toString("base64");
  }

  /** The reasoning text, or null when the token was not sealed here for this owner (or was altered). */
  open(owner: string, token: string): string | null {
    const raw = Buffer.from(token, "base64");
    if (raw.length < 1 + IV_BYTES + TAG_BYTES || raw[0] !== VERSION) return null;
    try {
      const decipher = createDecipheriv("aes-256-gcm", this.key, raw.subarray(1, 1 + IV_BYTES));
      decipher.setAAD(Buffer.from(owner));
      decipher.setAuthTag(raw.subarray(raw.length - TAG_BYTES));
      const plain = Buffer.concat([decipher.update(raw.subarray(1 + IV_BYTES, raw.length - TAG_BYTES)), decipher.final()]).toString("utf8");
      const parsed = JSON.parse(plain) as { text?: unknown };
      return typeof parsed.text === "string" ? parsed.text : null;
    } catch {
      return null;
    }
  }
}
