/**
 * What a Postmaster process may start with in production (NODE_ENV=production), and which secrets
 * each service holds. shared/platform/config.ts applies both in loadConfig: it refuses unsafe settings (all
 * of them at once, one line each) and blanks the secrets of other services, so a leaked ingress
 * config (the internet-facing part) carries no Cloud API token and no bot handler token.
 */
import type { Config } from './config.js';

/** The development default of every secret: refused in production. */
export const DEV_SECRET = 'dev-only-secret';

/** A process's role: one of the four services, the replay CLI, or a whole fleet in one (npm start, tests). */
const ROLES = ['ingress', 'dispatcher', 'sender', 'dlq-replayer', 'cli', 'fleet'] as const;
export type ServiceRole = (typeof ROLES)[number];

/** The role of a runtime's service name; an unknown name counts as the whole fleet (every check). */
export function roleOf(service: string): ServiceRole {
  return (ROLES as readonly string[]).includes(service) ? (service as ServiceRole) : 'fleet';
}

type SecretKey =
  'ingressApiToken' | 'ingressApiTokenPrevious' | 'whatsappAppSecret' | 'whatsappVerifyToken' | 'whatsappAccessToken' | 'botHandlerToken' | 'replayJobKey';

/** Secrets by role. A secret listed under some role and not under this one is blanked in its config. */
const SECRETS_OF: Record<Exclude<ServiceRole, 'fleet'>, SecretKey[]> = {
  ingress: ['ingressApiToken', 'ingressApiTokenPrevious', 'whatsappAppSecret', 'whatsappVerifyToken'],
  dispatcher: ['botHandlerToken'],
  sender: ['whatsappAccessToken'],
  'dlq-replayer': ['replayJobKey'],
  cli: ['replayJobKey'],
};

const ALL_SECRETS = [...new Set(Object.values(SECRETS_OF).flat())];

export function secretsOf(role: ServiceRole): SecretKey[] {
  return role === 'fleet' ? ALL_SECRETS : SECRETS_OF[role];
}

/** The config with every secret this role does not use set to ''. */
export function withOwnSecrets(cfg: Config, role: ServiceRole): Config {
  const own = new Set(secretsOf(role));
  const out = { ...cfg };
  for (const k of ALL_SECRETS) if (!own.has(k)) out[k] = '';
  return out;
}

/** Minimum lengths (characters) of the secrets a role must have in production. */
const MIN_LENGTH: Record<SecretKey, number> = {
  ingressApiToken: 32,
  ingressApiTokenPrevious: 32,
  whatsappAppSecret: 32,
  whatsappVerifyToken: 16,
  whatsappAccessToken: 32,
  botHandlerToken: 32,
  replayJobKey: 32,
};

/**
 * Secrets that may be empty here; when set they must be as strong as the others. (An empty
 * REPLAY_JOB_KEY is the replayer's to refuse: it says what unsigned jobs mean.)
 */
const OPTIONAL = new Set<SecretKey>(['ingressApiTokenPrevious', 'replayJobKey']);

/** Values copied from a template or a tutorial rather than generated. */
const PLACEHOLDERS = [/replace[_-]?with/i, /change[_-]?me/i, /^<.*>$/, /^\$\{.*\}$/, /^(x+|\*+|0+)$/i, /^(secret|password|token|test|example|default)$/i];

/** Names of the config keys' environment variables (schema[k].env), given by config.ts. */
export type EnvNames = Record<keyof Config, string>;

function secretRefusal(key: SecretKey, value: string, env: EnvNames): string | null {
  const name = env[key];
  const fix = `set a random secret of at least ${MIN_LENGTH[key]} characters (openssl rand -hex 32)`;
  if (value === '') return OPTIONAL.has(key) ? null : `${name} is empty: ${fix}`;
  if (value === DEV_SECRET) return `${name} is not set (still the development default): ${fix}`;
  if (PLACEHOLDERS.some((re) => re.test(value))) return `${name} is a placeholder: ${fix}`;
  if (value.length < MIN_LENGTH[key]) return `${name} is too short (${value.length} characters): ${fix}`;
  return null;
}

function httpsRefusal(url: string, name: string, what: string): string | null {
  if (url === '') return `${name} is not set: give the https URL of ${what}`;
  return new URL(url).protocol === 'https:' ? null : `${name} is not https (${new URL(url).protocol}//…): give the https URL of ${what}`;
}

/**
 * Why `cfg` must not run as `role` in production: one line per unsafe setting, each starting with
 * the variable's name; empty when it may run. Only the settings the role uses are checked.
 */
export function productionRefusals(cfg: Config, role: ServiceRole, env: EnvNames): string[] {
  const out: Array<string | null> = secretsOf(role).map((k) => secretRefusal(k, cfg[k], env));
  const uses = (r: ServiceRole) => role === r || role === 'fleet';
  if (uses('dispatcher'))
    out.push(httpsRefusal(cfg.botHandlerUrl, env.botHandlerUrl, 'the bot handler (the built-in echo handler answers users with their own text)'));
  if (uses('sender')) {
    out.push(httpsRefusal(cfg.providerBaseUrl, env.providerBaseUrl, 'the Cloud API (https://graph.facebook.com)'));
    // With WHATSAPP_NUMBERS the ids come from the list (its schema takes digits only).
    if (cfg.whatsappNumbers.trim() === '' && !/^\d+$/.test(cfg.whatsappPhoneNumberId))
      out.push(
        `${env.whatsappPhoneNumberId} is not digits only ("${cfg.whatsappPhoneNumberId.slice(0, 40)}"): give the business phone number id from WhatsApp Manager`,
      );
  }
  return out.filter((r): r is string => r !== null);
}
