/**
 * The bot handler contract (docs/BOT_HANDLER.md): an inbound event in,
 * `{"replies": [<Cloud API message object>...]}` out. Either the bot's own HTTP endpoint
 * (BOT_HANDLER_URL) or the built-in echo handler.
 */
import { getGlobalDispatcher } from 'undici';
import { z } from 'zod';
import { parseContent } from '../../shared/domain/content/content.js';
import { RequestError } from '../../shared/domain/content/request-error.js';
import { describeIssue, type Envelope } from '../../shared/domain/envelope.js';
import { classifyNetworkError, parseRetryAfter } from '../../shared/failures/classify.js';
import { PermanentError, PoisonMessageError, TransientError, type ClassifiedError } from '../../shared/failures/errors.js';
import { CallDeadlineError, postCapped } from '../../shared/platform/http-body.js';
import type { DispatcherMetrics } from './metrics.js';
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

const MAX_REPLIES = 20;
const handlerAnswer = z.object({ replies: z.array(z.record(z.string(), z.unknown())).max(MAX_REPLIES) });

/**
 * The replies of an answer, each checked like a send request's content (shared/domain/content): any message
 * type the Cloud API takes, `context` to quote the inbound message, or a read receipt for it. The
 * first bad one makes the answer poison, naming its field (`replies.1.text.body: …`).
 */
export function parseReplies(body: unknown): Reply[] {
  const parsed = handlerAnswer.safeParse(body);
  if (!parsed.success) {
    throw new PoisonMessageError(`bot handler answer invalid: ${describeIssue(parsed.error).message}`, { code: 'handler-invalid-answer' });
  }
  return parsed.data.replies.map((reply, i) => {
    try {
      return parseContent(reply, `replies.${i}`);
    } catch (err) {
      if (!(err instanceof RequestError)) throw err;
      throw new PoisonMessageError(`bot handler answer invalid: ${err.message}`, { code: 'handler-invalid-answer' });
    }
  });
}

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

const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;

/**
 * Calls the bot's endpoint; its failures follow the failure classes like the provider's. One
 * deadline covers the whole call (BOT_HANDLER_TIMEOUT_MS: connect, headers and body together), and
 * an answer over `maxResponseBytes` (0: no cap) is not read.
 */
export class HttpBotHandler implements BotHandler {
  /** BOT_HANDLER_URL as the dispatcher takes it: the origin, and the path with its query. */
  private readonly target: { origin: string; path: string };

  constructor(
    url: string,
    private readonly timeoutMs: number,
    private readonly metrics: DispatcherMetrics,
    private readonly token = '',
    private readonly maxResponseBytes = DEFAULT_MAX_RESPONSE_BYTES,
  ) {
    const u = new URL(url);
    this.target = { origin: u.origin, path: `${u.pathname}${u.search}` };
  }

  async handle(env: Envelope, ctx: StageContext): Promise<Reply[]> {
    const started = process.hrtime.bigint();
    let outcome = 'error';
    try {
      const { status, headers, text } = await this.call(env);
      outcome = String(status);
      if (status >= 500 || status === 429 || status === 408) {
        const retryAfterMs = parseRetryAfter(headers['retry-after']);
        throw new TransientError(`bot handler answered ${status}`, { code: `handler-${status}`, retryAfterMs });
      }
      if (status >= 400) {
        // The body can carry the user's own text: it stays out of the error (failure headers, status
        // records, logs at warn); at debug, through the logger's redaction, for whoever debugs the bot.
        ctx.log.debug({ status, answer: (text ?? '(answer too large)').slice(0, 200) }, 'bot handler refused the message');
        throw new PermanentError(`bot handler answered ${status}`, { code: `handler-${status}` });
      }
      if (text === null) {
        // A deterministic handler answers the same again: retrying would not help.
        throw new PoisonMessageError(`bot handler answer larger than BOT_HANDLER_MAX_RESPONSE_BYTES (${this.maxResponseBytes} bytes)`, {
          code: 'handler-answer-too-large',
        });
      }
      if (status === 204 || text.trim() === '') return [];
      let body: unknown;
      try {
        body = JSON.parse(text);
      } catch {
        throw new PoisonMessageError('bot handler answered with a body that is not JSON', { code: 'handler-invalid-answer' });
      }
      const replies = parseReplies(body);
      ctx.log.debug({ replies: replies.length }, 'bot handler answered');
      return replies;
    } finally {
      this.metrics.handlerLatency.observe({ outcome }, Number(process.hrtime.bigint() - started) / 1e9);
    }
  }

  /** The call and its whole body; `text` null: the body was over the cap (what the status means decides). */
  private async call(env: Envelope): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; text: string | null }> {
    try {
      const { statusCode, headers, text } = await postCapped(
        getGlobalDispatcher(),
        {
          origin: this.target.origin,
          path: this.target.path,
          headers: {
            'content-type': 'application/json',
            'x-postmaster-message-id': env.id,
            'x-correlation-id': env.correlationId ?? env.id,
            ...(this.token ? { authorization: `Bearer ${this.token}` } : {}),
          },
          body: JSON.stringify(handlerRequest(env)),
        },
        { timeoutMs: this.timeoutMs, maxBytes: this.maxResponseBytes },
      );
      return { status: statusCode, headers, text };
    } catch (err) {
      throw this.failed(err);
    }
  }

  private failed(err: unknown): ClassifiedError {
    if (err instanceof CallDeadlineError)
      return new TransientError(`bot handler call not finished within BOT_HANDLER_TIMEOUT_MS (${this.timeoutMs} ms)`, { code: 'timeout', cause: err });
    return classifyNetworkError(err);
  }
}
