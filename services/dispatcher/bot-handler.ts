/**
 * The bot handler contract (docs/BOT_HANDLER.md): an inbound event in,
 * `{"replies": [<Cloud API message object>...]}` out. Either the bot's own HTTP endpoint
 * (BOT_HANDLER_URL) or the built-in echo handler.
 */
import { request } from 'undici';
import { z } from 'zod';
import { describeIssue, outboundContent, type Envelope } from '../../shared/envelope.js';
import { classifyNetworkError, parseRetryAfter } from '../../shared/failures/classify.js';
import { PermanentError, PoisonMessageError, TransientError } from '../../shared/failures/errors.js';
import type { Metrics } from '../../shared/metrics.js';
import type { StageContext } from '../../shared/stage/worker.js';

export type Reply = Record<string, unknown>;

export interface BotHandler {
  handle(env: Envelope, ctx: StageContext): Promise<Reply[]>;
}

/** Replies "echo: <text>" to a text message, and nothing to anything else. */
export class EchoHandler implements BotHandler {
  async handle(env: Envelope): Promise<Reply[]> {
    const text = (env.payload as { text?: { body?: string } }).text?.body;
    return typeof text === 'string' ? [{ type: 'text', text: { body: `echo: ${text}` } }] : [];
  }
}

const handlerAnswer = z.object({ replies: z.array(outboundContent).max(20) });

/**
 * The request body: the inbound message as Meta sent it (`message`), with the sender's profile
 * (`contact`) and the receiving number (`metadata`) that the ingress took from the webhook beside it.
 */
export function handlerRequest(env: Envelope): Record<string, unknown> {
  const { contact, metadata, ...message } = env.payload as Record<string, unknown>;
  return {
    id: env.id,
    user: env.user,
    wamid: typeof message.id === 'string' ? message.id : undefined,
    receivedAt: env.createdAt,
    attempt: env.attempt,
    ...(contact !== undefined ? { contact } : {}),
    ...(metadata !== undefined ? { metadata } : {}),
    message,
  };
}

/** Calls the bot's endpoint; its failures follow the failure classes like the provider's. */
export class HttpBotHandler implements BotHandler {
  constructor(
    private readonly url: string,
    private readonly timeoutMs: number,
    private readonly metrics: Metrics,
    private readonly token = '',
  ) {}

  async handle(env: Envelope, ctx: StageContext): Promise<Reply[]> {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    try {
      const res = await request(this.url, {
        method: 'POST',
        headers: {
          'content-type': 'application/json',
          'x-postmaster-message-id': env.id,
          'x-correlation-id': env.correlationId ?? env.id,
          ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
        },
        body: JSON.stringify(handlerRequest(env)),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      }).catch((err) => {
        throw classifyNetworkError(err);
      });
      const text = await res.body.text();
      outcome = String(res.statusCode);
      if (res.statusCode >= 500 || res.statusCode === 429 || res.statusCode === 408) {
        const retryAfterMs = parseRetryAfter(res.headers['retry-after']);
        throw new TransientError(`bot handler answered ${res.statusCode}`, { code: `handler-${res.statusCode}`, retryAfterMs });
      }
      if (res.statusCode >= 400) throw new PermanentError(`bot handler answered ${res.statusCode}: ${text.slice(0, 200)}`, { code: `handler-${res.statusCode}` });
      if (res.statusCode === 204 || text.trim() === '') return [];
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new PoisonMessageError('bot handler answered with a body that is not JSON', { code: 'handler-invalid-answer' });
      }
      const parsed = handlerAnswer.safeParse(body);
      if (!parsed.success) {
        throw new PoisonMessageError(`bot handler answer invalid: ${describeIssue(parsed.error).message}`, { code: 'handler-invalid-answer' });
      }
      ctx.log.debug({ replies: parsed.data.replies.length }, 'bot handler answered');
      return parsed.data.replies as Reply[];
    } finally {
      this.metrics.handlerLatency.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }
}
