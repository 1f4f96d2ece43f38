/**
 * The request contract of `POST /{version}/{phone-number-id}/messages`, checked the way the Cloud API
 * checks it. The outline (messaging_product, to, type, the type's object) is a code-100 "Invalid
 * parameter" error whose message names the field, in Meta's wording ("(#100) The parameter to is
 * required."); the rules inside a type's object (type-rules.ts) answer 131008 (a required parameter
 * is missing) or 131009 (a value is not valid) with the field in `error_data.details`, as Meta does.
 * A body with `status` and no `type` is a read receipt (mark an inbound message as read).
 */
import { isObject, isText, MISSING, typeObjectProblem } from './type-rules.js';

export const MESSAGE_TYPES = ['text', 'template', 'image', 'audio', 'document', 'video', 'sticker', 'interactive', 'location', 'contacts', 'reaction'] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

const CALLBACK_DATA_MAX = 512;
/** The keys of a read receipt (Meta's typing-indicator guide): nothing else goes with them. */
const READ_KEYS: ReadonlySet<string> = new Set(['messaging_product', 'status', 'message_id', 'typing_indicator']);

export interface ValidMessage {
  ok: true;
  to: string;
  /** `read` for a read receipt. */
  type: MessageType | 'read';
  /** `biz_opaque_callback_data`: the envelope id in Postmaster, echoed back in status webhooks. */
  id: string | null;
}
export interface InvalidMessage {
  ok: false;
  /** 100 for the outline, 131008/131009 for the rules of a type's object. */
  code: number;
  /** Meta's message text without the `(#code)` prefix (100), or the details naming the field. */
  message: string;
  /** What the request carried, for the ledger, even when it is invalid. */
  to: string;
  type: string;
}
export type ContractResult = ValidMessage | InvalidMessage;

type Json = Record<string, unknown>;

/** Checks a parsed request body; never throws. */
export function validateMessage(body: unknown): ContractResult {
  if (!isObject(body)) return invalid('Invalid parameter', '', '');
  if (body.type === undefined && body.status !== undefined) return validateRead(body);
  const to = typeof body.to === 'string' ? body.to : '';
  const type = body.type === undefined ? 'text' : String(body.type);
  const fail = (message: string): InvalidMessage => invalid(message, to, type);

  const product = checkProduct(body);
  if (product) return fail(product);
  if (body.recipient_type !== undefined && body.recipient_type !== 'individual' && body.recipient_type !== 'group') {
    return fail('Param recipient_type must be one of {INDIVIDUAL, GROUP}.');
  }
  if (!isText(body.to)) return fail('The parameter to is required.');
  if (!(MESSAGE_TYPES as readonly string[]).includes(type)) {
    return fail(`Param type must be one of {${MESSAGE_TYPES.map((t) => t.toUpperCase()).join(', ')}}.`);
  }
  const callback = body.biz_opaque_callback_data;
  if (callback !== undefined && (typeof callback !== 'string' || callback.length > CALLBACK_DATA_MAX)) {
    return fail(`Param biz_opaque_callback_data must be a string of at most ${CALLBACK_DATA_MAX} characters.`);
  }
  if (body.context !== undefined && !(isObject(body.context) && isText(body.context.message_id))) {
    return fail("The parameter context['message_id'] is required.");
  }
  const problem = typeObjectProblem(type as MessageType, body[type]);
  if (problem) return { ...fail(problem.text), code: problem.code };
  return { ok: true, to: body.to, type: type as MessageType, id: typeof callback === 'string' ? callback : null };
}

function checkProduct(body: Json): string | null {
  if (body.messaging_product === undefined) return 'The parameter messaging_product is required.';
  if (body.messaging_product !== 'whatsapp') return 'Param messaging_product must be one of {WHATSAPP}.';
  return null;
}

/** `{"messaging_product": "whatsapp", "status": "read", "message_id": "wamid…"}`, nothing more. */
function validateRead(body: Json): ContractResult {
  const fail = (message: string, code = 100): InvalidMessage => invalid(message, '', 'read', code);
  const product = checkProduct(body);
  if (product) return fail(product);
  if (body.status !== 'read') return fail('Param status must be one of {READ}.');
  const extra = Object.keys(body).find((k) => !READ_KEYS.has(k));
  if (extra !== undefined) return fail(`Unexpected key "${extra}" on a read receipt.`);
  if (!isText(body.message_id)) return fail('The parameter message_id is required.', MISSING);
  const typing = body.typing_indicator;
  if (typing !== undefined && !(isObject(typing) && typing.type === 'text')) {
    return fail("Param typing_indicator['type'] must be one of {TEXT}.");
  }
  return { ok: true, to: '', type: 'read', id: null };
}

function invalid(message: string, to: string, type: string, code = 100): InvalidMessage {
  return { ok: false, code, message, to, type };
}
