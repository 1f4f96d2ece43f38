/**
 * The message envelope (docs/ARCHITECTURE.md, "Envelope"): the JSON body every lane carries, its schema, and the
 * `x-postmaster-*` headers that carry what the broker cannot.
 */
import { randomBytes } from 'node:crypto';
import { z } from 'zod';
import { monotonicFactory, type PRNG } from 'ulid';

const waId = z.string().regex(/^\+?\d{6,20}$/, 'must be a phone number in international format, digits only');

/**
 * AMQP 0-9-1 short strings (routing key, message-id, correlation-id, header names) hold at most
 * 255 bytes. amqplib throws while encoding a longer one (issue #25), so whatever becomes one is
 * bounded in bytes, not characters, before it reaches a publish.
 */
export const AMQP_SHORT_STRING_BYTES = 255;

export const utf8Bytes = (s: string): number => Buffer.byteLength(s, 'utf8');

/**
 * Objects and arrays may nest at most this deep inside a message's content (in
 * `{"template": {"components": [{…}]}}` the template is level 1, a component level 3). The Cloud
 * API's deepest documented shape, a carousel card's parameter, reaches 10, which leaves a flow's own
 * `flow_action_data` at least 9 levels. Anything deeper is refused: JSON.stringify at publish time
 * overflows the stack a few thousand levels down, and that was a 503 inviting endless retries.
 */
export const MAX_CONTENT_DEPTH = 16;

/**
 * The content serialized as JSON, at most. The largest the Cloud API takes, a body-only template's
 * 32,768-character text parameter in a 3-byte script, is 96 KiB.
 */
export const MAX_CONTENT_BYTES = 128 * 1024;

type Path = Array<string | number>;

/**
 * The path of the first object or array nested deeper than `max` levels inside `value` (its own
 * entries are level 1), in document order; null if there is none. Iterative on purpose: JSON.parse
 * builds structures far deeper than any recursive walk (JSON.stringify, zod) survives.
 */
export function tooDeep(value: unknown, max: number): Path | null {
  type Node = { v: object; key: string | number; up: Node | null; depth: number };
  const isNode = (v: unknown): v is object => v !== null && typeof v === 'object';
  if (!isNode(value)) return null;
  const stack: Node[] = [{ v: value, key: '', up: null, depth: 0 }];
  while (stack.length > 0) {
    const n = stack.pop()!;
    if (n.depth > max) {
      const path: Path = [];
      for (let at: Node | null = n; at?.up; at = at.up) path.unshift(at.key);
      return path;
    }
    const keys: Array<string | number> = Array.isArray(n.v) ? n.v.map((_, i) => i) : Object.keys(n.v);
    for (let i = keys.length - 1; i >= 0; i--) {
      const child = (n.v as Record<string | number, unknown>)[keys[i]];
      if (isNode(child)) stack.push({ v: child, key: keys[i], up: n, depth: n.depth + 1 });
    }
  }
  return null;
}

export const PRIORITIES = ['normal', 'urgent'] as const;
export type Priority = (typeof PRIORITIES)[number];

export const envelopeSchema = z
  .object({
    id: z.string().regex(/^[0-9A-HJKMNP-TV-Z]{26}$/, 'must be a ULID'),
    kind: z.enum(['outbound', 'inbound', 'status']),
    user: waId,
    priority: z.enum(PRIORITIES),
    urgency: z.number().int().min(0).max(9).optional(),
    createdAt: z.iso.datetime(),
    payload: z.record(z.string(), z.unknown()),
    idempotencyKey: z.string().min(1).max(200).optional(),
    sendAt: z.iso.datetime({ offset: true }).optional(),
    // 255, not the ingress's 200: an envelope already in a queue got through amqplib's encoder.
    correlationId: z
      .string()
      .max(200)
      .refine((s) => utf8Bytes(s) <= AMQP_SHORT_STRING_BYTES, `must be at most ${AMQP_SHORT_STRING_BYTES} bytes in UTF-8`)
      .optional(),
    /** Outbound: the business number (phone number id) it goes out from; absent: the default number (shared/platform/numbers.ts). */
    from: z
      .string()
      .regex(/^\d{1,30}$/, 'must be a phone number id, digits only')
      .optional(),
    /** Envelope id of the inbound message an outbound reply answers. */
    replyTo: z.string().optional(),
    /** A template `template` object sent instead when the user's customer-service window is closed (shared/domain/window.ts). */
    fallbackTemplate: z.record(z.string(), z.unknown()).optional(),
    attempt: z.number().int().min(0),
  })
  .strict();
