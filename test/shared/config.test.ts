import { expect } from 'chai';
import { ConfigError, describeConfig, loadConfig } from '../../shared/platform/config.js';

describe('config', () => {
  it('reads the documented configuration names from the environment', () => {
    const cfg = loadConfig({ AMQP_URL: 'amqp://a:b@h1:5672,amqp://a:b@h2:5672', SHARDS: '8', RETRY_TIERS: '1s,1m', INGRESS_PORT: '9000' });
    expect(cfg.amqpUrl).to.equal('amqp://a:b@h1:5672,amqp://a:b@h2:5672');
    expect(cfg.shards).to.equal(8);
    expect(cfg.retryTiers).to.equal('1s,1m');
    expect(cfg.ingressPort).to.equal(9000);
    expect(cfg.whatsappThroughputPerSecond).to.equal(80);
    expect(cfg.whatsappPairIntervalMs).to.equal(6000);
    expect(cfg.whatsappPairBurst).to.equal(5);
  });

  it('rejects a value of the wrong format, naming the key', () => {
    expect(() => loadConfig({ SHARDS: 'many' })).to.throw(ConfigError, /shards/);
    expect(() => loadConfig({ AMQP_URL: 'http://x' })).to.throw(ConfigError, /amqpUrl.*amqp:\/\//);
    expect(() => loadConfig({ RETRY_TIERS: '5s,1s' })).to.throw(ConfigError, /ascending/);
    expect(() => loadConfig({ LOG_LEVEL: 'loud' })).to.throw(ConfigError, /logLevel/);
    expect(() => loadConfig({ ORDERING_MODE: 'chaotic' })).to.throw(ConfigError, /orderingMode/);
  });

  it('rejects unknown keys (strict validation)', () => {
    expect(() => loadConfig({}, { shardz: 3 } as never)).to.throw(ConfigError, /shardz/);
  });

  it('refuses default secrets in production (test/security/production-config.test.ts has every refusal)', () => {
    expect(() => loadConfig({ NODE_ENV: 'production' })).to.throw(ConfigError, /^INGRESS_API_TOKEN .*\n(.*\n)*WHATSAPP_APP_SECRET /m);
    const strong = (c: string) => c.repeat(40);
    const ok = loadConfig({
      NODE_ENV: 'production',
      INGRESS_API_TOKEN: strong('t'),
      WHATSAPP_APP_SECRET: strong('s'),
      WHATSAPP_VERIFY_TOKEN: strong('v'),
      WHATSAPP_ACCESS_TOKEN: strong('a'),
      BOT_HANDLER_URL: 'https://bot.example',
      BOT_HANDLER_TOKEN: strong('b'),
      PROVIDER_BASE_URL: 'https://graph.facebook.com',
    });
    expect(ok.env).to.equal('production');
  });

  it('masks secrets and URL passwords when described for logs', () => {
    const cfg = loadConfig({ AMQP_URL: 'amqp://user:hunter2@h1:5672', INGRESS_API_TOKEN: 'tok:en-secret' });
    const text = JSON.stringify(describeConfig(cfg));
    expect(text).not.to.contain('hunter2');
    expect(text).not.to.contain('tok:en-secret');
    expect(text).to.contain('amqp://user:***@h1:5672');
  });
});
