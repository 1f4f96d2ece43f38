/**
 * Splits one Meta webhook body into the events the fleet carries: each `entry[].changes[].value`
 * holds `messages[]` (a user wrote to us: an `inbound` event keyed by the sender's wa_id) and
 * `statuses[]` (news about a message we sent: a `status` event keyed by the recipient). Meta adds
 * fields over time, so only what is used is checked; an event that cannot be carried (no wa_id, an
 * id that does not fit an AMQP short string, a payload nested too deep to serialize) is skipped
 * with a reason rather than failing the whole delivery: Meta retries a non-2xx for up to 7 days and
 * the same event would fail every time, holding up the good events beside it. Skipped parts are
 * logged, counted in the answer's `skipped`, and never reach the publisher. A
 * `phone_number_quality_update` change carries a new messaging limit (`limits`), not an event.
 */
import { parseMessagingLimit, type MessagingLimit } from '../../shared/platform/numbers.js';
import { envelopeSchema, MAX_CONTENT_DEPTH, newEnvelope, tooDeep, type Envelope } from '../../shared/domain/envelope.js';

export interface WebhookEvent {
  env: Envelope;
  /** What makes a retry of the same event recognisable: the wamid, plus the status for statuses. */
  dedupKey: string;
}

/** Meta's phone_number_quality_update: the messaging limit of a number's portfolio changed. */
export interface LimitUpdate {
  /** The display phone number Meta names (the webhook carries no phone number id). */
  display: string;
  limit: MessagingLimit;
}

export interface SplitResult {
  events: WebhookEvent[];
  limits: LimitUpdate[];
  skipped: Array<{ at: string; reason: string }>;
}

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => v !== null && typeof v === 'object' && !Array.isArray(v);
const arr = (v: unknown): unknown[] => (Array.isArray(v) ? v : []);
/** ASCII digits (no u flag), so a user, and routing key, is at most 20 bytes. */
const WA_ID = /^\d{6,20}$/;
/**
 * A wamid becomes the AMQP correlation-id (255 bytes at most) and, for inbound messages, the
 * X-Correlation-Id header of the bot handler call: Meta's are ASCII and well under 200 bytes.
 */
const WAMID = /^[\x21-\x7e]{1,200}$/;
const BAD_WAMID = 'must be 1 to 200 printable ASCII characters (it becomes the AMQP correlation-id)';

/** The contact (profile name) of each wa_id in a change. */
function contactsOf(value: Obj): Map<string, Obj> {
  const out = new Map<string, Obj>();
  for (const c of arr(value.contacts)) {
    if (isObj(c) && typeof c.wa_id === 'string') {
      const name = isObj(c.profile) && typeof c.profile.name === 'string' ? c.profile.name : undefined;
      out.set(c.wa_id, { wa_id: c.wa_id, ...(name !== undefined ? { name } : {}) });
    }
  }
  return out;
}

function event(kind: 'inbound' | 'status', user: string, payload: Obj, dedupKey: string, correlationId: string): WebhookEvent | string {
  const deep = tooDeep(payload, MAX_CONTENT_DEPTH);
  if (deep) return `${deep.join('.')}: nested deeper than ${MAX_CONTENT_DEPTH} levels`;
  const env = newEnvelope({ kind, user, priority: 'normal', payload, correlationId });
  const r = envelopeSchema.safeParse(env);
  return r.success ? { env: r.data, dedupKey } : `not a valid envelope: ${r.error.issues[0].message}`;
}

function inbound(m: unknown, value: Obj, contacts: Map<string, Obj>): WebhookEvent | string {
  if (!isObj(m)) return 'message is not an object';
  if (typeof m.id !== 'string' || m.id === '') return 'message has no id (wamid)';
  if (!WAMID.test(m.id)) return `id: ${BAD_WAMID}`;
  if (typeof m.from !== 'string' || !WA_ID.test(m.from)) return 'message has no wa_id in from';
  const contact = contacts.get(m.from);
  const payload: Obj = { ...m, ...(contact ? { contact } : {}), ...(isObj(value.metadata) ? { metadata: value.metadata } : {}) };
  return event('inbound', m.from, payload, `msg:${m.id}`, m.id);
}

function status(s: unknown): WebhookEvent | string {
  if (!isObj(s)) return 'status is not an object';
  if (typeof s.id !== 'string' || s.id === '' || typeof s.status !== 'string') return 'status has no id or status';
  if (!WAMID.test(s.id)) return `id: ${BAD_WAMID}`;
  if (typeof s.recipient_id !== 'string' || !WA_ID.test(s.recipient_id)) return 'status has no wa_id in recipient_id';
  return event('status', s.recipient_id, s, `status:${s.id}:${s.status}`, s.id);
}

/**
 * A value from a webhook, for a skip reason: a string cut to 40 characters, anything else by its
 * type. Never walked: a value nested 50,000 levels deep would overflow the stack of String() and
 * JSON.stringify, and fail the whole delivery.
 */
function shown(v: unknown): string {
  if (typeof v === 'string') return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  if (Array.isArray(v)) return 'an array';
  return v !== null && typeof v === 'object' ? 'an object' : String(v);
}

/** A quality update's new limit: max_daily_conversations_per_business, else the older current_limit. */
function limitUpdate(value: Obj): LimitUpdate | string {
  const display = value.display_phone_number;
  if (typeof display !== 'string' || !/^\d{6,20}$/.test(display)) return 'quality update has no display_phone_number';
  const raw = value.max_daily_conversations_per_business ?? value.current_limit;
  const limit = parseMessagingLimit(raw);
  return limit === undefined ? `quality update: limit ${shown(raw)} is not one Postmaster knows` : { display, limit };
}

export function splitWebhook(body: unknown): SplitResult {
  const out: SplitResult = { events: [], limits: [], skipped: [] };
  if (!isObj(body) || body.object !== 'whatsapp_business_account') {
    out.skipped.push({ at: 'object', reason: 'not a whatsapp_business_account notification' });
    return out;
  }
  arr(body.entry).forEach((entry, e) => {
    arr(isObj(entry) ? entry.changes : undefined).forEach((change, c) => {
      const at = `entry.${e}.changes.${c}`;
      if (isObj(change) && change.field === 'phone_number_quality_update' && isObj(change.value)) {
        const u = limitUpdate(change.value);
        if (typeof u === 'string') out.skipped.push({ at, reason: u });
        else out.limits.push(u);
        return;
      }
      if (!isObj(change) || change.field !== 'messages' || !isObj(change.value)) {
        out.skipped.push({ at, reason: `field ${isObj(change) ? shown(change.field) : '?'} is not carried` });
        return;
      }
      const value = change.value;
      const contacts = contactsOf(value);
      const add = (r: WebhookEvent | string, where: string) => (typeof r === 'string' ? out.skipped.push({ at: where, reason: r }) : out.events.push(r));
      arr(value.messages).forEach((m, i) => add(inbound(m, value, contacts), `${at}.value.messages.${i}`));
      arr(value.statuses).forEach((s, i) => add(status(s), `${at}.value.statuses.${i}`));
    });
  });
  return out;
}