export type Envelope = z.infer<typeof envelopeSchema>;

export class EnvelopeError extends Error {
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = 'EnvelopeError';
  }
}

/** "payload.text.body: Too small" — the first issue, naming its field. */
export function describeIssue(err: z.ZodError, root = ''): { field: string; message: string } {
  const issue = err.issues[0];
  const field = [root, ...issue.path.map(String)].filter(Boolean).join('.') || root || '(body)';
  return { field, message: `${field}: ${issue.message}` };
}

/** Parses a consumed body; throws EnvelopeError naming the field (a poison message). */
export function parseEnvelope(content: Buffer): Envelope {
  let raw: unknown;
  try {
    raw = JSON.parse(content.toString('utf8'));
  } catch (err) {
    throw new EnvelopeError(`body is not JSON: ${(err as Error).message}`, '(body)');
  }
  const r = envelopeSchema.safeParse(raw);
  if (!r.success) {
    const { field, message } = describeIssue(r.error);
    throw new EnvelopeError(message, field);
  }
  return r.data;
}

const RANDOM_POOL_BYTES = 4096;
let pool = randomBytes(RANDOM_POOL_BYTES);
let poolAt = 0;

/**
 * ulid's PRNG, fed from a pooled buffer of cryptographically random bytes, refilled when used up.
 * `ulid()` with its default PRNG looks the PRNG up again and makes one `getRandomValues` call per
 * character, on every id: 350–650 µs per id on a loaded machine, the largest item of the ingress's
 * CPU profile. One byte per character: ulid takes `floor(x * 32)`, i.e. the byte's top 5 bits (uniform).
 */
const pooledPrng: PRNG = () => {
  if (poolAt >= pool.length) {
    pool = randomBytes(RANDOM_POOL_BYTES);
    poolAt = 0;
  }
  return pool[poolAt++] / 256;
};

/**
 * ULIDs (time + 80 random bits). Monotonic within this process: ids made in the same millisecond
 * increment the random part of the first, so ids sort in the order they were made.
 */
const nextUlid = monotonicFactory(pooledPrng);

export function newEnvelope(fields: Omit<Envelope, 'id' | 'createdAt' | 'attempt'> & Partial<Pick<Envelope, 'id' | 'createdAt'>>): Envelope {
  return { id: fields.id ?? nextUlid(), createdAt: fields.createdAt ?? new Date().toISOString(), attempt: 0, ...fields } as Envelope;
}

export function newId(): string {
  return nextUlid();
}

/** Header names (docs/ARCHITECTURE.md, "Envelope" and "Failures"). */
export const H = {
  lane: 'x-postmaster-lane',
  /** The lane again, for the retry return exchange to route on (see LANE_HEADER). */
  route: 'postmaster-lane',
  stage: 'x-postmaster-stage',
  attempt: 'x-postmaster-attempt',
  acceptedAt: 'x-postmaster-accepted-at',
  firstFailureAt: 'x-postmaster-first-failure-at',
  lastFailureAt: 'x-postmaster-last-failure-at',
  failureClass: 'x-postmaster-failure-class',
  failureCode: 'x-postmaster-failure-code',
  failureMessage: 'x-postmaster-failure-message',
  originExchange: 'x-postmaster-origin-exchange',
  originRoutingKey: 'x-postmaster-origin-routing-key',
  user: 'x-postmaster-user',
  replays: 'x-postmaster-replays',
  /** The retry tier a message waits in, and whether it waits only behind a held message (strict ordering). */
  tier: 'x-postmaster-tier',
  parked: 'x-postmaster-parked',
} as const;
