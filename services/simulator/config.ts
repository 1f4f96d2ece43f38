/**
 * Configuration of the standalone simulator (`main.ts`), read from the environment and validated
 * strictly at start. Every key has doc, format, default and env; secrets are marked sensitive so
 * convict masks them when the config is printed.
 */
import convict from 'convict';
import type { SimNumber } from './numbers.js';
import type { SimulatorOptions } from './server.js';
import type { StatusName } from './webhook.js';

const STATUS_NAMES: readonly string[] = ['sent', 'delivered', 'read'];

convict.addFormat({
  name: 'simulator-flag',
  validate(value: unknown) {
    if (typeof value !== 'boolean') throw new Error('must be true/false, 1/0 or yes/no');
  },
  coerce(value: unknown) {
    const text = String(value).trim().toLowerCase();
    if (['1', 'true', 'yes', 'on'].includes(text)) return true;
    if (['0', 'false', 'no', 'off'].includes(text)) return false;
    return value;
  },
});
convict.addFormat({
  name: 'simulator-ratio',
  validate(value: unknown) {
    if (typeof value !== 'number' || !(value >= 0 && value <= 1)) throw new Error('must be a number from 0 to 1');
  },
  coerce: (value: unknown) => Number(value),
});
convict.addFormat({
  name: 'simulator-statuses',
  validate(value: unknown) {
    if (!Array.isArray(value) || value.length === 0 || value.some((s) => !STATUS_NAMES.includes(String(s)))) {
      throw new Error(`must be a comma-separated list of ${STATUS_NAMES.join(', ')}`);
    }
  },
  coerce: (value: unknown) =>
    String(value)
      .split(',')
      .map((s) => s.trim())
      .filter(Boolean),
});

const definition = {
  port: { doc: 'Port to listen on (0 = any free port).', format: 'port', default: 9090, env: 'SIMULATOR_PORT' },
  host: { doc: 'Address the simulator listens on.', format: String, default: '127.0.0.1', env: 'SIMULATOR_HOST' },
  phoneNumberId: {
    doc: 'Only this phone number id is accepted in the path (empty: any).',
    format: String,
    default: '',
    env: 'WHATSAPP_PHONE_NUMBER_ID',
  },
  accessToken: {
    doc: 'Bearer token required on sends (empty: none required).',
    format: String,
    default: '',
    env: 'WHATSAPP_ACCESS_TOKEN',
    sensitive: true,
  },
  numbers: {
    doc: "Business numbers, the fleet's WHATSAPP_NUMBERS (JSON: id, tokenEnv, throughputPerSecond, portfolio): only these ids are accepted, each with the token its tokenEnv names (else WHATSAPP_ACCESS_TOKEN); empty: WHATSAPP_PHONE_NUMBER_ID.",
    format: String,
    default: '',
    env: 'WHATSAPP_NUMBERS',
  },
  messagingLimits: {
    doc: 'Messaging limits by portfolio as JSON ({"default": 1000}): distinct users reached by business-initiated templates per 24 h, 131048 past it; empty: none.',
    format: String,
    default: '',
    env: 'SIMULATOR_MESSAGING_LIMITS',
  },
  latencyMs: { doc: 'Latency added to every provider answer, ms.', format: 'nat', default: 0, env: 'SIMULATOR_LATENCY_MS' },
  jitterMs: { doc: 'Uniform extra latency 0..jitter, ms.', format: 'nat', default: 0, env: 'SIMULATOR_JITTER_MS' },
  errorRate: { doc: 'Share of sends answered with a random error (0..1).', format: 'simulator-ratio', default: 0, env: 'SIMULATOR_ERROR_RATE' },
  throughputPerSecond: {
    doc: 'Accepted sends per rolling second before error 130429 (0 = off; Meta default 80).',
    format: 'nat',
    default: 0,
    env: 'SIMULATOR_THROUGHPUT_PER_SECOND',
  },
  pairCount: {
    doc: 'Accepted sends per recipient per pair window before error 131056 (0 = off).',
    format: 'nat',
    default: 0,
    env: 'SIMULATOR_PAIR_COUNT',
  },
  pairWindowMs: { doc: 'Window of SIMULATOR_PAIR_COUNT, ms.', format: 'nat', default: 6000, env: 'SIMULATOR_PAIR_WINDOW_MS' },
  keepBodies: {
    doc: 'Keep request bodies in the ledger (false for long benchmarks).',
    format: 'simulator-flag',
    default: true,
    env: 'SIMULATOR_KEEP_BODIES',
  },
  seed: { doc: 'Seed of the random error mix (empty: random).', format: '*', default: '', env: 'SIMULATOR_SEED' },
  webhookUrl: { doc: 'Where to post status webhooks (empty: none).', format: String, default: '', env: 'SIMULATOR_WEBHOOK_URL' },
  webhookStatuses: {
    doc: 'Status webhooks posted to SIMULATOR_WEBHOOK_URL for every accepted message, in this order.',
    format: 'simulator-statuses',
    default: ['sent', 'delivered'],
    env: 'SIMULATOR_WEBHOOK_STATUSES',
  },
  appSecret: {
    doc: 'App secret that signs status webhooks (required with SIMULATOR_WEBHOOK_URL).',
    format: String,
    default: '',
    env: 'WHATSAPP_APP_SECRET',
    sensitive: true,
  },
  logLevel: {
    doc: 'Least severe level logged (pino); silent: nothing.',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    env: 'LOG_LEVEL',
  },
};

