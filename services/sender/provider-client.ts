/**
 * The Cloud API client (docs/ARCHITECTURE.md, "The provider contract"): undici keep-alive pool, one deadline for the whole call
 * (PROVIDER_TIMEOUT_MS: connect, headers and body together), a cap on the answer's size
 * (PROVIDER_MAX_RESPONSE_BYTES), and every non-2xx answer turned into a classified error.
 */
import pLimit, { type LimitFunction } from 'p-limit';
import { Pool } from 'undici';
import type { Envelope } from '../../shared/domain/envelope.js';
import { classifyNetworkError, classifyProviderError } from '../../shared/failures/classify.js';
import { PermanentError, TransientError, type ClassifiedError } from '../../shared/failures/errors.js';
import { CallDeadlineError, postCapped, type CappedAnswer } from '../../shared/platform/http-body.js';

export interface ProviderConfig {
  baseUrl: string;
  graphApiVersion: string;
  /** The default number: messages without `from` go out from it. */
  phoneNumberId: string;
  accessToken: string;
  /** Further business numbers a message may name in `from`, each with its own token. */
  others?: Array<{ id: string; accessToken: string }>;
  /** Deadline of one call, from the request to the end of the answer's body. */
  timeoutMs: number;
  /** Largest answer read (0: no cap); default 64 KiB. */
  maxResponseBytes?: number;
  connections?: number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 64 * 1024;

export interface SendResult {
  wamid: string | null;
  status: number;
}

/** Connections of the urgent pool. */
const URGENT_CONNECTIONS = 8;

/**
 * Sends let through to a pool at once (`slot`): a quarter more than its connections, so that the
 * dedup round trip before each call overlaps the calls in flight instead of leaving a connection idle.
 */
export function slotsFor(connections: number): number {
  return connections + Math.ceil(connections / 4);
}

export class ProviderClient {
  private readonly pool: Pool;
  /**
   * Urgent sends get their own connections: in a shared pool they would queue behind every normal
   * request already waiting for a connection, which under a backlog is hundreds.
   */
  private readonly urgentPool: Pool;
  /** The slots of each pool (`slotsFor` its connections; see `slot`). */
  private readonly slots: LimitFunction;
  private readonly urgentSlots: LimitFunction;
  /** Per business number: the messages path and the Authorization header. */
  private readonly routes = new Map<string, { path: string; auth: string }>();
  private closing: Promise<void> | null = null;

  constructor(private readonly cfg: ProviderConfig) {
    const base = new URL(cfg.baseUrl);
    const poolOptions = (connections: number) => ({
      connections,
      pipelining: 1,
      keepAliveTimeout: 30_000,
      // No per-phase headersTimeout/bodyTimeout of the same length: they raced the whole-call
      // deadline (send) and, winning, named the failure a network error. The deadline covers every
      // phase; undici's own (300 s) stay as a backstop only.
      connectTimeout: Math.min(cfg.timeoutMs, 5000),
    });
    const connections = cfg.connections ?? 64;
    this.pool = new Pool(base.origin, poolOptions(connections));
    this.urgentPool = new Pool(base.origin, poolOptions(URGENT_CONNECTIONS));
    this.slots = pLimit(slotsFor(connections));
    this.urgentSlots = pLimit(slotsFor(URGENT_CONNECTIONS));
    const prefix = base.pathname.replace(/\/$/, '');
    for (const n of [{ id: cfg.phoneNumberId, accessToken: cfg.accessToken }, ...(cfg.others ?? [])]) {
      this.routes.set(n.id, { path: `${prefix}/${cfg.graphApiVersion}/${encodeURIComponent(n.id)}/messages`, auth: `Bearer ${n.accessToken}` });
    }
  }

