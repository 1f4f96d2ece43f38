/**
 * The business numbers a fleet sends from (WHATSAPP_NUMBERS), and the messaging limit of the
 * business portfolio they belong to.
 *
 * WHATSAPP_NUMBERS is a JSON array, one object per number, the first being the default:
 *
 *   [{"id": "106540352242922", "alias": "sales", "tokenEnv": "WHATSAPP_ACCESS_TOKEN_SALES",
 *     "throughputPerSecond": 80, "display": "15550783881", "portfolio": "main"}, …]
 *
 * It holds no secret: `tokenEnv` names the environment variable that holds the number's access
 * token (a key of the sender's Secret), so the ingress and dispatcher, which resolve `from` and
 * replies, never see a token. Empty, the fleet has the one number of WHATSAPP_PHONE_NUMBER_ID,
 * WHATSAPP_ACCESS_TOKEN and WHATSAPP_THROUGHPUT_PER_SECOND.
 *
 * Meta sets messaging limits (business-initiated sends to distinct users per rolling 24 hours) per
 * business portfolio since October 2025, shared by its numbers: `portfolio` groups numbers that
 * share one limit (default: all of them), WHATSAPP_MESSAGING_LIMIT is that limit, and a number's
 * `messagingLimit` sets its portfolio's.
 */
import { z } from 'zod';

/** A messaging limit: distinct users per rolling 24 h, or null for unlimited. */
export type MessagingLimit = number | null;

export interface BusinessNumber {
  /** Phone number id (Graph API), digits. */
  id: string;
  /** Name a send may use in `from` instead of the id. */
  alias: string | null;
  /** Environment variable holding this number's access token; null: WHATSAPP_ACCESS_TOKEN. */
  tokenEnv: string | null;
  /** Sends per second across the fleet; 0 = no limit of ours. */
  throughputPerSecond: number;
  /** Display phone number (digits), which Meta's phone_number_quality_update webhook names. */
  display: string | null;
  /** The business portfolio whose messaging limit this number shares. */
  portfolio: string;
}

const numberEntry = z
  .object({
    id: z.string().regex(/^\d{1,30}$/, 'must be the phone number id, digits only'),
    alias: z
      .string()
      .regex(/^[a-z][a-z0-9_-]{0,39}$/, 'must be lower-case letters, digits, _ or -, starting with a letter')
      .optional(),
    tokenEnv: z
      .string()
      .regex(/^[A-Z_][A-Z0-9_]*$/, 'must be an environment variable name')
      .optional(),
    throughputPerSecond: z.number().int().min(0).max(100_000).optional(),
    display: z
      .string()
      .regex(/^\d{6,20}$/, 'must be the display phone number, digits only')
      .optional(),
    portfolio: z.string().min(1).max(64).optional(),
    messagingLimit: z.union([z.literal('unlimited'), z.number().int().min(0)]).optional(),
  })
  .strict();

const numbersList = z.array(numberEntry).min(1).max(100);

/**
 * Meta's tier names (`current_limit`, `TIER_1K`) and plain numbers to a limit. TIER_NOT_SET and
 * unknown names give undefined (keep what is known).
 */
export function parseMessagingLimit(value: unknown): MessagingLimit | undefined {
  if (typeof value === 'number') return Number.isSafeInteger(value) && value >= 0 ? value : undefined;
  // Only a short printable-ASCII string: toUpperCase would make "unlımıted" (dotless ı) UNLIMITED,
  // and String() of an array would make ["5"] a 5.
  if (typeof value !== 'string' || !/^[\x20-\x7e]{1,32}$/.test(value)) return undefined;
  const s = value.trim().toUpperCase();
  if (s === 'UNLIMITED' || s === 'TIER_UNLIMITED') return null;
  const m = /^(?:(\d+)|TIER_(\d+)(K?))$/.exec(s);
  const n = m ? (m[1] !== undefined ? Number(m[1]) : Number(m[2]) * (m[3] ? 1000 : 1)) : NaN;
  return Number.isSafeInteger(n) ? n : undefined;
}

export interface NumbersSettings {
  whatsappNumbers: string;
  whatsappPhoneNumberId: string;
  whatsappThroughputPerSecond: number;
  whatsappMessagingLimit: string;
}

/** The configured numbers and portfolios, built once per configuration object. */
export class BusinessNumbers {
  readonly all: readonly BusinessNumber[];
  readonly default: BusinessNumber;
  private readonly byRef = new Map<string, BusinessNumber>();
  private readonly limits = new Map<string, MessagingLimit>();

