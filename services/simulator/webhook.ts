/**
 * Status webhooks in Meta's shape (`statuses[]` under `entry[].changes[].value`), signed like Meta
 * signs them: `X-Hub-Signature-256: sha256=<hex HMAC-SHA256 of the raw body with the app secret>`.
 * Delivery is best-effort and asynchronous: a bounded queue, a few requests in flight, one message's
 * statuses posted in order (sent, then delivered, then read), failures counted and never retried.
 */
import { createHmac } from 'node:crypto';
import { Agent, request } from 'undici';
import { ERROR_CATALOGUE } from './errors.js';

export type StatusName = 'sent' | 'delivered' | 'read';

export interface WebhookOptions {
  url: string;
  appSecret: string;
  /** Statuses posted for each accepted message, in this order (default sent, delivered). */
  statuses?: StatusName[];
}

export interface StatusJob {
  wamid: string;
  to: string;
  id: string | null;
  phoneNumberId: string;
  /** Report this failure (a `failed` status) instead of the configured statuses. */
  failure?: { code: number; message?: string };
}

export interface WebhookStats {
  posted: number;
  failed: number;
  dropped: number;
}

const MAX_QUEUED = 100_000;
const MAX_IN_FLIGHT = 16;
const WABA_ID = '100000000000001';
const DISPLAY_PHONE_NUMBER = '15550000000';

/** `sha256=` + hex HMAC-SHA256 of `rawBody` keyed with the app secret. */
export function signBody(rawBody: string | Buffer, appSecret: string): string {
  return 'sha256=' + createHmac('sha256', appSecret).update(rawBody).digest('hex');
}

/** The webhook body Meta posts for one status of one message. */
export function statusPayload(job: StatusJob, status: StatusName | 'failed', at: Date): unknown {
  const value: Record<string, unknown> = {
    id: job.wamid,
    status,
    timestamp: String(Math.floor(at.getTime() / 1000)),
    recipient_id: job.to,
    ...(job.id === null ? {} : { biz_opaque_callback_data: job.id }),
  };
  if (status === 'sent' || status === 'delivered') {
    value.conversation = { id: `SIMCONV${job.to}`, origin: { type: 'service' } };
    value.pricing = { billable: true, pricing_model: 'PMP', category: 'service' };
  }
  if (status === 'failed' && job.failure) {
    const title = job.failure.message ?? ERROR_CATALOGUE[job.failure.code]?.title ?? 'Simulated failure';
    const details = ERROR_CATALOGUE[job.failure.code]?.details ?? title;
    value.errors = [{ code: job.failure.code, title, message: title, error_data: { details } }];
  }
  return {
    object: 'whatsapp_business_account',
    entry: [
      {
        id: WABA_ID,
        changes: [
          {
            value: {
              messaging_product: 'whatsapp',
              metadata: { display_phone_number: DISPLAY_PHONE_NUMBER, phone_number_id: job.phoneNumberId },
              statuses: [value],
            },
            field: 'messages',
          },
        ],
      },
    ],
  };
}

export class StatusWebhooks {
  private readonly queue: StatusJob[] = [];
  private readonly agent = new Agent({ connections: MAX_IN_FLIGHT, keepAliveTimeout: 10_000 });
  private readonly counts: WebhookStats = { posted: 0, failed: 0, dropped: 0 };
  private inFlight = 0;
  private closed = false;

  constructor(private readonly options: WebhookOptions) {}

  enqueue(job: StatusJob): void {
    if (this.closed) return;
    if (this.queue.length >= MAX_QUEUED) {
      this.counts.dropped++;
      return;
    }
    this.queue.push(job);
    this.pump();
  }

  stats(): WebhookStats {
    return { ...this.counts };
  }

  /** Drops what is queued and aborts what is in flight. */
  async close(): Promise<void> {
    this.closed = true;
    this.counts.dropped += this.queue.length;
    this.queue.length = 0;
    await this.agent.destroy();
  }

  private pump(): void {
    while (!this.closed && this.inFlight < MAX_IN_FLIGHT && this.queue.length > 0) {
      const job = this.queue.shift() as StatusJob;
      this.inFlight++;
      void this.deliver(job).finally(() => {
        this.inFlight--;
        this.pump();
      });
    }
  }

  private async deliver(job: StatusJob): Promise<void> {
    const statuses: Array<StatusName | 'failed'> = job.failure ? ['failed'] : (this.options.statuses ?? ['sent', 'delivered']);
    for (const status of statuses) {
      if (this.closed) return;
      if (!(await this.post(statusPayload(job, status, new Date())))) return;
    }
  }

  /** Posts one body; a failure stops the message's later statuses, like a lost delivery would. */
  private async post(payload: unknown): Promise<boolean> {
    const raw = JSON.stringify(payload);
    try {
      const res = await request(this.options.url, {
        method: 'POST',
        dispatcher: this.agent,
        headers: { 'content-type': 'application/json', 'x-hub-signature-256': signBody(raw, this.options.appSecret) },
        body: raw,
        headersTimeout: 10_000,
        bodyTimeout: 10_000,
      });
      await res.body.dump();
      const ok = res.statusCode >= 200 && res.statusCode < 300;
      if (ok) this.counts.posted++;
      else this.counts.failed++;
      return ok;
    } catch {
      if (!this.closed) this.counts.failed++;
      return false;
    }
  }
}
