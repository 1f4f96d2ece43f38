/**
 * Customer-service windows as the Cloud API keeps them: per (business number, user), open for 24 h
 * after the user's last inbound message. While enforcement is on, a free-form send (anything but a
 * template or a read receipt) to a user whose window is closed is refused with 131047. Time is the
 * simulator's clock (`SimulatorCore.now`), which tests move forward instead of waiting a day.
 */
import { request } from 'undici';
import { ERROR_CATALOGUE } from './errors.js';
import { signBody } from './webhook.js';

export const WINDOW_MS = 24 * 3600 * 1000;
export const RE_ENGAGEMENT = 131047;
/** Sends the window never holds: templates, and read receipts (the contract's type `read`, or none). */
const NOT_HELD = new Set(['template', 'read', '']);
/** A window opened without a number is open for every number. */
const ANY_NUMBER = '*';

export interface WindowRefusal {
  status: number;
  code: number;
}

export class Windows {
  /** Time of the user's last inbound message, by `number:user`. */
  private readonly last = new Map<string, number>();
  /** Off by default: most tests and benchmarks send free-form messages to users who never wrote. */
  enforce = false;

  /** The user wrote to `number` (any number when unset) at `at`. */
  open(user: string, at: number, number: string = ANY_NUMBER): void {
    const key = `${number}:${user}`;
    if ((this.last.get(key) ?? -Infinity) < at) this.last.set(key, at);
  }

  isOpen(number: string, user: string, now: number): boolean {
    const last = Math.max(this.last.get(`${number}:${user}`) ?? -Infinity, this.last.get(`${ANY_NUMBER}:${user}`) ?? -Infinity);
    return last <= now && now < last + WINDOW_MS;
  }

  /** 131047 for a free-form send outside the window while enforcing; null when the send may go on. */
  refusal(number: string, to: string, type: string, now: number): WindowRefusal | null {
    if (!this.enforce || NOT_HELD.has(type) || this.isOpen(number, to, now)) return null;
    return { status: ERROR_CATALOGUE[RE_ENGAGEMENT].status, code: RE_ENGAGEMENT };
  }

  list(): Array<{ phoneNumberId: string; user: string; lastInboundAt: number }> {
    return [...this.last].map(([key, at]) => {
      const i = key.indexOf(':');
      return { phoneNumberId: key.slice(0, i), user: key.slice(i + 1), lastInboundAt: at };
    });
  }

  clear(): void {
    this.last.clear();
    this.enforce = false;
  }
}

export interface InboundOptions {
  url: string;
  appSecret: string;
  phoneNumberId: string;
  from: string;
  text: string;
  at: number;
  wamid: string;
}

/** Meta's webhook for one inbound text message (`messages[]` under `entry[].changes[].value`). */
export function inboundPayload(o: Omit<InboundOptions, 'url' | 'appSecret'>): unknown {
  const message = { from: o.from, id: o.wamid, timestamp: String(Math.floor(o.at / 1000)), type: 'text', text: { body: o.text } };
  const value = {
    messaging_product: 'whatsapp',
    metadata: { display_phone_number: '15550000000', phone_number_id: o.phoneNumberId },
    contacts: [{ profile: { name: 'Simulated User' }, wa_id: o.from }],
    messages: [message],
  };
  return { object: 'whatsapp_business_account', entry: [{ id: '100000000000001', changes: [{ value, field: 'messages' }] }] };
}

/** Posts a signed inbound webhook (like Meta); the HTTP status of the answer. */
export async function postInbound(o: InboundOptions): Promise<number> {
  const raw = JSON.stringify(inboundPayload(o));
  const res = await request(o.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(raw, o.appSecret) },
    body: raw,
    headersTimeout: 10_000,
    bodyTimeout: 10_000,
  });
  await res.body.dump();
  return res.statusCode;
}