/** The schema itself, for the generated reference (scripts/gen-config-docs.ts → docs/CONFIG.md). */
export const SIMULATOR_CONFIG_SCHEMA: Readonly<typeof definition> = definition;

export interface StandaloneConfig {
  options: SimulatorOptions;
  logLevel: string;
}

function jsonOf(text: string, name: string): unknown {
  try {
    return JSON.parse(text);
  } catch (err) {
    throw new Error(`${name}: not JSON (${(err as Error).message})`, { cause: err });
  }
}

/** WHATSAPP_NUMBERS as the simulator's numbers, each with the token its tokenEnv names. */
function simNumbers(text: string, env: NodeJS.ProcessEnv): SimNumber[] {
  const list = jsonOf(text, 'WHATSAPP_NUMBERS');
  if (!Array.isArray(list)) throw new Error('WHATSAPP_NUMBERS: must be a JSON array');
  return list.map((n: { id?: unknown; tokenEnv?: unknown; throughputPerSecond?: unknown; portfolio?: unknown }, i) => {
    if (typeof n?.id !== 'string') throw new Error(`WHATSAPP_NUMBERS[${i}].id: is required`);
    const token = typeof n.tokenEnv === 'string' ? env[n.tokenEnv] : undefined;
    return {
      id: n.id,
      ...(token ? { accessToken: token } : {}),
      ...(typeof n.throughputPerSecond === 'number' ? { throughputPerSecond: n.throughputPerSecond } : {}),
      ...(typeof n.portfolio === 'string' ? { portfolio: n.portfolio } : {}),
    };
  });
}

/** Loads and validates the environment; throws one message naming every bad key. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): StandaloneConfig {
  const config = convict(definition, { env, args: [] });
  config.validate({ allowed: 'strict' });
  const c = config.getProperties();
  const seed = String(c.seed).trim();
  if (seed !== '' && !/^\d+$/.test(seed)) throw new Error('seed: SIMULATOR_SEED must be a non-negative integer');
  if (c.webhookUrl !== '' && c.appSecret === '') throw new Error('appSecret: WHATSAPP_APP_SECRET is required with SIMULATOR_WEBHOOK_URL');
  const options: SimulatorOptions = {
    port: c.port,
    host: c.host,
    phoneNumberId: c.phoneNumberId || undefined,
    accessToken: c.accessToken || undefined,
    ...(c.numbers.trim() !== '' ? { numbers: simNumbers(c.numbers, env) } : {}),
    ...(c.messagingLimits.trim() !== '' ? { messagingLimits: jsonOf(c.messagingLimits, 'SIMULATOR_MESSAGING_LIMITS') as Record<string, number> } : {}),
    keepBodies: c.keepBodies,
    seed: seed === '' ? undefined : Number(seed),
    faults: {
      latencyMs: c.latencyMs,
      jitterMs: c.jitterMs,
      errorRate: c.errorRate,
      throughputPerSecond: c.throughputPerSecond,
      pairPerWindow: c.pairCount > 0 ? { count: c.pairCount, windowMs: Math.max(1, c.pairWindowMs) } : null,
    },
    webhook: c.webhookUrl === '' ? undefined : { url: c.webhookUrl, appSecret: c.appSecret, statuses: c.webhookStatuses as StatusName[] },
  };
  return { options, logLevel: c.logLevel };
}
