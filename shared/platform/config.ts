/**
 * The convict schema shared by every service. Each key has doc, format, default and env;
 * validation is strict; secrets are `sensitive` (masked when logged). In production each service's
 * own secrets must be strong and its URLs https (shared/platform/production-policy.ts), and a service keeps
 * only its own secrets.
 */
import convict from 'convict';
import { businessNumbers } from './numbers.js';
import { DEV_SECRET, productionRefusals, withOwnSecrets, type EnvNames, type ServiceRole } from './production-policy.js';

/** Parses RETRY_TIERS, "1s,5s,30s,2m,10m" (or bare milliseconds), into ascending milliseconds. */
export function parseTiers(spec: string): number[] {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const tiers = spec
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean)
    .map((part) => {
      const m = /^(\d+)(ms|s|m|h)?$/.exec(part);
      if (!m) throw new Error(`retry tier "${part}" is not a duration like 500ms, 5s, 2m or 1h`);
      return Number(m[1]) * units[m[2] ?? 'ms'];
    });
  if (tiers.length === 0) throw new Error('at least one retry tier is required');
  for (let i = 1; i < tiers.length; i++) {
    if (tiers[i] <= tiers[i - 1]) throw new Error(`retry tiers must be strictly ascending, got ${spec}`);
  }
  if (tiers[0] <= 0) throw new Error('retry tiers must be longer than 0 ms');
  return tiers;
}

convict.addFormat({
  name: 'amqp-urls',
  validate(value: unknown) {
    const urls = String(value)
      .split(',')
      .map((s) => s.trim());
    for (const u of urls) {
      if (!/^amqps?:\/\/[^\s]+$/.test(u)) throw new Error(`"${u}" is not an amqp:// or amqps:// URL`);
    }
  },
});
convict.addFormat({
  name: 'retry-tiers',
  validate(value: unknown) {
    parseTiers(String(value));
  },
});
convict.addFormat({
  name: 'optional-url',
  validate(value: unknown) {
    if (value === '' || value === null) return;
    const u = new URL(String(value));
    if (!/^https?:$/.test(u.protocol)) throw new Error('must be an http(s) URL');
  },
});

convict.addFormat({
  name: 'host-ports',
  validate(value: unknown) {
    if (value === '' || value === null) return;
    for (const hp of String(value).split(',')) {
      if (!/^[^\s:,]+:\d{1,5}$/.test(hp.trim())) throw new Error(`"${hp.trim()}" is not host:port`);
    }
  },
});

function patternFormat(name: string, re: RegExp, hint: string): void {
  convict.addFormat({
    name,
    validate(value: unknown) {
      if (!re.test(String(value))) throw new Error(`must be ${hint}`);
    },
  });
}
patternFormat('graph-version', /^v\d+\.\d+$/, 'a Graph API version like v21.0');
patternFormat('topology-prefix', /^[a-z][a-z0-9_-]*(\.[a-z0-9_-]+)*$/, 'lower-case words separated by dots');

