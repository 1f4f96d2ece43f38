/**
 * The rules inside each message type's object, as the Cloud API applies them: lengths, counts and
 * the parts a type cannot do without. A broken outline (the object missing, not an object, a media
 * object with neither link nor id) is code 100 as before; a missing part inside is 131008 and a
 * value out of bounds 131009, the field named in the details.
 * https://developers.facebook.com/docs/whatsapp/cloud-api/reference/messages
 */
import type { MessageType } from './contract.js';

export const MISSING = 131008;
export const NOT_VALID = 131009;

export interface Problem {
  code: number;
  text: string;
}

type Json = Record<string, unknown>;
export const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
export const isText = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
const outline = (text: string): Problem => ({ code: 100, text });
const missing = (field: string): Problem => ({ code: MISSING, text: `The parameter ${field} is required.` });
const notValid = (text: string): Problem => ({ code: NOT_VALID, text });

/**
 * Over `max` characters, counted as code points (an emoji outside the BMP is one, not two), as the
 * ingress's schemas count them; code points are counted only when the UTF-16 length is over.
 */
const over = (s: string, max: number): boolean => s.length > max && [...s].length > max;

/** A string of 1 (0 if optional) to `max` characters, or why not. */
function text(v: unknown, field: string, max: number, required = true): Problem | null {
  if (v === undefined) return required ? missing(field) : null;
  if (typeof v !== 'string') return notValid(`Param ${field} must be a string.`);
  if ((required && v.length === 0) || over(v, max)) return notValid(`Param ${field} length invalid. Min length: 1, Max length: ${max}.`);
  return null;
}

const HTTP_URL = /^https?:\/\/[^\s/]+/i;
const CAPTIONED: ReadonlySet<string> = new Set(['image', 'video', 'document']);
const MEDIA_TYPES: ReadonlySet<string> = new Set(['image', 'audio', 'document', 'video', 'sticker']);
/** One emoji or none (the `v` flag is newer than the compile target; Node 20 has it). */
const ONE_EMOJI = new RegExp('^(\\p{RGI_Emoji}|\\p{Extended_Pictographic}\\uFE0F?)?$', 'v');
const isCoordinate = (v: unknown): boolean =>
  typeof v === 'number' ? Number.isFinite(v) : typeof v === 'string' && v.trim() !== '' && Number.isFinite(Number(v));

/** The object named by `type` must be present and keep to that type's rules. */
export function typeObjectProblem(type: MessageType, value: unknown): Problem | null {
  if (value === undefined) return outline(`The parameter ${type} is required.`);
  if (type === 'contacts') return contactsProblem(value);
  if (!isObject(value)) return outline(`Param ${type} must be a JSON object.`);
  if (MEDIA_TYPES.has(type)) return mediaProblem(type, value);
  switch (type) {
    case 'text':
      if (!isText(value.body)) return outline("The parameter text['body'] is required.");
      return over(value.body, 4096) ? outline("Param text['body'] must be at most 4096 characters long.") : null;
    case 'template':
      if (!isText(value.name)) return outline("The parameter template['name'] is required.");
      return isObject(value.language) && isText(value.language.code) ? null : outline("The parameter template['language']['code'] is required.");
    case 'interactive':
      if (!isText(value.type)) return outline("The parameter interactive['type'] is required.");
      return isObject(value.action) ? interactiveProblem(value) : outline("The parameter interactive['action'] is required.");
    case 'location':
      if (!isCoordinate(value.latitude) || !isCoordinate(value.longitude)) {
        return outline("The parameters location['latitude'] and location['longitude'] are required.");
      }
      if (Math.abs(Number(value.latitude)) > 90) return notValid("Param location['latitude'] must be between -90 and 90.");
      return Math.abs(Number(value.longitude)) > 180 ? notValid("Param location['longitude'] must be between -180 and 180.") : null;
    case 'reaction':
      if (!isText(value.message_id)) return outline("The parameter reaction['message_id'] is required.");
      if (typeof value.emoji !== 'string') return missing("reaction['emoji']");
      return ONE_EMOJI.test(value.emoji) ? null : notValid("Param reaction['emoji'] must be a single emoji.");
    default:
      return null;
  }
}

function mediaProblem(type: string, m: Json): Problem | null {
  if (!isText(m.link) && !isText(m.id)) return outline(`Param ${type} must contain either 'link' or 'id'.`);
  if (m.link !== undefined && !(typeof m.link === 'string' && HTTP_URL.test(m.link))) return notValid(`Param ${type}['link'] must be an HTTP(S) URL.`);
  if (m.caption !== undefined && !CAPTIONED.has(type)) return notValid(`Param ${type}['caption'] is not supported for ${type} messages.`);
  if (m.filename !== undefined && type !== 'document') return notValid(`Param ${type}['filename'] is only supported for document messages.`);
  return text(m.caption, `${type}['caption']`, 1024, false);
}