  constructor(s: NumbersSettings) {
    const fallbackLimit = parseMessagingLimit(s.whatsappMessagingLimit);
    if (fallbackLimit === undefined)
      throw new Error(`WHATSAPP_MESSAGING_LIMIT: must be "unlimited", a number or a tier name like TIER_1K (got "${s.whatsappMessagingLimit}")`);
    const entries = s.whatsappNumbers.trim() === '' ? [{ id: s.whatsappPhoneNumberId }] : parseNumbersJson(s.whatsappNumbers);
    this.all = entries.map((e) => ({
      id: e.id,
      alias: e.alias ?? null,
      tokenEnv: e.tokenEnv ?? null,
      throughputPerSecond: e.throughputPerSecond ?? s.whatsappThroughputPerSecond,
      display: e.display ?? null,
      portfolio: e.portfolio ?? 'default',
    }));
    this.default = this.all[0];
    entries.forEach((e, i) => {
      const n = this.all[i];
      for (const ref of [n.id, n.alias]) {
        if (ref === null) continue;
        if (this.byRef.has(ref)) throw new Error(`WHATSAPP_NUMBERS[${i}]: "${ref}" names two numbers`);
        this.byRef.set(ref, n);
      }
      if (e.messagingLimit !== undefined) this.limits.set(n.portfolio, e.messagingLimit === 'unlimited' ? null : e.messagingLimit);
      else if (!this.limits.has(n.portfolio)) this.limits.set(n.portfolio, fallbackLimit);
    });
  }

  /** The number a send names by id or alias; undefined if none is configured. */
  resolve(ref: string): BusinessNumber | undefined {
    return this.byRef.get(ref);
  }

  /** The number a message goes out from: its `from`, else the default. */
  of(from: string | undefined): BusinessNumber | undefined {
    return from === undefined ? this.default : this.byRef.get(from);
  }

  /** The configured messaging limit of a portfolio (null: unlimited). */
  messagingLimit(portfolio: string): MessagingLimit {
    return this.limits.get(portfolio) ?? null;
  }

  /** The number whose display phone number is `display` (the quality webhook's key). */
  byDisplay(display: string): BusinessNumber | undefined {
    return this.all.find((n) => n.display === display);
  }

  /** Why `ref` resolves to nothing, for the error of whoever named it. */
  notConfigured(ref: string): string {
    return `"${ref}" is not a configured business number (configured: ${this.describe()})`;
  }

  /** "sales (1065…), support (1065…)" for error messages. */
  describe(): string {
    return this.all.map((n) => (n.alias ? `${n.alias} (${n.id})` : n.id)).join(', ');
  }
}

function parseNumbersJson(json: string): z.infer<typeof numbersList> {
  let raw: unknown;
  try {
    raw = JSON.parse(json);
  } catch (err) {
    throw new Error(`WHATSAPP_NUMBERS: not JSON (${(err as Error).message})`, { cause: err });
  }
  const r = numbersList.safeParse(raw);
  if (!r.success) {
    const issue = r.error.issues[0];
    throw new Error(`WHATSAPP_NUMBERS${issue.path.map((p) => (typeof p === 'number' ? `[${p}]` : `.${String(p)}`)).join('')}: ${issue.message}`);
  }
  return r.data;
}

const built = new WeakMap<object, BusinessNumbers>();

/** The numbers of a configuration (validated by loadConfig, so this does not throw on a loaded one). */
export function businessNumbers(cfg: NumbersSettings): BusinessNumbers {
  let n = built.get(cfg);
  if (!n) {
    n = new BusinessNumbers(cfg);
    built.set(cfg, n);
  }
  return n;
}

/**
 * The access token of each number, from `env` (the sender's environment): `tokenEnv`'s value, or
 * `fallback` (WHATSAPP_ACCESS_TOKEN) for a number without one. Throws naming every missing one.
 */
export function numberTokens(numbers: BusinessNumbers, env: NodeJS.ProcessEnv, fallback: string): Map<string, string> {
  const out = new Map<string, string>();
  const missing: string[] = [];
  for (const n of numbers.all) {
    const token = n.tokenEnv ? env[n.tokenEnv] : fallback;
    if (!token) missing.push(`${n.tokenEnv} (the access token of number ${n.alias ?? n.id}) is not set`);
    else out.set(n.id, token);
  }
  if (missing.length) throw new Error(missing.join('; '));
  return out;
}
