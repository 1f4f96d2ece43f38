import { expect } from 'chai';
import fc from 'fast-check';
import { businessNumbers } from '../../shared/platform/numbers.js';
import { limitKey, MessagingLimits } from '../../shared/domain/messaging-limit.js';
import { keyspace } from '../../shared/platform/redis.js';
import { loadConfig, unsafeSettings } from '../../shared/platform/config.js';
import { createLogger } from '../../shared/platform/logger.js';
import { inboundPayload } from '../../services/simulator/windows.js';
import { startFleet, type Fleet } from '../support/fleet.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { useFleet } from '../support/use-fleet.js';
import { waitFor } from '../support/wait.js';
import { maxInWindow } from './traffic.js';
import { runCli } from '../dlq/helpers.js';
import { postWebhook } from '../webhooks/meta.js';

const MAIN = '100000000000001';
const SUPPORT = '100000000000002';
const SUPPORT_TOKEN_ENV = `PMTEST_SUPPORT_TOKEN_${process.pid}`;
const SUPPORT_TOKEN = 'support-number-token-0123456789abcdef';
const TEMPLATE = { name: 'order_update', language: { code: 'en_US' } };

const numbersJson = (main: Record<string, unknown>, support: Record<string, unknown>) =>
  JSON.stringify([
    { id: MAIN, alias: 'main', display: '15550000001', ...main },
    { id: SUPPORT, alias: 'support', tokenEnv: SUPPORT_TOKEN_ENV, display: '15550000002', ...support },
  ]);

/** Meta's phone_number_quality_update for the display number `display`; `value` replaces fields of the change's value. */
const qualityUpdate = (display: string, limit: unknown, value: Record<string, unknown> = {}) => ({
  object: 'whatsapp_business_account',
  entry: [
    {
      id: '102290129340398',
      time: Math.floor(Date.now() / 1000),
      changes: [
        {
          field: 'phone_number_quality_update',
          value: {
            display_phone_number: display,
            event: 'UPGRADE',
            old_limit: 'TIER_250',
            current_limit: limit,
            max_daily_conversations_per_business: limit,
            ...value,
          },
        },
      ],
    },
  ],
});

/** The message's status record once it is sent or dead-lettered. */
const settled = (fleet: Fleet, id: string) =>
  waitFor(
    async () => {
      const rec = (await fleet.call('GET', `/v1/messages/${id}`)).body;
      return ['sent', 'dead-lettered'].includes(rec?.status) ? rec : null;
    },
    { what: `message ${id} settled` },
  );

/** A template (business-initiated to a user who never wrote) from `from`, accepted; its id. */
const template = async (fleet: Fleet, to: string, from = 'main') => {
  const res = await fleet.send({ to, from, type: 'template', template: TEMPLATE });
  expect(res.status, JSON.stringify(res.body)).to.equal(202);
  return res.body.id as string;
};

