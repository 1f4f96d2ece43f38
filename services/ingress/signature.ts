/**
 * Meta's webhook signature: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body bytes,
 * keyed with the app secret>`, compared in constant time. The raw bytes, not a re-serialised
 * parse: any change of whitespace or key order would break a genuine signature.
 */
import { createHmac, timingSafeEqual } from 'node:crypto';

export type SignatureCheck = 'ok' | 'missing' | 'invalid';

export function sign(rawBody: Buffer | string, appSecret: string): string {
  return 'sha256=' + createHmac('sha256', appSecret).update(rawBody).digest('hex');
}

export function checkSignature(rawBody: Buffer, header: string | undefined, appSecret: string): SignatureCheck {
  if (header === undefined || header === '') return 'missing';
  const m = /^sha256=([0-9a-f]{64})$/i.exec(header.trim());
  if (!m) return 'invalid';
  const given = Buffer.from(m[1], 'hex');
  const expected = createHmac('sha256', appSecret).update(rawBody).digest();
  // An unset secret (a config without WHATSAPP_APP_SECRET) verifies nothing: anyone can sign with ''.
  return timingSafeEqual(given, expected) && appSecret !== '' ? 'ok' : 'invalid';
}
