/**
 * The inbound path: Meta's signed webhooks (one user text message each, `X-Hub-Signature-256`
 * with the fleet's app secret) → ingress → dispatcher (the built-in echo handler: BOT_HANDLER_URL
 * unset) → sender → provider. The figure is webhooks / (first webhook → the provider's receipt of
 * the last reply), every reply delivered.
 */
import { Pool } from 'undici';
import { sign } from '../../services/ingress/signature.js';
import { CpuMeter, perMessage, type Pids } from './cpu.js';
import { deliveredCount, lastEntry, waitDelivered } from './delivery.js';
import type { Fleet } from './fleet.js';
import { TEXT, users } from './message.js';
import type { Log } from './pipeline.js';
import type { LedgerClient } from './provider.js';
import type { Sizes } from './sizes.js';

export interface InboundResult {
  count: number;
  perSecond: number;
  seconds: number;
  cpu: { byProcess: Record<string, number>; total: number };
}

/** A webhook body in Meta's shape (/work/shared/fixtures/whatsapp/inbound-text.json) with one text message. */
export function webhookBody(phoneNumberId: string, from: string, messageId: string, at: number): string {
  const value = {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '15550783881', phone_number_id: phoneNumberId },
    contacts: [{ profile: { name: 'Bench User' }, wa_id: from }],
    messages: [{ from, id: messageId, timestamp: String(Math.floor(at / 1000)), type: 'text', text: { body: TEXT } }],
  };
  return JSON.stringify({ object: 'whatsapp_business_account', entry: [{ id: '102290129340398', changes: [{ value, field: 'messages' }] }] });
}

/** Posts `count` signed webhooks, `concurrency` at a time; each must be answered 200. */
async function postWebhooks(pool: Pool, fleet: Fleet, tag: string, count: number, s: Sizes): Promise<number> {
  const to = users(s.inbound.users);
  const secret = fleet.cfg.whatsappAppSecret;
  const firstSentAt = Date.now();
  let next = 0;
  const lane = async () => {
    while (next < count) {
      const i = next++;
      const body = webhookBody(fleet.cfg.whatsappPhoneNumberId, to[i % to.length], `wamid.bench-${tag}-${i}`, Date.now());
      const headers = { 'content-type': 'application/json', 'x-hub-signature-256': sign(body, secret) };
      const res = await pool.request({ method: 'POST', path: '/webhooks/whatsapp', headers, body });
      const text = await res.body.text();
      if (res.statusCode !== 200) throw new Error(`webhook answered ${res.statusCode}: ${text.slice(0, 300)}`);
    }
  };
  await Promise.all(Array.from({ length: s.inbound.concurrency }, lane));
  return firstSentAt;
}

export async function measureInbound(fleet: Fleet, ledger: LedgerClient, s: Sizes, pids: Pids, log: Log): Promise<InboundResult> {
  const p = s.inbound;
  const pool = new Pool(fleet.ingressUrl, { connections: p.concurrency, keepAliveTimeout: 30_000 });
  const tag = Date.now().toString(36);
  try {
    log(`inbound warm-up: ${p.warmup} webhooks`);
    const warm = await deliveredCount(ledger);
    await postWebhooks(pool, fleet, `${tag}w`, p.warmup, s);
    await waitDelivered(ledger, warm + p.warmup, Date.now() + s.drainTimeoutMs, 'inbound warm-up');
    log(`inbound: ${p.count} signed webhooks, ${p.users} users, ${p.concurrency} in flight`);
    const base = await deliveredCount(ledger);
    const meter = new CpuMeter(pids);
    const firstSentAt = await postWebhooks(pool, fleet, tag, p.count, s);
    await waitDelivered(ledger, base + p.count, Date.now() + s.drainTimeoutMs, 'inbound');
    const cpu = perMessage(meter.stop(), p.count);
    const seconds = ((await lastEntry(ledger)).receivedAt - firstSentAt) / 1000;
    return { count: p.count, perSecond: p.count / seconds, seconds, cpu };
  } finally {
    await pool.close().catch(() => {});
  }
}