describe('config: several business numbers (WHATSAPP_NUMBERS)', () => {
  const load = (env: Record<string, string>) => loadConfig({ ...env });

  it('defaults to the one number of WHATSAPP_PHONE_NUMBER_ID', () => {
    const n = businessNumbers(load({ WHATSAPP_PHONE_NUMBER_ID: '123456' }));
    expect(n.all.map((x) => x.id)).to.deep.equal(['123456']);
    expect(n.default.throughputPerSecond).to.equal(80);
  });

  it('resolves ids and aliases, and takes the first as the default', () => {
    const n = businessNumbers(load({ WHATSAPP_NUMBERS: numbersJson({ throughputPerSecond: 20 }, {}) }));
    expect(n.default.id).to.equal(MAIN);
    expect(n.resolve('support')?.id).to.equal(SUPPORT);
    expect(n.resolve(SUPPORT)?.alias).to.equal('support');
    expect(n.resolve('nope')).to.equal(undefined);
    expect(n.all.map((x) => x.throughputPerSecond)).to.deep.equal([20, 80]);
  });

  it('refuses a bad list, naming the entry and field', () => {
    expect(() => load({ WHATSAPP_NUMBERS: '[{"id": "12a"}]' })).to.throw(/WHATSAPP_NUMBERS\[0\]\.id: must be the phone number id/);
    expect(() => load({ WHATSAPP_NUMBERS: '{"id": "1"}' })).to.throw(/WHATSAPP_NUMBERS: .*array/i);
    expect(() => load({ WHATSAPP_NUMBERS: '[{"id": "1", "alias": "a"}, {"id": "2", "alias": "a"}]' })).to.throw(/"a" names two numbers/);
    expect(() => load({ WHATSAPP_NUMBERS: '[{"id": "1", "token": "secret"}]' })).to.throw(/WHATSAPP_NUMBERS\[0\]/);
    expect(() => load({ WHATSAPP_MESSAGING_LIMIT: 'lots' })).to.throw(/WHATSAPP_MESSAGING_LIMIT/);
    // toUpperCase would turn a dotless ı into I, and an unsafe integer would be stored rounded.
    for (const bad of ['unlımıted', 'tıer_1k', '99999999999999999999', 'TIER_-5', '']) {
      expect(() => load({ WHATSAPP_MESSAGING_LIMIT: bad }), bad).to.throw(/WHATSAPP_MESSAGING_LIMIT/);
    }
    const n = businessNumbers(load({ WHATSAPP_MESSAGING_LIMIT: ' tier_1k ' }));
    expect(n.messagingLimit(n.default.portfolio)).to.equal(1000);
  });

  it('in production, checks the ids of the list instead of WHATSAPP_PHONE_NUMBER_ID', () => {
    const prod = (env: Record<string, string>) =>
      unsafeSettings(
        load({ NODE_ENV: 'production', POSTMASTER_ALLOW_INSECURE: '1', WHATSAPP_PHONE_NUMBER_ID: 'REPLACE_WITH_PHONE_NUMBER_ID', ...env }),
        'sender',
      );
    expect(prod({}).join('\n')).to.match(/WHATSAPP_PHONE_NUMBER_ID is not digits only/);
    expect(prod({ WHATSAPP_NUMBERS: '[{"id": "106540352242922"}]' }).join('\n')).to.not.match(/WHATSAPP_PHONE_NUMBER_ID/);
  });

  it('reads tier names and portfolio limits', () => {
    const n = businessNumbers(
      load({ WHATSAPP_MESSAGING_LIMIT: 'TIER_1K', WHATSAPP_NUMBERS: '[{"id": "1"}, {"id": "2", "portfolio": "b", "messagingLimit": 250}]' }),
    );
    expect(n.messagingLimit('default')).to.equal(1000);
    expect(n.messagingLimit('b')).to.equal(250);
  });
});

/**
 * Several business numbers through the whole pipeline: each number paced to its own throughput
 * with its own token, replies leaving from the receiving number, `from` by alias, and per-(number,
 * user) order. The simulator holds each number to the same throughput as Meta would (130429).
 */
