/**
 * The sender service: consumes the send lanes and calls the WhatsApp Cloud API within the
 * number's throughput and the recipients' pair rate (limiter.ts), shared by every replica.
 */
import type { Config } from '../../shared/platform/config.js';
import type { Logger } from '../../shared/platform/logger.js';
import { serveMetrics } from '../../shared/platform/metrics.js';
import { createRuntime, type Runtime } from '../../shared/amqp/runtime.js';
import { SenderMetrics } from './metrics.js';
import { runSteps } from '../../shared/platform/shutdown.js';
import { StageWorker } from '../../shared/stage/worker.js';
import { createAssigner } from '../../shared/stage/membership.js';
import { createSendHandler } from './handler.js';
import { SendLedger } from './send-ledger.js';
import { ConfigError } from '../../shared/platform/config.js';
import { businessNumbers, numberTokens } from '../../shared/platform/numbers.js';
import { DEV_SECRET } from '../../shared/platform/production-policy.js';
import { providerNumbers, SenderNumbers } from './numbers.js';
import { ProviderClient } from './provider-client.js';

export interface Sender {
  rt: Runtime<SenderMetrics>;
  worker: StageWorker;
  /** The business numbers' rate limiters and messaging limits. */
  numbers: SenderNumbers;
  metricsPort: number;
  close(): Promise<void>;
}

/**
 * Each number's access token: its `tokenEnv` from the environment, else WHATSAPP_ACCESS_TOKEN.
 * In production each must look like a real token (as loadConfig checks WHATSAPP_ACCESS_TOKEN).
 */
export function senderTokens(cfg: Config, env: NodeJS.ProcessEnv): Map<string, string> {
  const numbers = businessNumbers(cfg);
  const tokens = numberTokens(numbers, env, cfg.whatsappAccessToken);
  if (cfg.env === 'production' && cfg.allowInsecure !== '1') {
    const weak = numbers.all.filter((n) => n.tokenEnv && (tokens.get(n.id)!.length < 32 || tokens.get(n.id) === DEV_SECRET)).map((n) => n.tokenEnv);
    if (weak.length)
      throw new ConfigError(`NODE_ENV=production refuses the access token(s) in ${weak.join(', ')}: shorter than 32 characters, or the development default`);
  }
  return tokens;
}

export async function startSender(cfg: Config, opts: { logger?: Logger; env?: NodeJS.ProcessEnv } = {}): Promise<Sender> {
  if (!cfg.providerBaseUrl) throw new Error('PROVIDER_BASE_URL is not set: point it at the Cloud API or at a running simulator');
  const tokens = senderTokens(cfg, opts.env ?? process.env);
  const rt = await createRuntime(cfg, { service: 'sender', metrics: SenderMetrics, logger: opts.logger });
  const provider = new ProviderClient({
    baseUrl: cfg.providerBaseUrl,
    graphApiVersion: cfg.graphApiVersion,
    ...providerNumbers(cfg, tokens),
    timeoutMs: cfg.providerTimeoutMs,
    maxResponseBytes: cfg.providerMaxResponseBytes,
  });
  const numbers = new SenderNumbers(rt);
  await numbers.start();
  const worker = new StageWorker(rt, 'send', createSendHandler({ rt, provider, numbers, ledger: new SendLedger(rt) }), {
    assigner: createAssigner(rt, 'send'),
  });
  await worker.start();
  const metrics = await serveMetrics(
    rt.metrics,
    cfg.metricsPort,
    rt.health.add('service', () => (worker.ready() ? null : 'not started, or shutting down')).add('consume', () => worker.consumeProblem()),
  );
  let closing: Promise<void> | null = null;
  return {
    rt,
    worker,
    numbers,
    metricsPort: metrics.port,
    close: () =>
      (closing ??= runSteps(rt.log, [
        // Waiters finish within WHATSAPP_MAX_TOKEN_WAIT_MS (sent or re-tiered) while the worker drains.
        ['stop workers', () => worker.close()],
        ['stop rate limiters', () => numbers.close()],
        ['close provider client', () => provider.close()],
        ['stop metrics', () => metrics.close()],
        ['close broker and redis', () => rt.close()],
      ])),
  };
}