  /**
   * The request body of §7 for an outbound envelope. The payload is the Cloud API message object
   * (`type` plus the object it names: text, template, image/video/audio/document/sticker by link or
   * id, interactive, location, contacts, reaction; optional `context` for replies) and is passed
   * through as it is; the envelope alone decides the recipient and the callback id, so a payload
   * carrying its own `to` (a bot reply, say) cannot redirect a message.
   */
  static body(env: Envelope): Record<string, unknown> {
    if (env.payload.status === 'read') {
      // A read receipt (`POST /v1/messages` with `status: "read"`) is Meta's own body, no recipient:
      // it names the inbound message. The answer is `{"success": true}`, no wamid, no webhooks.
      const { message_id, typing_indicator } = env.payload;
      return { messaging_product: 'whatsapp', status: 'read', message_id, ...(typing_indicator !== undefined ? { typing_indicator } : {}) };
    }
    const { messaging_product: _mp, recipient_type: _rt, to: _to, biz_opaque_callback_data: _cb, type, ...content } = env.payload;
    return {
      messaging_product: 'whatsapp',
      recipient_type: 'individual',
      to: env.user,
      type: type ?? 'text',
      ...content,
      biz_opaque_callback_data: env.id,
    };
  }

  /**
   * Runs `fn` once the envelope's pool has a slot for it (FIFO; `slotsFor` its connections). The
   * sender marks a message `sending` inside, right before the call: a crash then leaves about the
   * calls really in flight ambiguous — not every delivery that was still waiting for a connection
   * (under a backlog, nearly all of a replica's prefetch).
   */
  slot<T>(env: Pick<Envelope, 'priority'>, fn: () => Promise<T>): Promise<T> {
    return (env.priority === 'urgent' ? this.urgentSlots : this.slots)(fn);
  }

  /**
   * A timeout or an oversized answer is transient and not a refusal (send-ledger.ts
   * providerRefused): a 2xx whose body never ended may have sent the message, so a redelivery waits
   * for its status webhook before sending again.
   */
  async send(env: Envelope): Promise<SendResult> {
    const route = this.routes.get(env.from ?? this.cfg.phoneNumberId);
    if (!route) {
      // The ingress only accepts configured numbers: this sender's WHATSAPP_NUMBERS lacks one the ingress has.
      throw new PermanentError(`business number ${env.from} is not configured in this sender (WHATSAPP_NUMBERS); replay once it is`, {
        code: 'unknown-number',
      });
    }
    const maxBytes = this.cfg.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
    let answer: CappedAnswer;
    try {
      answer = await postCapped(
        env.priority === 'urgent' ? this.urgentPool : this.pool,
        { path: route.path, headers: { authorization: route.auth, 'content-type': 'application/json' }, body: JSON.stringify(ProviderClient.body(env)) },
        { timeoutMs: this.cfg.timeoutMs, maxBytes },
      );
    } catch (err) {
      throw this.failed(err);
    }
    const { statusCode, headers, text } = answer;
    if (text === null) {
      throw new TransientError(`provider answer larger than PROVIDER_MAX_RESPONSE_BYTES (${maxBytes} bytes); not read`, { code: 'response-too-large' });
    }
    let parsed: unknown = undefined;
    try {
      parsed = JSON.parse(text);
    } catch {
      // A body that is not JSON still has a status to classify.
    }
    if (statusCode >= 200 && statusCode < 300) {
      const wamid = (parsed as { messages?: Array<{ id?: string }> } | undefined)?.messages?.[0]?.id ?? null;
      return { wamid, status: statusCode };
    }
    throw classifyProviderError(statusCode, parsed, headers['retry-after']);
  }

  private failed(err: unknown): ClassifiedError {
    if (err instanceof CallDeadlineError) {
      return new TransientError(`provider call not finished within PROVIDER_TIMEOUT_MS (${this.cfg.timeoutMs} ms)`, { code: 'timeout', cause: err });
    }
    return classifyNetworkError(err);
  }

  close(): Promise<void> {
    return (this.closing ??= Promise.all([this.pool.close(), this.urgentPool.close()]).then(() => undefined));
  }
}