describe('sender: several business numbers', function () {
  this.timeout(120_000);
  let iso: Isolation;
  let fleet: Fleet;
  const RATE = { main: 10, support: 25 };

  before(async () => {
    process.env[SUPPORT_TOKEN_ENV] = SUPPORT_TOKEN;
    iso = await isolate('sender-numbers');
    fleet = await startFleet(iso, {
      senders: 2,
      overrides: {
        whatsappNumbers: numbersJson({ throughputPerSecond: RATE.main }, { throughputPerSecond: RATE.support }),
        whatsappAccessToken: 'main-number-token-0123456789abcdef',
      },
      simulator: {
        accessToken: 'main-number-token-0123456789abcdef',
        numbers: [
          { id: MAIN, throughputPerSecond: Math.ceil(RATE.main * 1.1) },
          { id: SUPPORT, throughputPerSecond: Math.ceil(RATE.support * 1.1), accessToken: SUPPORT_TOKEN },
        ],
      },
    });
  });
  after(async () => {
    await fleet?.close();
    await iso?.cleanup();
    delete process.env[SUPPORT_TOKEN_ENV];
  });

  it('holds two busy numbers each to its own throughput, in order per (number, user), each with its own token', async () => {
    const users = ['15557000001', '15557000002', '15557000003'];
    const PER = { main: 8, support: 20 };
    const posts: Array<Promise<unknown>> = [];
    for (const from of ['main', 'support'] as const) {
      for (const to of users) {
        // One user's messages are posted one after another (the API's order is the order of 202s).
        posts.push(
          (async () => {
            for (let i = 0; i < PER[from]; i++) {
              const res = await fleet.send({ to, from, text: { body: `${from}-${i}` } });
              expect(res.status, JSON.stringify(res.body)).to.equal(202);
            }
          })(),
        );
      }
    }
    await Promise.all(posts);
    const total = users.length * (PER.main + PER.support);
    await waitFor(() => fleet.sim.accepted().filter((e) => users.includes(e.to)).length >= total || null, {
      timeoutMs: 60_000,
      what: `${total} sends accepted`,
    });
    const calls = fleet.sim.ledger().filter((e) => users.includes(e.to));
    expect(
      calls.filter((e) => e.status === 401),
      'sends with the wrong token',
    ).to.deep.equal([]);
    for (const [from, id] of [
      ['main', MAIN],
      ['support', SUPPORT],
    ] as const) {
      const mine = calls.filter((e) => e.phoneNumberId === id && e.status === 200);
      expect(mine).to.have.length(users.length * PER[from]);
      // Our pacing (the simulator's 130429s would only add retries): the busiest 1 s span, as in throughput.test.ts.
      expect(
        maxInWindow(
          mine.map((e) => e.receivedAt),
          1000,
        ),
        `${from}: busiest 1 s`,
      ).to.be.at.most(RATE[from] * 1.1);
      for (const to of users) {
        const bodies = mine.filter((e) => e.to === to).map((e) => (e.body as { text: { body: string } }).text.body);
        expect(bodies).to.deep.equal(Array.from({ length: PER[from] }, (_, i) => `${from}-${i}`));
      }
    }
  });

  it('sends a reply from the number the user wrote to', async () => {
    const to = '15557000010';
    const hook = inboundPayload({ phoneNumberId: SUPPORT, from: to, text: 'hi support', at: Date.now(), wamid: `wamid.NUM${to}` });
    expect((await postWebhook(fleet, JSON.stringify(hook))).status).to.equal(200);
    const reply = await waitFor(() => fleet.sim.accepted().find((e) => e.to === to), { what: 'the echo reply' });
    expect(reply.phoneNumberId).to.equal(SUPPORT);
  });

  it('refuses an unknown `from` with a 400 naming the field and the configured numbers', async () => {
    const res = await fleet.send({ to: '15557000020', from: 'marketing', text: { body: 'x' } });
    expect(res.status).to.equal(400);
    expect(res.body.field).to.equal('from');
    expect(res.body.message).to.match(
      /from: "marketing" is not a configured business number \(configured: main \(100000000000001\), support \(100000000000002\)\)/,
    );
  });

  it('labels sends by number in postmaster_sent_total', async () => {
    const text = await fleet.senders[0].rt.metrics.registry.metrics();
    expect(text).to.match(new RegExp(`postmaster_sent_total\\{[^}]*number="${SUPPORT}"[^}]*\\} \\d+`));
  });
});

/**
 * The messaging limit: business-initiated templates (to users whose window is closed) count
 * distinct users per portfolio and rolling 24 hours; past the limit a send fails (action fail) or
 * waits (action wait) instead of reaching the provider, and Meta's quality webhook changes it.
 */
