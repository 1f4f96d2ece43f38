/**
 * The customer-service window (Cloud API 131047, "Re-engagement message"): a business may send a
 * free-form message to a user only within 24 hours of the user's last message to that business
 * number; outside it, only a template gets through. Reactions are messages and are held too; a
 * read receipt (`{"status": "read"}`) is not a message and is not.
 *
 * Postmaster keeps one Redis key per (business number, user), `window:<number>:<user>`, holding the
 * time (ms) of the user's last inbound message, written by the dispatcher for each inbound message
 * and expiring a margin after the window closes. The sender reads it in the same script as its
 * dedup check (services/sender/send-ledger.ts): no round trip of its own.
 */
import type { Envelope } from './envelope.js';
import { luaScript, type LuaFn } from '../platform/lua-scripts.js';
import type { RedisContext } from '../platform/redis.js';

/** How long a window stays open after the user's last message. */
export const WINDOW_MS = 24 * 3600 * 1000;
/** The key outlives its window by this much, so a reader never mistakes a lapsed key for a young one. */
const KEY_MARGIN_MS = 3600 * 1000;

/** The Redis key of the window of `user` with business number `number`. */
export function windowKey(rt: Pick<RedisContext, 'keys'>, number: string, user: string): string {
  return rt.keys('window', number, user);
}

/** Whether the window decides if `payload` may be sent: every message but a template (and a read receipt). */
export function heldByWindow(payload: Record<string, unknown>): boolean {
  if (payload.type === 'template') return false;
  return !(payload.type === undefined && payload.status === 'read');
}

/** The envelope as its fallback template: same id, recipient and lane, the template as its payload. */
export function asFallback(env: Envelope): Envelope | null {
  return env.fallbackTemplate ? { ...env, payload: { type: 'template', template: env.fallbackTemplate } } : null;
}

/**
 * When the user wrote: Meta's `timestamp` (seconds) of the inbound message, else the envelope's
 * creation; never later than now (a skewed clock must not stretch the window).
 */
export function inboundAt(env: Envelope, now = Date.now()): number {
  const ts = Number((env.payload as { timestamp?: unknown }).timestamp);
  const at = Number.isFinite(ts) && ts > 0 ? ts * 1000 : Date.parse(env.createdAt);
  return Math.min(at, now);
}

/** The business number an inbound message was sent to (the webhook's metadata), else the configured one. */
export function receivingNumber(env: Envelope, fallback: string): string {
  const id = (env.payload as { metadata?: { phone_number_id?: unknown } }).metadata?.phone_number_id;
  return typeof id === 'string' && id !== '' ? id : fallback;
}

const OPEN = luaScript({
  name: 'postmasterWindowOpen',
  file: new URL('./lua/window-open.lua', import.meta.url),
  keys: ['window'],
  args: ['lastInboundMs', 'expiresAtMs'],
});

/** The writer of window records: one script call per inbound message. */
export class WindowBook {
  private readonly open: LuaFn<typeof OPEN>;

  constructor(private readonly rt: Pick<RedisContext, 'redis' | 'keys'>) {
    this.open = OPEN.bind(rt.redis);
  }

  /** The user wrote to `number` at `atMs`: their window is open until `atMs` + 24 h. */
  async opened(number: string, user: string, atMs: number): Promise<void> {
    await this.open({ keys: { window: windowKey(this.rt, number, user) }, args: { lastInboundMs: atMs, expiresAtMs: atMs + WINDOW_MS + KEY_MARGIN_MS } });
  }
}
