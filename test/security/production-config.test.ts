import { expect } from 'chai';
import { ConfigError, loadConfig } from '../../shared/platform/config.js';
import type { ServiceRole } from '../../shared/platform/production-policy.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { isolatedEnv, startMain, strong, untilReady, type MainProcess } from './main-process.js';

const PROD = { NODE_ENV: 'production' };
const INGRESS_OK = { INGRESS_API_TOKEN: strong('api'), WHATSAPP_APP_SECRET: strong('app'), WHATSAPP_VERIFY_TOKEN: strong('verify') };
const DISPATCHER_OK = { BOT_HANDLER_URL: 'https://bot.example.com/hook', BOT_HANDLER_TOKEN: strong('bot') };
const SENDER_OK = { WHATSAPP_ACCESS_TOKEN: strong('access'), PROVIDER_BASE_URL: 'https://graph.facebook.com', WHATSAPP_PHONE_NUMBER_ID: '106540352242922' };
const OK: Record<string, Record<string, string>> = { ingress: INGRESS_OK, dispatcher: DISPATCHER_OK, sender: SENDER_OK };

/** The refusal lines of loadConfig in production (after its one header line); [] when it loads. */
function refusals(role: ServiceRole, env: Record<string, string>): string[] {
  try {
    loadConfig({ ...PROD, ...env }, {}, role);
    return [];
  } catch (err) {
    expect(err).to.be.instanceOf(ConfigError);
    const [header, ...lines] = (err as Error).message.split('\n');
    expect(header).to.match(/NODE_ENV=production refuses \d+ unsafe setting.*POSTMASTER_ALLOW_INSECURE=1/);
    return lines;
  }
}

/** The variables the lines name (each line starts with one). */
const named = (lines: string[]) => lines.map((l) => l.split(' ')[0]);

describe('production refuses unsafe settings', () => {
  const cases: Array<[role: 'ingress' | 'dispatcher' | 'sender', name: string, value: string, why: RegExp]> = [
    ['ingress', 'WHATSAPP_APP_SECRET', '', /is empty/],
    ['ingress', 'WHATSAPP_APP_SECRET', 'a-short-app-secret', /too short \(18 characters\).*at least 32/],
    ['ingress', 'WHATSAPP_APP_SECRET', 'REPLACE_WITH_THE_APP_SECRET_OF_YOUR_META_APP', /placeholder/],
    ['ingress', 'INGRESS_API_TOKEN', 'dev-only-secret', /development default/],
    ['ingress', 'INGRESS_API_TOKEN', 'changeme-changeme-changeme-changeme', /placeholder/],
    ['ingress', 'INGRESS_API_TOKEN_PREVIOUS', 'old-token', /too short/],
    ['ingress', 'WHATSAPP_VERIFY_TOKEN', 'fifteen-chars-x', /too short \(15 characters\).*at least 16/],
    ['dispatcher', 'BOT_HANDLER_URL', '', /not set.*echo handler/],
    ['dispatcher', 'BOT_HANDLER_URL', 'http://bot.internal/hook', /not https/],
    ['dispatcher', 'BOT_HANDLER_TOKEN', '', /is empty/],
    ['sender', 'WHATSAPP_ACCESS_TOKEN', 'EAAG-short-token', /too short/],
    ['sender', 'WHATSAPP_PHONE_NUMBER_ID', 'REPLACE_WITH_PHONE_NUMBER_ID', /not digits only/],
    ['sender', 'PROVIDER_BASE_URL', 'http://graph.facebook.com', /not https/],
    ['sender', 'PROVIDER_BASE_URL', '', /not set/],
  ];
  for (const [role, name, value, why] of cases) {
    it(`refuses ${name}=${JSON.stringify(value)} for the ${role} in one line naming it`, () => {
      const lines = refusals(role, { ...OK[role], [name]: value });
      expect(lines).to.have.length(1);
      expect(lines[0].startsWith(`${name} `), lines[0]).to.equal(true);
      expect(lines[0]).to.match(why);
      if (/TOKEN|SECRET/.test(name) && value !== '') expect(lines[0], 'the secret itself is not printed').not.to.contain(value);
    });
  }

  it('accepts strong settings, a 16-character verify token and no previous API token', () => {
    expect(refusals('ingress', { ...INGRESS_OK, WHATSAPP_VERIFY_TOKEN: 'sixteen-chars-xy' })).to.deep.equal([]);
    expect(refusals('dispatcher', DISPATCHER_OK)).to.deep.equal([]);
    expect(refusals('sender', SENDER_OK)).to.deep.equal([]);
    expect(refusals('dlq-replayer', {})).to.deep.equal([]);
  });

  it('lists every refusal at once, a line each', () => {
    expect(named(refusals('ingress', {}))).to.have.members(['INGRESS_API_TOKEN', 'WHATSAPP_APP_SECRET', 'WHATSAPP_VERIFY_TOKEN']);
    expect(named(refusals('fleet', { WHATSAPP_PHONE_NUMBER_ID: 'x' }))).to.have.members([
      'INGRESS_API_TOKEN',
      'WHATSAPP_APP_SECRET',
      'WHATSAPP_VERIFY_TOKEN',
      'WHATSAPP_ACCESS_TOKEN',
      'BOT_HANDLER_URL',
      'BOT_HANDLER_TOKEN',
      'PROVIDER_BASE_URL',
      'WHATSAPP_PHONE_NUMBER_ID',
    ]);
  });

  it('refuses nothing outside production', () => {
    expect(() => loadConfig({ NODE_ENV: 'development' }, {}, 'fleet')).not.to.throw();
  });

  it('accepts only 0 or 1 as POSTMASTER_ALLOW_INSECURE', () => {
    expect(loadConfig({ ...PROD, POSTMASTER_ALLOW_INSECURE: '1' }, {}, 'fleet').env).to.equal('production');
    expect(() => loadConfig({ POSTMASTER_ALLOW_INSECURE: 'yes' })).to.throw(ConfigError, /allowInsecure/);
  });

  it("exits the real dispatcher non-zero, printing each refusal on its own line and nothing else's", async () => {
    const p = startMain('dispatcher', { ...PROD, BOT_HANDLER_URL: 'http://bot.internal/hook', BOT_HANDLER_TOKEN: 'short' });
    expect(await p.exited).to.not.equal(0);
    const lines = p.output().trim().split('\n');
    expect(lines[0]).to.match(/^postmaster: NODE_ENV=production refuses 2 unsafe setting/);
    expect(named(lines.slice(1))).to.deep.equal(['BOT_HANDLER_TOKEN', 'BOT_HANDLER_URL']);
  });
});