describe('sender: messaging limits', function () {
  this.timeout(60_000);
  let iso: Isolation;
  let n = 0;
  const user = () => `1555800${String(++n).padStart(4, '0')}`;

  async function fleetWith(action: 'fail' | 'wait'): Promise<Fleet> {
    return startFleet(iso, {
      overrides: { whatsappNumbers: numbersJson({}, { tokenEnv: undefined }), whatsappMessagingLimit: '2', whatsappMessagingLimitAction: action },
      // The simulator holds the portfolio to one more than ours: it must never see a refusal.
      simulator: { messagingLimits: { default: 3 } },
    });
  }
  before(async () => {
    iso = await isolate('sender-mlimit');
  });
  after(async () => {
    await iso?.cleanup();
  });

  it('fails the template to a third user at once (action fail), while a second template to a counted user and templates inside windows pass', async () => {
    const fleet = await fleetWith('fail');
    try {
      const [a, b, c, d] = [user(), user(), user(), user()];
      expect((await settled(fleet, await template(fleet, a))).status).to.equal('sent');
      // Another number of the same portfolio: the same limit.
      expect((await settled(fleet, await template(fleet, b, 'support'))).status).to.equal('sent');
      const third = await settled(fleet, await template(fleet, c));
      expect(third.status).to.equal('dead-lettered');
      expect(third.error).to.include({ class: 'permanent', code: 'messaging-limit' });
      expect(fleet.sim.ledger({ to: c })).to.have.length(0);
      // A user already counted in the last 24 hours costs nothing more.
      expect((await settled(fleet, await template(fleet, a))).status).to.equal('sent');
      // A user who wrote (window open) is not business-initiated.
      const hook = inboundPayload({ phoneNumberId: MAIN, from: d, text: 'hi', at: Date.now(), wamid: `wamid.ML${d}` });
      expect((await postWebhook(fleet, JSON.stringify(hook))).status).to.equal(200);
      await waitFor(() => fleet.sim.accepted().find((e) => e.to === d), { what: 'the echo reply' });
      expect((await settled(fleet, await template(fleet, d))).status).to.equal('sent');
      expect(fleet.sim.stats().numbers.overLimit).to.equal(0);
      // The DLQ CLI finds them by number, by alias or id.
      const viaSupport = await settled(fleet, await template(fleet, user(), 'support'));
      expect(viaSupport.error).to.include({ code: 'messaging-limit' });
      const listed = async (from: string) => (await runCli(fleet.cfg, ['list', '--json', '--from', from])).json().items.map((i: { id: string }) => i.id);
      expect(await listed('main')).to.deep.equal([third.id]);
      expect(await listed(SUPPORT)).to.deep.equal([viaSupport.id]);
      const bad = await runCli(fleet.cfg, ['list', '--from', 'nope']);
      expect(bad.code).to.equal(2);
      expect(bad.stderr).to.match(/--from: "nope" is not a configured business number/);
    } finally {
      await fleet.close();
    }
  });

  it("waits past the limit (action wait) and sends once Meta's quality webhook raises the tier", async () => {
    const fleet = await fleetWith('wait');
    try {
      // The first test's two users still count: the portfolio is full.
      const e = user();
      const id = await template(fleet, e);
      const prefix = keyspace(fleet.cfg.redisKeyPrefix, fleet.cfg.topologyPrefix);
      await waitFor(
        async () => /postmaster_messaging_limit_total\{[^}]*outcome="refused"[^}]*\} [1-9]/.test(await fleet.senders[0].rt.metrics.registry.metrics()) || null,
        {
          what: 'the template refused by the messaging limit (and re-tiered)',
        },
      );
      expect((await fleet.call('GET', `/v1/messages/${id}`)).body.status).to.not.equal('dead-lettered');
      expect(fleet.sim.ledger({ to: e })).to.have.length(0);
      const res = await postWebhook(fleet, JSON.stringify(qualityUpdate('15550000002', 'TIER_1K')));
      expect(res.status).to.equal(200);
      expect(await iso.redis.get(limitKey(prefix, 'default'))).to.equal('1000');
      const rec = await settled(fleet, id);
      expect(rec.status).to.equal('sent');
      expect(fleet.sim.accepted().filter((x) => x.to === e)).to.have.length(1);
    } finally {
      await fleet.close();
    }
  });

  it('counts while unlimited, so a limit Meta sets later starts from the real last 24 hours', async () => {
    const keys = keyspace(`${iso.redisKeyPrefix}-ml`, 'postmaster');
    const book = new MessagingLimits(iso.redis, keys);
    for (const u of ['1', '2', '3']) expect(await book.admitUser('p', null, `1555900000${u}`)).to.deep.equal({ admitted: true });
    expect(await book.usage('p', null)).to.deep.equal({ limit: null, users: 3 });
    await book.setLimit('p', 3);
    const refused = await book.admitUser('p', null, '15559000004');
    expect(refused.admitted).to.equal(false);
    expect(await book.admitUser('p', null, '15559000002')).to.deep.equal({ admitted: true });
  });

  it("skips a quality update for a display number it does not know, and reads Meta's tier names", async () => {
    const fleet = await fleetWith('fail');
    try {
      const res = await postWebhook(fleet, JSON.stringify(qualityUpdate('15559999999', 'TIER_10K')));
      expect(res.status).to.equal(200);
      expect(res.body.skipped).to.equal(1);
      const ok = await postWebhook(fleet, JSON.stringify(qualityUpdate('15550000001', 'TIER_UNLIMITED')));
      expect(ok.body.skipped).to.equal(0);
      expect(await iso.redis.get(limitKey(keyspace(fleet.cfg.redisKeyPrefix, fleet.cfg.topologyPrefix), 'default'))).to.equal('unlimited');
    } finally {
      await fleet.close();
    }
  });
});

