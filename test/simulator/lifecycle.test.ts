import { expect } from 'chai';
import { loadConfig } from '../../services/simulator/config.js';
import { startSimulator } from '../../services/simulator/server.js';
import { send, textMessage } from './client.js';

describe('simulator: lifecycle and configuration', () => {
  it('close() is idempotent: the same promise every time, and the port stops answering', async () => {
    const sim = await startSimulator();
    expect(sim.url).to.equal(`http://127.0.0.1:${sim.port}`);
    expect((await send(sim.url, textMessage('1555'))).status).to.equal(200);
    const first = sim.close();
    const second = sim.close();
    expect(second).to.equal(first);
    await first;
    const err = await fetch(`${sim.url}/healthz`).then(
      () => null,
      (e: Error & { cause?: { code?: string } }) => e,
    );
    expect(err?.cause?.code).to.equal('ECONNREFUSED');
  });

  it('closes at once even while answers wait out a long latency', async () => {
    const sim = await startSimulator({ faults: { latencyMs: 60_000 } });
    const pending = send(sim.url, textMessage('1555')).then(
      () => 'answered',
      () => 'reset',
    );
    // The send is in the ledger as soon as the simulator has decided on it.
    const deadline = Date.now() + 5000;
    while (sim.ledger().length === 0 && Date.now() < deadline) await new Promise((r) => setImmediate(r));
    const started = performance.now();
    await sim.close();
    expect(performance.now() - started).to.be.below(1000);
    expect(await pending).to.equal('reset');
  });

  it('refuses to start on a port already in use', async () => {
    const sim = await startSimulator();
    try {
      const err = await startSimulator({ port: sim.port }).then(
        (s) => (s.close(), null),
        (e: NodeJS.ErrnoException) => e,
      );
      expect(err?.code).to.equal('EADDRINUSE');
    } finally {
      await sim.close();
    }
  });

  describe('loadConfig (main.ts)', () => {
    it('maps the environment to simulator options', () => {
      const { options, logLevel } = loadConfig({
        SIMULATOR_PORT: '9191',
        SIMULATOR_HOST: '0.0.0.0',
        WHATSAPP_PHONE_NUMBER_ID: '123',
        WHATSAPP_ACCESS_TOKEN: 'secret',
        SIMULATOR_LATENCY_MS: '25',
        SIMULATOR_KEEP_BODIES: '0',
        SIMULATOR_PAIR_COUNT: '5',
        SIMULATOR_SEED: '42',
        SIMULATOR_WEBHOOK_URL: 'http://127.0.0.1:8080/webhooks/whatsapp',
        WHATSAPP_APP_SECRET: 'app',
        LOG_LEVEL: 'warn',
      });
      expect(options).to.deep.include({ port: 9191, host: '0.0.0.0', phoneNumberId: '123', accessToken: 'secret', keepBodies: false, seed: 42 });
      expect(options.faults).to.deep.include({ latencyMs: 25, pairPerWindow: { count: 5, windowMs: 6000 } });
      expect(options.webhook).to.deep.equal({ url: 'http://127.0.0.1:8080/webhooks/whatsapp', appSecret: 'app', statuses: ['sent', 'delivered'] });
      expect(logLevel).to.equal('warn');
    });

    it('defaults to port 9090 on 127.0.0.1, no auth, bodies kept', () => {
      const { options } = loadConfig({});
      expect(options).to.deep.include({ port: 9090, host: '127.0.0.1', phoneNumberId: undefined, accessToken: undefined, keepBodies: true });
      expect(options.webhook).to.equal(undefined);
    });

    it('names the bad key when the environment is invalid', () => {
      expect(() => loadConfig({ SIMULATOR_LATENCY_MS: 'slow' })).to.throw(/latencyMs/);
      expect(() => loadConfig({ SIMULATOR_KEEP_BODIES: 'maybe' })).to.throw(/keepBodies/);
      expect(() => loadConfig({ SIMULATOR_WEBHOOK_URL: 'http://x' })).to.throw(/WHATSAPP_APP_SECRET/);
    });
  });
});
