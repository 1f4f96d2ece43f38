/**
 * Meta's webhook for WhatsApp: `GET /webhooks/whatsapp` answers the verification challenge,
 * `POST /webhooks/whatsapp` takes signed notifications (inbound messages and statuses) and answers
 * 200 only once every event in them is confirmed by the broker. A phone_number_quality_update sets
 * the messaging limit of the number's portfolio (shared/domain/messaging-limit.ts).
 */
import { Router, type Request, type Response } from 'express';
import { MessagingLimits } from '../../shared/domain/messaging-limit.js';
import { businessNumbers } from '../../shared/platform/numbers.js';
import type { Runtime } from '../../shared/amqp/runtime.js';
import type { IngressMetrics } from './metrics.js';
import { UnavailableError } from './admission.js';
import { problem, rawBody, reject, secretEquals } from './http.js';
import { RequestError } from '../../shared/domain/content/request-error.js';
import { checkSignature } from './signature.js';
import { splitWebhook } from './webhook-events.js';
import type { WebhookIntake } from './webhook-intake.js';

export const WEBHOOK_PATH = '/webhooks/whatsapp';
const MAX_CHALLENGE = 256;

function verify(rt: Runtime<IngressMetrics>) {
  return (req: Request, res: Response) => {
    const q = req.query;
    const mode = q['hub.mode'];
    const token = q['hub.verify_token'];
    const challenge = q['hub.challenge'];
    if (mode !== 'subscribe' || typeof token !== 'string' || !secretEquals(token, rt.cfg.whatsappVerifyToken)) {
      reject(rt, req, 403);
      return problem(res, 403, 'forbidden', 'hub.mode must be subscribe and hub.verify_token must match WHATSAPP_VERIFY_TOKEN');
    }
    if (typeof challenge !== 'string' || challenge === '' || challenge.length > MAX_CHALLENGE) {
      reject(rt, req, 400);
      return problem(res, 400, 'invalid_request', `hub.challenge: must be 1 to ${MAX_CHALLENGE} characters`, 'hub.challenge');
    }
    res.status(200).type('text/plain').set('X-Content-Type-Options', 'nosniff').send(challenge);
  };
}

function receive(rt: Runtime<IngressMetrics>, intake: WebhookIntake) {
  const log = rt.log.child({ component: 'webhook' });
  const numbers = businessNumbers(rt.cfg);
  const messagingLimits = new MessagingLimits(rt.redis, rt.keys);
  return async (req: Request, res: Response) => {
    const raw = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
    const sig = checkSignature(raw, req.get('x-hub-signature-256'), rt.cfg.whatsappAppSecret);
    if (sig === 'missing') {
      reject(rt, req, 401);
      return problem(res, 401, 'unauthorized', 'X-Hub-Signature-256 is missing');
    }
    if (sig === 'invalid') {
      reject(rt, req, 403);
      return problem(res, 403, 'forbidden', 'X-Hub-Signature-256 does not match the body');
    }
    let body: unknown;
    try {
      body = JSON.parse(raw.toString('utf8'));
    } catch (err) {
      throw new RequestError('(body)', `(body): not valid JSON: ${(err as Error).message}`);
    }
    const { events, limits, skipped } = splitWebhook(body);
    for (const u of limits) {
      const n = numbers.byDisplay(u.display);
      if (!n) {
        skipped.push({ at: 'phone_number_quality_update', reason: `display phone number ${u.display} is no configured number's "display"` });
        continue;
      }
      await messagingLimits.setLimit(n.portfolio, u.limit).catch((err: Error) => {
        throw new UnavailableError(`could not record the new messaging limit: ${err.message}`, 'redis', { cause: err });
      });
      log.info({ portfolio: n.portfolio, number: n.id, limit: u.limit ?? 'unlimited' }, 'messaging limit changed (phone_number_quality_update)');
    }
    if (skipped.length > 0) log.warn({ skipped }, 'webhook parts skipped');
    const r = await intake.take(events);
    res.status(200).json({ received: events.length, published: r.published, duplicates: r.duplicates, skipped: skipped.length });
  };
}

export function webhookRouter(rt: Runtime<IngressMetrics>, intake: WebhookIntake): Router {
  const router = Router();
  router.get(WEBHOOK_PATH, verify(rt));
  router.post(WEBHOOK_PATH, rawBody, receive(rt, intake));
  return router;
}