/** The both limit fields of a quality update set to `v`. */
const both = (v: unknown) => ({ current_limit: v, max_daily_conversations_per_business: v });

/**
 * What docs/API.md promises to read from a quality update, written apart from the ingress's parser:
 * max_daily_conversations_per_business unless it is null or absent, else current_limit; a whole
 * number from 0 to 2^53 - 1, or 1 to 32 printable ASCII characters that trim to digits, TIER_<n>,
 * TIER_<n>K, TIER_UNLIMITED or unlimited (any case). The value the limit key then holds; undefined:
 * the change is skipped.
 */
function expectedLimit(value: Record<string, unknown>): string | undefined {
  const v = value.max_daily_conversations_per_business ?? value.current_limit;
  if (typeof v === 'number') return Number.isSafeInteger(v) && v >= 0 ? String(v) : undefined;
  if (typeof v !== 'string' || !/^[\x20-\x7e]{1,32}$/.test(v)) return undefined;
  const m = /^ *(?:(unlimited|tier_unlimited)|(\d+)|tier_(\d+)(k?)) *$/i.exec(v);
  if (m === null) return undefined;
  if (m[1]) return 'unlimited';
  const n = m[2] !== undefined ? Number(m[2]) : Number(m[3]) * (m[4] ? 1000 : 1);
  return Number.isSafeInteger(n) ? String(n) : undefined;
}

/** A JSON text of Meta's quality update whose limit fields hold `n` levels of `open`…`close` around TIER_1K. */
const nestedLimit = (display: string, n: number, open: string, close: string) =>
  JSON.stringify(qualityUpdate(display, '@deep')).replaceAll('"@deep"', `${open.repeat(n)}"TIER_1K"${close.repeat(n)}`);

/**
 * Meta's quality webhook with a limit Postmaster does not know — a tier name Meta never sent, the
 * wrong type, out of range, non-ASCII look-alikes, nested values — through the signed route: always
 * 200 (Meta retries anything else for 7 days), the change skipped with a reason (logged, counted in
 * `skipped`), the limit in force unchanged, and a valid update afterwards still applied.
 */