describe('each service holds only its own secrets', () => {
  const ALL = { ...PROD, ...INGRESS_OK, INGRESS_API_TOKEN_PREVIOUS: strong('previous'), ...DISPATCHER_OK, ...SENDER_OK, REPLAY_JOB_KEY: strong('replay') };
  const secrets = (role: ServiceRole) => {
    const c = loadConfig(ALL, {}, role);
    const held = {
      ingressApiToken: c.ingressApiToken,
      ingressApiTokenPrevious: c.ingressApiTokenPrevious,
      whatsappAppSecret: c.whatsappAppSecret,
      whatsappVerifyToken: c.whatsappVerifyToken,
      whatsappAccessToken: c.whatsappAccessToken,
      botHandlerToken: c.botHandlerToken,
      replayJobKey: c.replayJobKey,
    };
    return Object.entries(held)
      .filter(([, v]) => v !== '')
      .map(([k]) => k);
  };

  it("blanks the secrets of other services in a service's config", () => {
    expect(secrets('ingress')).to.have.members(['ingressApiToken', 'ingressApiTokenPrevious', 'whatsappAppSecret', 'whatsappVerifyToken']);
    expect(secrets('dispatcher')).to.deep.equal(['botHandlerToken']);
    expect(secrets('sender')).to.deep.equal(['whatsappAccessToken']);
    expect(secrets('dlq-replayer')).to.deep.equal(['replayJobKey']);
    expect(secrets('cli')).to.deep.equal(['replayJobKey']);
    expect(secrets('fleet')).to.have.length(7);
  });

  describe('real processes in production', function () {
    this.timeout(120_000);
    let iso: Isolation;
    let env: Record<string, string>;
    const running: MainProcess[] = [];
    const start = (service: 'ingress' | 'sender', extra: Record<string, string>) => {
      const p = startMain(service, { ...env, ...PROD, ...extra });
      running.push(p);
      return p;
    };

    before(async () => {
      iso = await isolate('security-secrets');
    });
    beforeEach(async () => {
      env = await isolatedEnv(iso);
    });
    afterEach(async () => {
      await Promise.all(running.splice(0).map((p) => p.stop()));
    });
    after(async () => {
      await iso.cleanup();
    });

    it('starts a sender that has neither the app secret, the verify token nor the API token', async () => {
      const p = start('sender', SENDER_OK);
      await untilReady(p);
      expect(p.output()).not.to.contain('POSTMASTER_ALLOW_INSECURE');
    });

    it('starts an ingress without the Cloud API and bot tokens, and it accepts a send', async () => {
      const p = start('ingress', INGRESS_OK);
      await untilReady(p);
      const res = await fetch(`http://127.0.0.1:${env.INGRESS_PORT}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${INGRESS_OK.INGRESS_API_TOKEN}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: '15550001111', type: 'text', text: { body: 'hi' } }),
      });
      expect(res.status, await res.text()).to.equal(202);
    });

    it('starts with POSTMASTER_ALLOW_INSECURE=1 despite weak secrets, warning once per waived refusal', async () => {
      const p = start('ingress', { POSTMASTER_ALLOW_INSECURE: '1', INGRESS_API_TOKEN: 'weak' });
      await untilReady(p);
      const warnings = p
        .output()
        .split('\n')
        .filter((l) => l.includes('"insecure":true'))
        .map((l) => JSON.parse(l) as { level: number; msg: string });
      expect(
        warnings.every((w) => w.level === 40),
        'at warn level',
      ).to.equal(true);
      const waived = warnings.map((w) => w.msg).filter((m) => m.startsWith('POSTMASTER_ALLOW_INSECURE=1 let through: '));
      expect(named(waived.map((m) => m.slice('POSTMASTER_ALLOW_INSECURE=1 let through: '.length)))).to.have.members([
        'INGRESS_API_TOKEN',
        'WHATSAPP_APP_SECRET',
        'WHATSAPP_VERIFY_TOKEN',
      ]);
    });
  });
});