function contactsProblem(value: unknown): Problem | null {
  if (!Array.isArray(value) || value.length === 0) return outline('Param contacts must be a non-empty array.');
  for (const [i, c] of value.entries()) {
    const at = `contacts[${i}]`;
    if (!isObject(c) || !isObject(c.name)) return missing(`${at}['name']`);
    const bad = text(c.name.formatted_name, `${at}['name']['formatted_name']`, 1000);
    if (bad) return bad;
    if (!Object.keys(c.name).some((k) => k !== 'formatted_name')) {
      return notValid(`Param ${at}['name'] needs at least one of first_name, last_name, middle_name, suffix, prefix.`);
    }
    for (const list of ['phones', 'emails', 'urls', 'addresses']) {
      if (c[list] !== undefined && !Array.isArray(c[list])) return notValid(`Param ${at}['${list}'] must be an array.`);
    }
  }
  return null;
}

function interactiveProblem(i: Json): Problem | null {
  const action = i.action as Json;
  if (!['button', 'list', 'cta_url', 'flow'].includes(i.type as string)) return null;
  if (!isObject(i.body)) return missing("interactive['body']");
  const parts =
    text(i.body.text, "interactive['body']['text']", 1024) ??
    (isObject(i.footer) ? text(i.footer.text, "interactive['footer']['text']", 60) : null) ??
    (isObject(i.header) && i.header.type === 'text' ? text(i.header.text, "interactive['header']['text']", 60) : null);
  if (parts) return parts;
  switch (i.type) {
    case 'button':
      return buttonsProblem(action);
    case 'list':
      return listProblem(action);
    case 'cta_url': {
      const p = isObject(action.parameters) ? action.parameters : {};
      if (action.name !== 'cta_url') return notValid("Param interactive['action']['name'] must be cta_url.");
      if (!(typeof p.url === 'string' && HTTP_URL.test(p.url))) return notValid("Param interactive['action']['parameters']['url'] must be an HTTP(S) URL.");
      return text(p.display_text, "interactive['action']['parameters']['display_text']", 20);
    }
    default:
      return flowProblem(action);
  }
}

function buttonsProblem(action: Json): Problem | null {
  const buttons = action.buttons;
  if (!Array.isArray(buttons) || buttons.length < 1 || buttons.length > 3) return notValid("Param interactive['action']['buttons'] must hold 1 to 3 buttons.");
  const ids = new Set<unknown>();
  for (const [n, b] of buttons.entries()) {
    const at = `interactive['action']['buttons'][${n}]['reply']`;
    const reply = isObject(b) && b.type === 'reply' && isObject(b.reply) ? b.reply : null;
    if (!reply) return missing(at);
    const bad = text(reply.id, `${at}['id']`, 256) ?? text(reply.title, `${at}['title']`, 20);
    if (bad) return bad;
    if (ids.has(reply.id)) return notValid(`Param ${at}['id'] must be unique.`);
    ids.add(reply.id);
  }
  return null;
}

function listProblem(action: Json): Problem | null {
  const bad = text(action.button, "interactive['action']['button']", 20);
  if (bad) return bad;
  const sections = action.sections;
  if (!Array.isArray(sections) || sections.length < 1 || sections.length > 10)
    return notValid("Param interactive['action']['sections'] must hold 1 to 10 sections.");
  let rows = 0;
  for (const [s, section] of sections.entries()) {
    const at = `interactive['action']['sections'][${s}]`;
    if (!isObject(section) || !Array.isArray(section.rows) || section.rows.length === 0) return missing(`${at}['rows']`);
    const title = text(section.title, `${at}['title']`, 24, sections.length > 1);
    if (title) return title;
    for (const [r, row] of section.rows.entries()) {
      const rowAt = `${at}['rows'][${r}]`;
      if (!isObject(row)) return missing(rowAt);
      const problem =
        text(row.id, `${rowAt}['id']`, 200) ?? text(row.title, `${rowAt}['title']`, 24) ?? text(row.description, `${rowAt}['description']`, 72, false);
      if (problem) return problem;
    }
    rows += section.rows.length;
  }
  return rows > 10 ? notValid("Param interactive['action']['sections'] must hold at most 10 rows in all.") : null;
}

function flowProblem(action: Json): Problem | null {
  const at = "interactive['action']['parameters']";
  if (action.name !== 'flow') return notValid("Param interactive['action']['name'] must be flow.");
  if (!isObject(action.parameters)) return missing(at);
  const p = action.parameters;
  if (p.flow_message_version !== '3') return notValid(`Param ${at}['flow_message_version'] must be 3.`);
  if (isText(p.flow_id) === isText(p.flow_name)) return notValid(`Param ${at} needs exactly one of flow_id or flow_name.`);
  if (p.flow_action !== undefined && p.flow_action !== 'navigate' && p.flow_action !== 'data_exchange') {
    return notValid(`Param ${at}['flow_action'] must be one of {NAVIGATE, DATA_EXCHANGE}.`);
  }
  return text(p.flow_cta, `${at}['flow_cta']`, 20);
}
