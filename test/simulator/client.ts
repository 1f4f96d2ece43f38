/** Test helpers that talk to a running simulator over real HTTP, as the sender does. */
import { createServer, type IncomingHttpHeaders, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';

export interface Answer {
  status: number;
  headers: Headers;
  body: any;
}

export interface SendOptions {
  token?: string | null;
  phoneNumberId?: string;
  version?: string;
  raw?: string;
}

export const PHONE_NUMBER_ID = '106540352242922';

/** A valid text message to `to`, carrying `id` as biz_opaque_callback_data. */
export function textMessage(to: string, id?: string, text = 'hello'): Record<string, unknown> {
  return {
    messaging_product: 'whatsapp',
    recipient_type: 'individual',
    to,
    type: 'text',
    text: { body: text },
    ...(id === undefined ? {} : { biz_opaque_callback_data: id }),
  };
}

export async function send(baseUrl: string, body: unknown, opts: SendOptions = {}): Promise<Answer> {
  const headers: Record<string, string> = { 'content-type': 'application/json' };
  if (opts.token !== null) headers.authorization = `Bearer ${opts.token ?? 'test-token'}`;
  const url = `${baseUrl}/${opts.version ?? 'v21.0'}/${opts.phoneNumberId ?? PHONE_NUMBER_ID}/messages`;
  const res = await fetch(url, { method: 'POST', headers, body: opts.raw ?? JSON.stringify(body) });
  return { status: res.status, headers: res.headers, body: await res.json() };
}

export async function call(baseUrl: string, method: string, path: string, body?: unknown): Promise<Answer> {
  const res = await fetch(baseUrl + path, {
    method,
    headers: body === undefined ? {} : { 'content-type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const text = await res.text();
  return { status: res.status, headers: res.headers, body: text === '' ? null : JSON.parse(text) };
}

export interface Received {
  headers: IncomingHttpHeaders;
  raw: string;
}

/** An HTTP endpoint that records what is posted to it and answers with `status`. */
export class WebhookReceiver {
  readonly received: Received[] = [];
  status = 200;
  private readonly server: Server;
  private waiters: Array<{ count: number; resolve: () => void }> = [];

  constructor() {
    this.server = createServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        this.received.push({ headers: req.headers, raw: Buffer.concat(chunks).toString('utf8') });
        res.writeHead(this.status).end();
        this.waiters = this.waiters.filter((w) => (this.received.length >= w.count ? (w.resolve(), false) : true));
      });
    });
  }

  async start(): Promise<string> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    return `http://127.0.0.1:${(this.server.address() as AddressInfo).port}/webhooks/whatsapp`;
  }

  /** Resolves once `count` posts have arrived; fails after `timeoutMs`. */
  waitFor(count: number, timeoutMs = 5000): Promise<void> {
    if (this.received.length >= count) return Promise.resolve();
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`expected ${count} webhook posts within ${timeoutMs} ms, got ${this.received.length}`)), timeoutMs);
      this.waiters.push({ count, resolve: () => (clearTimeout(timer), resolve()) });
    });
  }

  close(): Promise<void> {
    this.server.closeAllConnections();
    return new Promise((resolve) => this.server.close(() => resolve()));
  }
}

/** A clock the test moves by hand, so rate windows are checked without sleeping. */
export class ManualClock {
  constructor(public now = 1_700_000_000_000) {}
  readonly read = (): number => this.now;
  advance(ms: number): void {
    this.now += ms;
  }
}
