/**
 * The sender service: consumes the send lanes and calls the WhatsApp Cloud API within the
 * number's throughput and the recipients' pair rate (limiter.ts), shared by every replica.
 */
import type { Config } from '../../shared/config.js';
import type { Logger } from '../../shared/logger.js';
import { serveMetrics } from '../../shared/metrics.js';
import { createRuntime, type Runtime } from '../../shared/runtime.js';
import { runSteps } from '../../shared/shutdown.js';
import { StageWorker } from '../../shared/stage/worker.js';
import { createAssigner } from '../../shared/stage/membership.js';
import { createSendHandler } from './handler.js';
import { SendLedger } from './send-ledger.js';
import { limiterOptions, SendLimiter } from './limiter.js';
import { ProviderClient } from './provider-client.js';

export interface Sender {
  rt: Runtime;
  worker: StageWorker;
  limiter: SendLimiter;
  metricsPort: number;
  close(): Promise<void>;
}

export async function startSender(cfg: Config, opts: { logger?: Logger } = {}): Promise<Sender> {
  if (!cfg.providerBaseUrl) throw new Error('PROVIDER_BASE_URL is not set: point it at the Cloud API or at a running simulator');
  const rt = await createRuntime(cfg, { service: 'sender', logger: opts.logger });
  const provider = new ProviderClient({
    baseUrl: cfg.providerBaseUrl,
    graphApiVersion: cfg.graphApiVersion,
    phoneNumberId: cfg.whatsappPhoneNumberId,
    accessToken: cfg.whatsappAccessToken,
    timeoutMs: cfg.providerTimeoutMs,
    maxResponseBytes: cfg.providerMaxResponseBytes,
  });
  const limiter = new SendLimiter(rt, limiterOptions(cfg));
  await limiter.start();
  const worker = new StageWorker(rt, 'send', createSendHandler({ rt, provider, limiter, ledger: new SendLedger(rt) }), { assigner: createAssigner(rt, 'send') });
  await worker.start();
  const metrics = await serveMetrics(rt.metrics, cfg.metricsPort, rt.health.add('service', () => (worker.ready() ? null : 'not started, or shutting down')).add('consume', () => worker.consumeProblem()));
  let closing: Promise<void> | null = null;
  return {
    rt,
    worker,
    limiter,
    metricsPort: metrics.port,
    close: () =>
      (closing ??= runSteps(rt.log, [
        // Waiters finish within WHATSAPP_MAX_TOKEN_WAIT_MS (sent or re-tiered) while the worker drains.
        ['stop workers', () => worker.close()],
        ['stop rate limiter', () => limiter.close()],
        ['close provider client', () => provider.close()],
        ['stop metrics', () => metrics.close()],
        ['close broker and redis', () => rt.close()],
      ])),
  };
}
