/**
 * `POST /{version}/{phone-number-id}/messages`: the one provider endpoint Postmaster calls. Checks run
 * in the order the Cloud API applies them (token, phone number id, body), then the fault engine picks
 * the answer; every request that got an answer is written to the ledger in arrival order.
 */
import type { IncomingMessage, ServerResponse } from 'node:http';
import { validateMessage, type InvalidMessage } from './contract.js';
import type { SimulatorCore } from './core.js';
import { ACCESS_TOKEN_INVALID, INVALID_PARAMETER, metaError, statusForCode, type MetaErrorOptions } from './errors.js';
import type { Decision } from './faults.js';
import { BodyTooLargeError, parseJson, readBody, sendJson } from './http-io.js';

/** Meta refuses request bodies above a few MB; 1 MB is far above any real message. */
const MAX_BODY_BYTES = 1024 * 1024;

/** What the ledger keeps of a request, whatever its answer. */
interface Seen {
  /** The business number the send came from (the path's phone number id). */
  phoneNumberId: string;
  to: string;
  type: string;
  id: string | null;
  body: unknown;
  receivedAt: number;
}

interface Rejection {
  status: number;
  code: number;
  error?: MetaErrorOptions;
  retryAfterS?: number;
}

export async function handleSend(core: SimulatorCore, req: IncomingMessage, res: ServerResponse, phoneNumberId: string): Promise<void> {
  let raw: Buffer;
  try {
    raw = await readBody(req, MAX_BODY_BYTES);
  } catch (err) {
    if (!(err instanceof BodyTooLargeError)) return; // the client went away mid-body: nothing to answer
    const rejection = { status: 413, code: INVALID_PARAMETER, error: { message: 'Request body is too large.' } };
    return reject(core, res, { phoneNumberId, to: '', type: '', id: null, body: null, receivedAt: core.now() }, rejection);
  }
  const receivedAt = core.now();
  const body = parseJson(raw);
  const checked = validateMessage(body);
  const seen: Seen = { phoneNumberId, to: checked.to, type: checked.type, id: checked.ok ? checked.id : callbackData(body), body: body ?? null, receivedAt };

  const denied = checkAccess(core, req, phoneNumberId);
  if (denied) return reject(core, res, seen, denied);
  if (!checked.ok) return reject(core, res, seen, invalidBody(body, checked));
  const closed = core.windowRefusal(phoneNumberId, checked.to, checked.type);
  if (closed) return reject(core, res, seen, closed);
  const limited = numberLimits(core, phoneNumberId, checked.to, checked.type, receivedAt);
  if (limited) return reject(core, res, seen, limited);
  const decision: Decision = core.faults.decide(checked.to, checked.id, receivedAt);
  if (decision.kind === 'error') {
    const { status, code, message, retryAfterS, latencyMs } = decision;
    return reject(core, res, seen, { status, code, error: { message }, retryAfterS }, latencyMs);
  }
  accept(core, res, seen, { to: checked.to, type: checked.type, id: checked.id, phoneNumberId }, decision);
}

/** Records the send as accepted and answers with its wamid; status webhooks follow the answer. */
function accept(
  core: SimulatorCore,
  res: ServerResponse,
  seen: Seen,
  message: { to: string; type: string; id: string | null; phoneNumberId: string },
  decision: Exclude<Decision, { kind: 'error' }>,
): void {
  const failure = decision.kind === 'accept-then-fail' && message.type !== 'read' ? { code: decision.code, message: decision.message } : undefined;
  const seq = core.ledger.append({ ...seen, status: 200, code: failure?.code ?? null });
  const wamid = core.ledger.wamid(seq);
  // A read receipt is answered `{"success": true}` and has no status webhooks of its own.
  if (message.type === 'read') return core.later(() => sendJson(res, 200, { success: true }), decision.latencyMs);
  const answer = {
    messaging_product: 'whatsapp',
    contacts: [{ input: message.to, wa_id: message.to }],
    // Meta adds message_status to template sends (template pacing); "accepted" is the normal value.
    messages: [message.type === 'template' ? { id: wamid, message_status: 'accepted' } : { id: wamid }],
  };
  core.later(() => {
    sendJson(res, 200, answer);
    core.webhooks?.enqueue({ wamid, to: message.to, id: message.id, phoneNumberId: message.phoneNumberId, failure });
  }, decision.latencyMs);
}

/**
 * The answer to a body the contract refused: code 100 carries its own message; 131008/131009 keep
 * Meta's title and name the field in the details.
 */
function invalidBody(body: unknown, checked: InvalidMessage): Rejection {
  if (body === undefined) {
    return { status: 400, code: INVALID_PARAMETER, error: { message: 'Invalid parameter', details: 'The request body is not valid JSON.' } };
  }
  if (checked.code === INVALID_PARAMETER) return { status: 400, code: INVALID_PARAMETER, error: { message: checked.message, details: checked.message } };
  return { status: statusForCode(checked.code), code: checked.code, error: { details: checked.message } };
}

/** A number's own throughput (130429), then its portfolio's messaging limit for a business-initiated template (131048). */
function numberLimits(core: SimulatorCore, phoneNumberId: string, to: string, type: string, now: number): Rejection | null {
  const code =
    core.numbers.throttled(phoneNumberId, now) ??
    (type === 'template' && !core.windows.isOpen(phoneNumberId, to, now) ? core.numbers.businessInitiated(phoneNumberId, to, now) : null);
  return code === null ? null : { status: statusForCode(code), code, error: {} };
}

/** Bearer token, then phone number id: a wrong token is 401/190, an unknown number 400/100 (subcode 33). */
function checkAccess(core: SimulatorCore, req: IncomingMessage, phoneNumberId: string): Rejection | null {
  const own = core.numbers.get(phoneNumberId);
  const accessToken = own?.accessToken ?? core.options.accessToken;
  const expectedId = core.numbers.configured ? (own ? phoneNumberId : '') : core.options.phoneNumberId;
  if (accessToken !== undefined) {
    const header = req.headers.authorization ?? '';
    const token = /^Bearer\s+(.+)$/i.exec(header)?.[1]?.trim();
    if (token !== accessToken) {
      const message = token === undefined ? 'An active access token must be used.' : 'Invalid OAuth access token - Cannot parse access token';
      return { status: 401, code: ACCESS_TOKEN_INVALID, error: { message } };
    }
  }
  if (expectedId !== undefined && phoneNumberId !== expectedId) {
    const message =
      `Unsupported post request. Object with ID '${phoneNumberId}' does not exist, cannot be loaded due to ` +
      'missing permissions, or does not support this operation.';
    return { status: 400, code: INVALID_PARAMETER, error: { message, type: 'GraphMethodException', subcode: 33 } };
  }
  return null;
}

function reject(core: SimulatorCore, res: ServerResponse, seen: Seen, rejection: Rejection, latencyMs?: number): void {
  core.ledger.append({ ...seen, status: rejection.status, code: rejection.code });
  const headers: Record<string, string> = rejection.retryAfterS === undefined ? {} : { 'retry-after': String(Math.ceil(rejection.retryAfterS)) };
  const body = metaError(rejection.code, rejection.error);
  core.later(() => sendJson(res, rejection.status, body, headers), latencyMs);
}

function callbackData(body: unknown): string | null {
  const value = (body as { biz_opaque_callback_data?: unknown } | null)?.biz_opaque_callback_data;
  return typeof value === 'string' ? value : null;
}
