/**
 * The request contract of `POST /{version}/{phone-number-id}/messages`, checked the way the Cloud API
 * checks it: every violation is a code-100 "Invalid parameter" error whose message names the field,
 * in Meta's wording ("(#100) The parameter to is required.").
 */
export const MESSAGE_TYPES = [
  'text',
  'template',
  'image',
  'audio',
  'document',
  'video',
  'sticker',
  'interactive',
  'location',
  'contacts',
  'reaction',
] as const;
export type MessageType = (typeof MESSAGE_TYPES)[number];

const MEDIA_TYPES: ReadonlySet<string> = new Set(['image', 'audio', 'document', 'video', 'sticker']);
const TEXT_BODY_MAX = 4096;
const CALLBACK_DATA_MAX = 512;

export interface ValidMessage {
  ok: true;
  to: string;
  type: MessageType;
  /** `biz_opaque_callback_data`: the envelope id in Postmaster, echoed back in status webhooks. */
  id: string | null;
}
export interface InvalidMessage {
  ok: false;
  /** Meta's message text without the `(#100)` prefix. */
  message: string;
  /** What the request carried, for the ledger, even when it is invalid. */
  to: string;
  type: string;
}
export type ContractResult = ValidMessage | InvalidMessage;

type Json = Record<string, unknown>;

const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
// Meta's own examples send coordinates as numbers or as numeric strings.
const isCoordinate = (v: unknown): boolean =>
  typeof v === 'number' ? Number.isFinite(v) : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v));

/** Checks a parsed request body; never throws. */
export function validateMessage(body: unknown): ContractResult {
  if (!isObject(body)) return invalid('Invalid parameter', '', '');
  const to = typeof body.to === 'string' ? body.to : '';
  const type = body.type === undefined ? 'text' : String(body.type);
  const fail = (message: string): InvalidMessage => invalid(message, to, type);

  if (body.messaging_product === undefined) return fail('The parameter messaging_product is required.');
  if (body.messaging_product !== 'whatsapp') return fail('Param messaging_product must be one of {WHATSAPP}.');
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
  const problem = checkTypeObject(type as MessageType, body[type]);
  if (problem) return fail(problem);
  return { ok: true, to: body.to, type: type as MessageType, id: typeof callback === 'string' ? callback : null };
}

/** The object named by `type` must be present and carry what that type needs. */
function checkTypeObject(type: MessageType, value: unknown): string | null {
  if (value === undefined) return `The parameter ${type} is required.`;
  if (type === 'contacts') {
    return Array.isArray(value) && value.length > 0 ? null : 'Param contacts must be a non-empty array.';
  }
  if (!isObject(value)) return `Param ${type} must be a JSON object.`;
  if (MEDIA_TYPES.has(type)) {
    return isText(value.link) || isText(value.id) ? null : `Param ${type} must contain either 'link' or 'id'.`;
  }
  switch (type) {
    case 'text':
      if (!isText(value.body)) return "The parameter text['body'] is required.";
      return value.body.length > TEXT_BODY_MAX ? `Param text['body'] must be at most ${TEXT_BODY_MAX} characters long.` : null;
    case 'template':
      if (!isText(value.name)) return "The parameter template['name'] is required.";
      return isObject(value.language) && isText(value.language.code) ? null : "The parameter template['language']['code'] is required.";
    case 'interactive':
      if (!isText(value.type)) return "The parameter interactive['type'] is required.";
      return isObject(value.action) ? null : "The parameter interactive['action'] is required.";
    case 'location':
      return isCoordinate(value.latitude) && isCoordinate(value.longitude)
        ? null
        : "The parameters location['latitude'] and location['longitude'] are required.";
    case 'reaction':
      return isText(value.message_id) ? null : "The parameter reaction['message_id'] is required.";
    default:
      return null;
  }
}

function invalid(message: string, to: string, type: string): InvalidMessage {
  return { ok: false, message, to, type };
}
