/**
 * Personal data out of what the fleet keeps about a message beyond the message itself:
 * log lines, the failure headers of retried and dead-lettered messages, status records' `error`.
 * Phone numbers and message text are what an operator never needs there; ids, codes, classes and
 * the provider's reason are what they do need, so those stay.
 *
 * Two tools: `redactValue` walks a log line's object at any depth (bounded in depth and nodes, so a
 * huge or cyclic object costs a fixed amount), `failureReason` turns an error's message into a short
 * reason with bodies, quoted text and the message's own content taken out.
 */

export const REDACTED = '[redacted]';
/** What replaces a subtree past MAX_DEPTH or past the node budget: dropped, never copied unredacted. */
export const TRUNCATED = '[truncated]';

/** Objects nest at most this deep in a log line (the line's own keys are depth 1). */
export const MAX_DEPTH = 8;
/** Objects, arrays and strings visited per log line; the rest is TRUNCATED. */
export const MAX_NODES = 500;
/** Longest failure reason kept in a header or a status record. */
export const MAX_REASON = 200;

/**
 * Keys whose value is personal data or a credential, whatever it holds (compared lower-cased): the
 * envelope's `user`, the Cloud API's `to`/`from`/`wa_id`/`recipient_id`, message text (`body`,
 * `text`, `caption`, the whole `payload`), a contact's or a location's details.
 */
const SENSITIVE_KEYS: ReadonlySet<string> = new Set([
  'to',
  'from',
  'user',
  'wa_id',
  'recipient_id',
  'phone',
  'phone_number',
  'phones',
  'input',
  'body',
  'text',
  'caption',
  'payload',
  'profile',
  'emails',
  'email',
  'addresses',
  'address',
  'latitude',
  'longitude',
  'authorization',
  'cookie',
  'password',
  'accesstoken',
  'access_token',
]);

/** Keys whose string is an id, a code or a time: kept as it is, digits and all. */
const KEEP_KEY = /(?:^id$|Id$|_id$|Ids$|^wamid$|^code$|^class$|^replica$|^at$|At$|^timestamp$)/;

/**
 * A phone number in free text: 8–15 digits in a row (a wa_id, E.164 without the plus), or a `+`
 * and a country code followed by groups separated by spaces or dashes. Dates and times never start
 * with `+` and break their digits into groups shorter than 8, so they stay.
 */
const PHONE = /(?<![\w.])(?:\+\d{1,3}(?:[ -]?\(?\d{1,4}\)?){2,5}|\+?\d{8,15})(?![\w])/g;

/** Phone-number-like digit runs in `s`, replaced. */
export function redactText(s: string): string {
  // The common case (no long digit run) returns the same string without allocating.
  return /\d{4}/.test(s) || s.includes('+') ? s.replace(PHONE, REDACTED) : s;
}

export function isSensitiveKey(key: string): boolean {
  return SENSITIVE_KEYS.has(key.toLowerCase());
}

interface Budget {
  nodes: number;
}

/** An Error as pino's err serializer would write it (type, message, stack, own fields), redacted. */
function redactError(err: Error, depth: number, budget: Budget): Record<string, unknown> {
  const out: Record<string, unknown> = { type: err.name || err.constructor?.name || 'Error', message: redactText(String(err.message ?? '')) };
  if (typeof err.stack === 'string') out.stack = redactText(err.stack);
  for (const key of Object.keys(err)) out[key] = redactEntry(key, (err as unknown as Record<string, unknown>)[key], depth + 1, budget);
  if (err.cause !== undefined) out.cause = redactNode(err.cause, depth + 1, budget);
  return out;
}

function redactEntry(key: string, value: unknown, depth: number, budget: Budget): unknown {
  if (value === null || value === undefined) return value;
  if (isSensitiveKey(key)) return REDACTED;
  if (typeof value === 'string' && KEEP_KEY.test(key)) return value;
  return redactNode(value, depth, budget);
}

