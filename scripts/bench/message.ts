/**
 * The one message every figure carries: a text message whose envelope is about 300 bytes, the
 * send request that makes it, and the Cloud API request the sender posts for it.
 */
import { newEnvelope, type Envelope } from '../../shared/domain/envelope.js';
import { ProviderClient } from '../../services/sender/provider-client.js';

/** 120 characters: with the envelope's fields the JSON body comes to ~300 bytes. */
export const TEXT = 'Your order #48213 has shipped and will arrive on Thursday. Track it at https://example.com/t/48213 - reply STOP to opt out.';

/** `n` distinct recipients, stable across runs. */
export function users(n: number): string[] {
  return Array.from({ length: n }, (_, i) => String(15550000000 + i * 7919));
}

/** The body of POST /v1/messages for one message to `to`. */
export function sendRequest(to: string, priority: 'normal' | 'urgent' = 'normal'): Record<string, unknown> {
  return { to, type: 'text', text: { body: TEXT }, priority };
}

export function sampleEnvelope(to = users(1)[0]): Envelope {
  return newEnvelope({ kind: 'outbound', user: to, priority: 'normal', payload: { type: 'text', text: { body: TEXT } } });
}

/** The persistent AMQP body of the raw hop: the envelope a lane carries. */
export function envelopeBytes(): Buffer {
  return Buffer.from(JSON.stringify(sampleEnvelope()));
}

/** The Cloud API request body of the HTTP hop: what the sender posts for the same message. */
export function cloudApiBody(): string {
  return JSON.stringify(ProviderClient.body(sampleEnvelope()));
}

const CROCKFORD = '0123456789ABCDEFGHJKMNPQRSTVWXYZ';

/** The millisecond timestamp in a ULID's first 10 characters: when the ingress created the envelope. */
export function ulidTime(id: string): number {
  let t = 0;
  for (let i = 0; i < 10; i++) t = t * 32 + CROCKFORD.indexOf(id[i]);
  return t;
}