const schema = {
  env: {
    doc: 'Deployment environment; production refuses unsafe settings (weak or placeholder secrets, the echo bot, plain-http provider or bot URLs; shared/platform/production-policy.ts).',
    format: ['production', 'development', 'test'],
    default: 'development',
    env: 'NODE_ENV',
  },
  allowInsecure: {
    doc: 'Escape hatch for local clusters only: 1 lets NODE_ENV=production start despite the unsafe settings it would refuse, logging each of them as a warning at start.',
    format: ['0', '1'],
    default: '0',
    env: 'POSTMASTER_ALLOW_INSECURE',
  },
  amqpUrl: {
    doc: 'RabbitMQ URL(s), comma-separated cluster nodes; the vhost is the URL path.',
    format: 'amqp-urls',
    default: 'amqp://guest:guest@127.0.0.1:5672',
    env: 'AMQP_URL',
    sensitive: true,
  },
  managementUrl: {
    doc: 'RabbitMQ management API URL (policies, queue depths); empty: the first AMQP node on port 15672.',
    format: 'optional-url',
    default: '',
    env: 'RABBITMQ_MANAGEMENT_URL',
    sensitive: true,
  },
  redisUrl: {
    doc: 'Redis URL (redis:// or rediss:// for TLS, with user, password and db): status records, idempotency keys, shard leases, scheduled sends (BullMQ). With REDIS_SENTINELS only its credentials, db and scheme count.',
    format: String,
    default: 'redis://127.0.0.1:6379',
    env: 'REDIS_URL',
    sensitive: true,
  },
  redisKeyPrefix: { doc: 'Prefix of every Redis key and BullMQ queue of this fleet.', format: String, default: 'postmaster', env: 'REDIS_KEY_PREFIX' },
  redisCommandTimeoutMs: {
    doc: "Deadline of one Redis command, also while it waits for a connection; a command past it fails (ingress: 503). Keep it at most half of PUBLISH_TIMEOUT_MS. Not applied to BullMQ workers' blocking connections; 0 = none.",
    format: 'nat',
    default: 2000,
    env: 'REDIS_COMMAND_TIMEOUT_MS',
  },
  redisConnectTimeoutMs: {
    doc: 'Deadline of one TCP connect to Redis; ioredis then tries again.',
    format: 'nat',
    default: 3000,
    env: 'REDIS_CONNECT_TIMEOUT_MS',
  },
  redisSentinels: {
    doc: 'Redis Sentinels as comma-separated host:port; empty: no Sentinel (REDIS_URL names the server). With Sentinels, every client asks them for the primary of REDIS_SENTINEL_NAME and follows it after a failover; REDIS_URL then only gives the password, username, db and rediss:// (TLS), not the host.',
    format: 'host-ports',
    default: '',
    env: 'REDIS_SENTINELS',
  },
  redisSentinelName: {
    doc: 'Master group name the Sentinels monitor (the name of `sentinel monitor <name> …`).',
    format: String,
    default: 'mymaster',
    env: 'REDIS_SENTINEL_NAME',
  },
  redisSentinelPassword: {
    doc: 'Password of the Sentinels themselves (requirepass of sentinel.conf); empty: none.',
    format: String,
    default: '',
    env: 'REDIS_SENTINEL_PASSWORD',
    sensitive: true,
  },
  redisWaitReplicas: {
    doc: "Replicas that must acknowledge (Redis WAIT) a write Postmaster must not lose before it answers or acks: a scheduled send before its 202 (else 503, outcome unknown), idempotency keys, the sender's sent record; 0 = off (asynchronous replication: a failover may lose the last writes).",
    format: 'nat',
    default: 0,
    env: 'REDIS_WAIT_REPLICAS',
  },
  redisWaitTimeoutMs: {
    doc: 'How long one WAIT for REDIS_WAIT_REPLICAS acknowledgements may take (at least 1 ms: WAIT 0 would never end); keep it below REDIS_COMMAND_TIMEOUT_MS.',
    format: 'nat',
    default: 1000,
    env: 'REDIS_WAIT_TIMEOUT_MS',
  },
  ingressPort: {
    doc: 'Public HTTP port of the ingress: the send API, the webhook, /openapi.json and the bare /healthz, /readyz.',
    format: 'port',
    default: 8080,
    env: 'INGRESS_PORT',
  },
  ingressHost: {
    doc: 'Address the ingress listens on, its public port and its METRICS_PORT alike; 0.0.0.0: every interface.',
    format: String,
    default: '0.0.0.0',
    env: 'INGRESS_HOST',
  },
  ingressApiToken: {
    doc: 'Bearer token of the send API (/v1/messages); ingress only.',
    format: String,
    default: DEV_SECRET,
    env: 'INGRESS_API_TOKEN',
    sensitive: true,
  },
  ingressApiTokenPrevious: {
    doc: 'A second accepted bearer token, while clients move to a new INGRESS_API_TOKEN (rotation); empty: only INGRESS_API_TOKEN. Ingress only.',
    format: String,
    default: '',
    env: 'INGRESS_API_TOKEN_PREVIOUS',
    sensitive: true,
  },
  whatsappAppSecret: {
    doc: 'Meta app secret: HMAC key of X-Hub-Signature-256. Ingress only.',
    format: String,
    default: DEV_SECRET,
    env: 'WHATSAPP_APP_SECRET',
    sensitive: true,
  },
  whatsappVerifyToken: {
    doc: 'Token Meta echoes in the webhook verification (hub.verify_token). Ingress only.',
    format: String,
    default: DEV_SECRET,
    env: 'WHATSAPP_VERIFY_TOKEN',
    sensitive: true,
  },
  providerBaseUrl: {
    doc: 'WhatsApp Cloud API base URL (https://graph.facebook.com); empty: the bundled simulator.',
    format: 'optional-url',
    default: '',
    env: 'PROVIDER_BASE_URL',
  },
  whatsappAccessToken: { doc: 'Cloud API bearer token. Sender only.', format: String, default: DEV_SECRET, env: 'WHATSAPP_ACCESS_TOKEN', sensitive: true },
  whatsappPhoneNumberId: {
    doc: 'Business phone number id (WhatsApp Manager) the sender sends from when WHATSAPP_NUMBERS is empty: the Cloud API path /<version>/<id>/messages; digits only in production.',
    format: String,
    default: '100000000000001',
    env: 'WHATSAPP_PHONE_NUMBER_ID',
  },
  whatsappNumbers: {
    doc: 'The business numbers the fleet sends from, as a JSON array, the first being the default: [{"id": "<phone number id>", "alias": "sales", "tokenEnv": "WHATSAPP_ACCESS_TOKEN_SALES", "throughputPerSecond": 80, "display": "<display phone number>", "portfolio": "main", "messagingLimit": 1000}]; only id is required. No secret: tokenEnv names the variable of the sender\'s environment holding that number\'s token (default WHATSAPP_ACCESS_TOKEN). Empty: the one number of WHATSAPP_PHONE_NUMBER_ID (docs/SENDER.md "Several business numbers").',
    format: String,
    default: '',
    env: 'WHATSAPP_NUMBERS',
  },
  whatsappMessagingLimit: {
    doc: "Messaging limit of the business portfolio (Meta's tier): distinct users a business-initiated message (a template outside the user's window) may reach per rolling 24 hours, shared by the portfolio's numbers; unlimited, a number or a tier name (TIER_1K). Meta's phone_number_quality_update webhook updates it at run time.",
    format: String,
    default: 'unlimited',
    env: 'WHATSAPP_MESSAGING_LIMIT',
  },
  whatsappMessagingLimitAction: {
    doc: 'What a business-initiated send that would exceed the messaging limit does: wait (re-tiered as throttled until a conversation of the last 24 hours ages out, holding its user behind it) or fail (dead-lettered at once as permanent, code messaging-limit).',
    format: ['wait', 'fail'],
    default: 'wait',
    env: 'WHATSAPP_MESSAGING_LIMIT_ACTION',
  },
  graphApiVersion: { doc: 'Graph API version in the Cloud API path (/v21.0/…).', format: 'graph-version', default: 'v21.0', env: 'GRAPH_API_VERSION' },
  botHandlerUrl: {
    doc: 'HTTP endpoint of the bot handler for inbound messages; empty: built-in echo handler (development only: production needs an https URL).',
    format: 'optional-url',
    default: '',
    env: 'BOT_HANDLER_URL',
  },
  botHandlerTimeoutMs: {
    doc: 'Deadline of one bot handler call (connect, headers and body together); past it the call is a transient failure and retried.',
    format: 'nat',
    default: 5000,
    env: 'BOT_HANDLER_TIMEOUT_MS',
  },
  botHandlerMaxResponseBytes: {
    doc: 'Largest bot handler answer read; a larger 2xx body is a poison answer (handler-answer-too-large).',
    format: 'nat',
    default: 1024 * 1024,
    env: 'BOT_HANDLER_MAX_RESPONSE_BYTES',
  },
  topologyPrefix: {
    doc: 'Prefix of every exchange, queue and policy name (`<prefix>.send.00`); also part of the Redis keys. Fleets sharing a vhost need different prefixes.',
    format: 'topology-prefix',
    default: 'postmaster',
    env: 'TOPOLOGY_PREFIX',
  },
  topologyMode: {
    doc: 'assert: declare topology and policies at start; check: only verify (infra owns definitions).',
    format: ['assert', 'check'],
    default: 'assert',
    env: 'TOPOLOGY_MODE',
  },
  shards: {
    doc: 'Number of shard queues per stage; the publisher picks a user\'s shard by jump consistent hash (changing it moves users: a drained operation, docs/OPERATIONS.md "Resizing shards").',
    format: 'nat',
    default: 16,
    env: 'SHARDS',
  },
  retryTiers: {
    doc: 'Delays of the retry tiers, ascending (one queue `<prefix>.retry.<delay>` each): the n-th retry of a message waits in the n-th tier, after the last one it is dead-lettered. Changing them changes the topology.',
    format: 'retry-tiers',
    default: '1s,5s,30s,2m,10m',
    env: 'RETRY_TIERS',
  },
  deliveryLimit: {
    doc: 'Times a shard message may be handed to a worker that then crashes or loses its channel; the next delivery is dead-lettered by the worker as poison/delivery-limit (the x-delivery-limit policy, one more, is the net).',
    format: 'nat',
    default: 5,
    env: 'DELIVERY_LIMIT',
  },
  urgentQueueType: {
    doc: 'Queue type of the urgent lanes: classic (x-max-priority 0-9, not replicated) or quorum (RabbitMQ 4.x: replicated, two levels).',
    format: ['classic', 'quorum'],
    default: 'classic',
    env: 'URGENT_QUEUE_TYPE',
  },
  orderingMode: {
    doc: "strict: a user's later messages wait behind one in retry; relaxed: they overtake.",
    format: ['strict', 'relaxed'],
    default: 'strict',
    env: 'ORDERING_MODE',
  },
  dlqOrderingMode: {
    doc: "Strict ordering: release: a dead-lettered message stops holding its user (its replay arrives after the later messages); strict: the user's later messages wait until the dead letter is replayed (and goes first) or purged.",
    format: ['release', 'strict'],
    default: 'release',
    env: 'DLQ_ORDERING_MODE',
  },
  holdGraceMs: {
    doc: "Strict mode: a message a user waits for that is this much later than its retry tier said (its copy was lost: a purged or deleted retry queue) no longer holds the user; also the slack of a hold's TTL (longest tier + this).",
    format: 'nat',
    default: 30_000,
    env: 'HOLD_GRACE_MS',
  },
  shardPrefetch: {
    doc: 'Unacked messages per shard consumer (many users at once, one message per user at a time).',
    format: 'nat',
    default: 64,
    env: 'SHARD_PREFETCH',
  },
  workerLanes: {
    doc: 'Which lanes a dispatcher or sender replica consumes: all, urgent (only the urgent lane: a dedicated replica whose event loop no backlog shares) or ordered (only shards).',
    format: ['all', 'urgent', 'ordered'],
    default: 'all',
    env: 'WORKER_LANES',
  },
  urgentPrefetch: { doc: "Unacked messages of the urgent lane's consumer.", format: 'nat', default: 32, env: 'URGENT_PREFETCH' },
  urgentHoldMs: {
    doc: 'A replica consuming both lanes holds back new ordered work while an urgent message is in flight, for at most this long, then lets it run for as long before holding again (shared/stage/urgent-first.ts); 0 = never hold.',
    format: 'nat',
    default: 100,
    env: 'URGENT_HOLD_MS',
  },
  publishTimeoutMs: { doc: 'How long the ingress waits for a broker confirm before answering 503.', format: 'nat', default: 5000, env: 'PUBLISH_TIMEOUT_MS' },
  healthStuckAfterMs: {
    doc: 'Liveness (/healthz) fails once a readiness check (broker connection, publishing, consuming) has been failing this long, so the supervisor restarts a process stuck in that state.',
    format: 'nat',
    default: 60_000,
    env: 'HEALTH_STUCK_AFTER_MS',
  },
  eventLoopBlockedMs: {
    doc: 'Liveness (/healthz) fails while the event loop was last blocked for longer than this.',
    format: 'nat',
    default: 5000,
    env: 'EVENT_LOOP_BLOCKED_MS',
  },
  whatsappThroughputPerSecond: {
    doc: 'Sends per second per business number across the fleet; 0 = off.',
    format: 'nat',
    default: 80,
    env: 'WHATSAPP_THROUGHPUT_PER_SECOND',
  },
  whatsappPairIntervalMs: {
    doc: 'Per-recipient pair rate: one message per this interval; 0 = off.',
    format: 'nat',
    default: 6000,
    env: 'WHATSAPP_PAIR_INTERVAL_MS',
  },
  whatsappPairBurst: { doc: 'Per-recipient burst above the pair rate; 0 = off.', format: 'nat', default: 5, env: 'WHATSAPP_PAIR_BURST' },
  whatsappWindowCheck: {
    doc: "enforce: the sender checks the 24-hour customer-service window (from the inbound messages the dispatcher saw) before every free-form send, and sends a closed window's message as its fallbackTemplate or fails it at once (class window-closed) without a provider call; off: only the Cloud API's 131047 decides (same handling). Enforce only where every inbound message of the number reaches this fleet.",
    format: ['enforce', 'off'],
    default: 'off',
    env: 'WHATSAPP_WINDOW_CHECK',
  },
  providerTimeoutMs: {
    doc: 'Deadline of one Cloud API call (connect, headers and body together); past it the send is a transient failure and retried.',
    format: 'nat',
    default: 10000,
    env: 'PROVIDER_TIMEOUT_MS',
  },
  providerMaxResponseBytes: {
    doc: 'Largest Cloud API answer read; a larger body is a transient failure (response-too-large).',
    format: 'nat',
    default: 64 * 1024,
    env: 'PROVIDER_MAX_RESPONSE_BYTES',
  },
  sentIdTtlS: { doc: 'How long the sender remembers a sent envelope id (dedup of redeliveries).', format: 'nat', default: 7 * 24 * 3600, env: 'SENT_ID_TTL_S' },
  shutdownGraceMs: {
    doc: 'How long SIGTERM waits for in-flight work to finish and be acked before closing; what is left is requeued by the broker.',
    format: 'nat',
    default: 20000,
    env: 'SHUTDOWN_GRACE_MS',
  },
  leaseTtlMs: { doc: "Shard lease and membership heartbeat TTL; a crashed replica's shards move after it.", format: 'nat', default: 5000, env: 'LEASE_TTL_MS' },
  shardTakeSpacingMs: {
    doc: "Least time between two shard subscriptions of one replica (a replica starting, or taking over a gone one's shards, onto full shards takes them one by one instead of a full prefetch of each at once); 0 = all at once.",
    format: 'nat',
    default: 100,
    env: 'SHARD_TAKE_SPACING_MS',
  },
  replicaId: {
    doc: 'Name of this replica in shard membership, logs, connection names and consumer tags (the pod name on Kubernetes; unique per running replica); empty: HOSTNAME (else the host name), pid and a random suffix.',
    format: String,
    default: '',
    env: 'REPLICA_ID',
  },
  whatsappMaxTokenWaitMs: {
    doc: 'Longest a send waits in-process for a rate-limit token; a longer wait re-tiers the message as throttled (no attempt counted).',
    format: 'nat',
    default: 3000,
    env: 'WHATSAPP_MAX_TOKEN_WAIT_MS',
  },
  whatsappThrottleBackoffMs: {
    doc: 'Pause of the whole number after a provider throttle (130429/429) without Retry-After; a 131056 pauses the recipient for the larger of this and WHATSAPP_PAIR_INTERVAL_MS.',
    format: 'nat',
    default: 1000,
    env: 'WHATSAPP_THROTTLE_BACKOFF_MS',
  },
  whatsappRateCooldownMs: {
    doc: "After a provider throttle the number's rate is halved; it holds for this long, then regains a tenth of WHATSAPP_THROUGHPUT_PER_SECOND per cool-down.",
    format: 'nat',
    default: 10000,
    env: 'WHATSAPP_RATE_COOLDOWN_MS',
  },
  ingressMaxInFlight: {
    doc: 'Messages the ingress may have in flight to the broker at once; beyond it requests get 503 + Retry-After; 0 = no cap.',
    format: 'nat',
    default: 1000,
    env: 'INGRESS_MAX_IN_FLIGHT',
  },
  ingressRetryAfterS: { doc: "Retry-After (seconds) of the ingress's 503 answers.", format: 'nat', default: 5, env: 'INGRESS_RETRY_AFTER_S' },
  idempotencyTtlS: {
    doc: 'How long an idempotencyKey of POST /v1/messages maps to its first message id.',
    format: 'nat',
    default: 24 * 3600,
    env: 'IDEMPOTENCY_TTL_S',
  },
  webhookDedupTtlS: {
    doc: "How long a webhook message (wamid) or status (wamid + status) is remembered to drop Meta's retries.",
    format: 'nat',
    default: 24 * 3600,
    env: 'WEBHOOK_DEDUP_TTL_S',
  },
  statusTtlS: {
    doc: 'How long a message status record (and its wamid mapping) is kept after its last update.',
    format: 'nat',
    default: 7 * 24 * 3600,
    env: 'STATUS_TTL_S',
  },
  scheduleMaxAheadS: {
    doc: "How far in the future a send request's sendAt may be (seconds); later is a 400.",
    format: 'nat',
    default: 30 * 24 * 3600,
    env: 'SCHEDULE_MAX_AHEAD_S',
  },
  schedulerConcurrency: { doc: 'Due scheduled messages the dispatcher publishes at once.', format: 'nat', default: 16, env: 'SCHEDULER_CONCURRENCY' },
  replayRatePerSecond: {
    doc: "Dead letters a replay job republishes per second when the CLI gives no --rate (also the automatic policy's rate); 0 = unlimited.",
    format: 'nat',
    default: 50,
    env: 'REPLAY_RATE_PER_SECOND',
  },
  replayBacklogThreshold: {
    doc: 'A replay pauses while the live lanes (shard and urgent queues of every stage) hold more ready messages than this; 0 = never pause.',
    format: 'nat',
    default: 1000,
    env: 'REPLAY_BACKLOG_THRESHOLD',
  },
  replayPrefetch: { doc: 'Dead letters a replay or purge pass holds unacked at once (at least 1).', format: 'nat', default: 32, env: 'REPLAY_PREFETCH' },
  replayLockMs: {
    doc: 'Lock of a running replay job: a replayer that dies loses it after this long and another replica resumes the job.',
    format: 'nat',
    default: 30000,
    env: 'REPLAY_LOCK_MS',
  },
  dlqAutoReplayCooldownMs: {
    doc: 'Automatic replay of transient-class dead letters older than this; 0 = off.',
    format: 'nat',
    default: 0,
    env: 'DLQ_AUTO_REPLAY_COOLDOWN_MS',
  },
  dlqAutoReplayMax: {
    doc: 'The automatic replay leaves a dead letter for a human once it has been replayed this many times (x-postmaster-replays).',
    format: 'nat',
    default: 3,
    env: 'DLQ_AUTO_REPLAY_MAX',
  },
  dlqAutoReplayEveryMs: { doc: 'How often the automatic replay policy looks at the DLQ.', format: 'nat', default: 60000, env: 'DLQ_AUTO_REPLAY_EVERY_MS' },
  replayJobKey: {
    doc: 'HMAC key the replay CLI signs replay/purge jobs with and the dlq-replayer checks (only these two hold it); empty: unsigned jobs are accepted with a warning, which the replayer refuses in production.',
    format: String,
    default: '',
    env: 'REPLAY_JOB_KEY',
    sensitive: true,
  },
  botHandlerToken: {
    doc: 'Bearer token the dispatcher sends to BOT_HANDLER_URL (Authorization header); empty: none (production needs one). Dispatcher only.',
    format: String,
    default: '',
    env: 'BOT_HANDLER_TOKEN',
    sensitive: true,
  },
  senderAmbiguousWaitMs: {
    doc: 'A redelivered message whose earlier send may have reached the provider (crash, lost answer) waits this long for a status webhook proving it did before it is sent again; 0 = send again at once.',
    format: 'nat',
    default: 15000,
    env: 'SENDER_AMBIGUOUS_WAIT_MS',
  },
  logLevel: {
    doc: 'Least severe level logged (pino); silent: nothing.',
    format: ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'],
    default: 'info',
    env: 'LOG_LEVEL',
  },
  metricsPort: {
    doc: 'Port of /metrics, /healthz and /readyz (with the failing checks) of every service, the ingress included: never exposed publicly; 0 = ephemeral.',
    format: 'port',
    default: 9464,
    env: 'METRICS_PORT',
  },
  simulatorPort: {
    doc: 'Port npm start runs the bundled provider simulator on when PROVIDER_BASE_URL is empty.',
    format: 'port',
    default: 9090,
    env: 'SIMULATOR_PORT',
  },
};