function redactNode(value: unknown, depth: number, budget: Budget): unknown {
  if (typeof value === 'string') return budget.nodes-- > 0 ? redactText(value) : TRUNCATED;
  if (value === null || typeof value !== 'object') return value;
  if (depth > MAX_DEPTH || budget.nodes-- <= 0) return TRUNCATED;
  if (value instanceof Error) return redactError(value, depth, budget);
  if (Array.isArray(value)) return value.map((v) => redactNode(v, depth + 1, budget));
  if (Buffer.isBuffer(value)) return `[${value.length} bytes]`;
  // Dates, URLs and the like serialise through toJSON; their text carries no personal data we log.
  if (typeof (value as { toJSON?: unknown }).toJSON === 'function') return value;
  const out: Record<string, unknown> = {};
  for (const key of Object.keys(value)) out[key] = redactEntry(key, (value as Record<string, unknown>)[key], depth + 1, budget);
  return out;
}

/**
 * A copy of `value` with sensitive keys replaced at every depth, phone-like digit runs taken out of
 * every other string (ids, codes and times excepted), Errors serialised the same way, and anything
 * past MAX_DEPTH or MAX_NODES dropped. Cycles end at the depth bound.
 */
export function redactValue(value: unknown): unknown {
  return redactNode(value, 0, { nodes: MAX_NODES });
}

/** Shorter strings of the content (a type, "ok", "yes") are words an error text may well hold itself. */
const MIN_CONTENT = 6;

/** The strings of a message's content worth looking for in an error text (bounded like a log line). */
function contentStrings(content: unknown): string[] {
  const out: string[] = [];
  const stack: Array<{ v: unknown; depth: number }> = [{ v: content, depth: 0 }];
  while (stack.length > 0 && out.length < MAX_NODES) {
    const { v, depth } = stack.pop()!;
    if (typeof v === 'string') {
      if (v.length >= MIN_CONTENT) out.push(v);
    } else if (v !== null && typeof v === 'object' && depth < MAX_DEPTH) {
      for (const child of Object.values(v)) stack.push({ v: child, depth: depth + 1 });
    }
  }
  return out.sort((a, b) => b.length - a.length);
}

/** Occurrences of the content's strings (as written, and as JSON would escape them) removed. */
function withoutContent(text: string, content: unknown): string {
  let out = text;
  for (const s of contentStrings(content)) {
    for (const form of new Set([s, JSON.stringify(s).slice(1, -1)])) out = out.split(form).join(REDACTED);
  }
  return out;
}

/**
 * `<someone> answered <status>[ code <n>]: <their text>`: what follows the colon is the remote's
 * body. A Cloud API error object's message (a numeric provider code) is the provider's reason and
 * stays; any other body (a bot handler's, a proxy's HTML) may echo what it was sent and goes.
 */
const ANSWERED = /^(.*?\banswered \d{3}(?: code \d+)?): ([\s\S]*)$/;

/** JSON objects or arrays and quoted text inside an error message: where echoed content hides. */
const JSON_LIKE = /[{[][\s\S]*[}\]]/g;
const QUOTED = /"[^"]{4,}"|'[^']{4,}'|“[^”]{4,}”/g;

/**
 * The reason to keep for a failure, from its error: the first line of the message with remote
 * bodies, JSON, quoted text, the message's own content (`content`, e.g. the envelope's payload and
 * user) and phone-like digit runs removed, at most MAX_REASON characters. Codes and classes travel
 * in fields of their own and are not touched here.
 */
export function failureReason(err: { message: string; code?: string }, content?: unknown): string {
  let text = String(err.message ?? '')
    .split('\n', 1)[0]
    .replace(JSON_LIKE, '[json]')
    .replace(QUOTED, '"…"');
  if (content !== undefined) text = withoutContent(text, content);
  const answered = ANSWERED.exec(text);
  if (answered && !/^\d+$/.test(err.code ?? '')) text = `${answered[1]}: [body not kept]`;
  text = redactText(text);
  return text.length > MAX_REASON ? `${text.slice(0, MAX_REASON - 1)}…` : text;
}