describe('webhooks: quality updates with a limit Postmaster does not know', function () {
  this.timeout(120_000);
  const DISPLAY = '15550000001';
  const RUNS = Number(process.env.PROPERTY_RUNS ?? 300);
  const SEED = Number(process.env.PROPERTY_SEED ?? 250425);
  const lines: Array<Record<string, any>> = [];
  const t = useFleet('quality-hostile', {
    overrides: { whatsappNumbers: numbersJson({}, { tokenEnv: undefined }), whatsappMessagingLimit: '2', whatsappMessagingLimitAction: 'fail' },
    ingressLogger: createLogger({ level: 'info', service: 'ingress' }, { write: (s: string) => void lines.push(JSON.parse(s)) }),
  });
  const limitNow = () => t.iso.redis.get(limitKey(keyspace(t.fleet.cfg.redisKeyPrefix, t.fleet.cfg.topologyPrefix), 'default'));
  const post = (body: unknown) => postWebhook(t.fleet, typeof body === 'string' ? body : JSON.stringify(body));
  const skippedLines = () => lines.filter((l) => l.msg === 'webhook parts skipped');

  const HOSTILE: Array<[what: string, body: string | Record<string, unknown>]> = [
    ['an unknown tier name', both('TIER_WHATEVER')],
    ['an empty string', both('')],
    ['blanks', both('   ')],
    ['a negative tier', both('TIER_-5')],
    ['TIER_ alone', both('TIER_')],
    ['TIER_NOT_SET', both('TIER_NOT_SET')],
    ['a 10 KB string', both('TIER_1K'.padEnd(10_240, 'K'))],
    ['10 KB of multi-byte text', both('ü€👋🏽'.repeat(1024))],
    ['full-width letters and digits', both('ＴＩＥＲ_１Ｋ')],
    ['a dotless ı that upper-cases to UNLIMITED', both('unlımıted')],
    ['a dotless ı in a tier name', both('tıer_1k')],
    ['Arabic-Indic digits', both('٣٠٠')],
    ['a tab before the digits', both('\t250')],
    ['an exponent as text', both('1e3')],
    ['digits past 2^53', both('9'.repeat(30))],
    ['a tier past 2^53', both(`TIER_${'9'.repeat(20)}K`)],
    ['a negative number', both(-5)],
    ['a fraction', both(1.5)],
    ['1e308', both(1e308)],
    ['2^53', both(2 ** 53)],
    ['a negative number as text', both('-5')],
    ['a fraction as text', both('2.5')],
    ['true', both(true)],
    ['an array of a tier name', both(['TIER_1K'])],
    ['an array of a number', both([5])],
    ['an array of unlimited', both(['unlimited'])],
    ['nested arrays', both([['TIER_1K']])],
    ['an empty array', both([])],
    ['an object', both({ tier: 'TIER_1K' })],
    [
      'an unknown max_daily_conversations_per_business beside a known current_limit',
      { max_daily_conversations_per_business: 'TIER_WHATEVER', current_limit: 'TIER_1K' },
    ],
    ['no max_daily_conversations_per_business and an unknown current_limit', { max_daily_conversations_per_business: null, current_limit: 'TIER_WHATEVER' }],
    ['neither field', { max_daily_conversations_per_business: null, current_limit: null }],
    ['a display number that is a number', { display_phone_number: Number(DISPLAY), ...both('TIER_1K') }],
    ['arrays nested 50,000 deep', nestedLimit(DISPLAY, 50_000, '[', ']')],
    ['objects nested 50,000 deep', nestedLimit(DISPLAY, 50_000, '{"a":', '}')],
    [
      'a change whose field is nested 50,000 deep',
      JSON.stringify(qualityUpdate(DISPLAY, 'TIER_1K')).replace('"phone_number_quality_update"', `${'['.repeat(50_000)}0${']'.repeat(50_000)}`),
    ],
  ];

  it('answers each with 200 and skips it with a reason, keeps the limit in force, and applies a valid update after them', async () => {
    // A limit of one user, and that user reached.
    expect((await post(qualityUpdate(DISPLAY, '1'))).body).to.include({ skipped: 0 });
    expect(await limitNow()).to.equal('1');
    expect((await settled(t.fleet, await template(t.fleet, '15558100001'))).status).to.equal('sent');

    const wrong: string[] = [];
    for (const [what, fields] of HOSTILE) {
      const before = skippedLines().length;
      const res = await post(typeof fields === 'string' ? fields : qualityUpdate(DISPLAY, undefined, fields));
      const line = skippedLines()[before];
      const reason = String(line?.skipped?.[0]?.reason);
      if (res.status !== 200 || res.body.skipped !== 1 || res.body.received !== 0) wrong.push(`${what}: ${res.status} ${res.text.slice(0, 200)}`);
      else if (skippedLines().length !== before + 1 || !/quality update|is not carried/.test(reason))
        wrong.push(`${what}: no warn line with the reason (${reason})`);
      else if (JSON.stringify(line).length > 1000) wrong.push(`${what}: the warn line holds ${JSON.stringify(line).length} characters`);
      const limit = await limitNow();
      if (limit !== '1') wrong.push(`${what}: the limit is now ${limit}`);
    }
    expect(wrong).to.deep.equal([]);

    // Still one user: a template to a second is refused before the provider.
    const refused = await settled(t.fleet, await template(t.fleet, '15558100002'));
    expect(refused.error).to.include({ code: 'messaging-limit' });
    expect(t.fleet.sim.ledger({ to: '15558100002' })).to.have.length(0);

    const ok = await post(qualityUpdate(DISPLAY, 'TIER_1K'));
    expect(ok.status).to.equal(200);
    expect(ok.body.skipped).to.equal(0);
    expect(await limitNow()).to.equal('1000');
    expect(lines.filter((l) => l.msg === 'messaging limit changed (phone_number_quality_update)').map((l) => l.limit)).to.deep.equal([1, 1000]);
    expect((await settled(t.fleet, await template(t.fleet, '15558100002'))).status).to.equal('sent');
    expect((await t.fleet.call('GET', '/healthz', { token: null })).status).to.equal(200);
  });

  it(`skips each of ${RUNS} generated unknown limits and applies each generated known one (property-based)`, async () => {
    const known = fc.oneof(
      fc.constantFrom('TIER_50', 'TIER_250', 'TIER_1K', 'TIER_2K', 'TIER_10K', 'TIER_100K', 'TIER_UNLIMITED', 'unlimited', 'tier_1k', ' 250 '),
      fc.nat(),
      fc.nat().map(String),
    );
    const lookalike = fc
      .tuple(
        fc.constantFrom('TIER_1K', 'TIER_UNLIMITED', 'unlimited', '250'),
        fc.nat(),
        fc.constantFrom('ı', 'İ', 'Ｋ', '１', '٣', '\u200b', '\t', '\u00a0', '-', '.', 'ſ'),
      )
      .map(([s, at, c]) => s.slice(0, at % (s.length + 1)) + c + s.slice(at % (s.length + 1)));
    const limit = fc.oneof(
      { arbitrary: known, weight: 3 },
      lookalike,
      fc.string({ unit: 'binary', maxLength: 40 }),
      fc.string({ unit: 'grapheme', maxLength: 40 }),
      fc.string({ minLength: 1000, maxLength: 12_000 }),
      fc.stringMatching(/^(TIER_)?-?\d{1,25}[KkM]?$/),
      fc.integer({ min: Number.MIN_SAFE_INTEGER, max: -1 }),
      fc.double(),
      fc.boolean(),
      fc.constant(null),
      fc.array(known, { minLength: 1, maxLength: 3 }),
      fc.object({ maxDepth: 3 }),
    );
    // Where the value goes: both fields, max_daily_conversations_per_business beside a known
    // current_limit (it takes precedence), or current_limit alone.
    const change = fc
      .tuple(limit, fc.constantFrom('both', 'max', 'current'))
      .map(([v, where]) =>
        where === 'both'
          ? both(v)
          : where === 'max'
            ? { max_daily_conversations_per_business: v, current_limit: 'TIER_10K' }
            : { max_daily_conversations_per_business: undefined, current_limit: v },
      );
    let current = await limitNow();
    const outcomes = { applied: 0, skipped: 0 };
    await fc.assert(
      fc.asyncProperty(change, async (fields) => {
        const text = JSON.stringify(qualityUpdate(DISPLAY, undefined, fields));
        // The value as the ingress reads it (JSON turns NaN into null, drops undefined).
        const want = expectedLimit(JSON.parse(text).entry[0].changes[0].value);
        const before = skippedLines().length;
        const res = await post(text);
        expect(res.status, res.text).to.equal(200);
        expect(res.body.skipped, text.slice(0, 300)).to.equal(want === undefined ? 1 : 0);
        expect(skippedLines().length).to.equal(before + (want === undefined ? 1 : 0));
        if (want !== undefined) current = want;
        expect(await limitNow(), text.slice(0, 300)).to.equal(current);
        outcomes[want === undefined ? 'skipped' : 'applied']++;
      }),
      { numRuns: RUNS, seed: SEED, endOnFailure: true },
    );
    console.log(`      generated quality updates: ${JSON.stringify(outcomes)}`);
    expect(outcomes.applied, 'the generators reach the applied path').to.be.greaterThan(RUNS / 10);
    expect(outcomes.skipped, 'and the skipped path').to.be.greaterThan(RUNS / 3);
    expect((await post(qualityUpdate(DISPLAY, 'TIER_2K'))).body.skipped).to.equal(0);
    expect(await limitNow()).to.equal('2000');
  });
});