export type ConfigSchema = typeof schema;
/** The schema itself, for the generated reference (scripts/gen-config-docs.ts → docs/CONFIG.md). */
export const CONFIG_SCHEMA: Readonly<ConfigSchema> = schema;
export type Config = { [K in keyof ConfigSchema]: ConfigSchema[K]['default'] extends number ? number : string };

const ENV_NAMES = Object.fromEntries(Object.entries(schema).map(([k, v]) => [k, v.env])) as EnvNames;

export class ConfigError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'ConfigError';
  }
}

/**
 * Loads and strictly validates the configuration. In production it refuses unsafe settings of
 * `role` (all of them in one error, a line each, naming the variable) unless POSTMASTER_ALLOW_INSECURE=1;
 * then it blanks the secrets `role` does not use.
 * @param env environment to read (defaults to process.env); tests pass their own.
 * @param overrides values by key, applied after the environment (tests run services on port 0 this way).
 * @param role the service that will run on it; `fleet` (every service in one process) keeps every secret.
 */
export function loadConfig(env: NodeJS.ProcessEnv = process.env, overrides: Partial<Config> = {}, role: ServiceRole = 'fleet'): Config {
  const c = convict(schema, { env, args: [] });
  try {
    c.load(overrides);
    c.validate({ allowed: 'strict' });
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  const cfg = c.getProperties() as unknown as Config;
  try {
    businessNumbers(cfg);
  } catch (err) {
    throw new ConfigError(`invalid configuration: ${(err as Error).message}`);
  }
  const refused = unsafeSettings(cfg, role);
  if (refused.length && cfg.allowInsecure !== '1') {
    throw new ConfigError(
      `NODE_ENV=production refuses ${refused.length} unsafe setting(s) (POSTMASTER_ALLOW_INSECURE=1 overrides, for local clusters only):\n${refused.join('\n')}`,
    );
  }
  return withOwnSecrets(cfg, role);
}

/** The production refusals of `cfg` for `role` (empty outside production); see shared/platform/production-policy.ts. */
export function unsafeSettings(cfg: Config, role: ServiceRole): string[] {
  return cfg.env === 'production' ? productionRefusals(cfg, role, ENV_NAMES) : [];
}

/** The configuration with secrets and URL passwords masked, for the start-up log line. */
export function describeConfig(cfg: Config): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(cfg)) {
    const s = (schema as Record<string, { sensitive?: boolean }>)[k];
    out[k] = s?.sensitive ? maskUrl(String(v)) : v;
  }
  return out;
}

/** amqp://user:secret@host → amqp://user:***@host; a non-URL secret → "[Sensitive]". */
export function maskUrl(value: string): string {
  if (value === '') return '';
  const parts = value.split(',').map((part) => {
    if (!/^[a-z][a-z0-9+.-]*:\/\//i.test(part.trim())) return '[Sensitive]';
    try {
      const u = new URL(part.trim());
      if (u.password) u.password = '***';
      return u.toString().replace(/\/$/, '');
    } catch {
      return '[Sensitive]';
    }
  });
  return parts.join(',');
}

/** The environment that reproduces a configuration (to start a service as a child process). */
export function envOf(cfg: Partial<Config>): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of Object.entries(cfg)) {
    const s = (schema as Record<string, { env?: string }>)[k];
    if (s?.env && v !== undefined) out[s.env] = String(v);
  }
  return out;
}
