/**
 * One RabbitMQ user per service (shared/amqp/topology/permissions.ts), checked on the real broker: each
 * test run creates the users with the generated permissions on its own vhost (users are cluster-wide,
 * so their names carry a random suffix) and deletes them afterwards. Refusals are read off the
 * broker's own channel errors (403 ACCESS_REFUSED), through raw amqplib.
 */
import { expect } from 'chai';
import amqplib, { type ChannelModel } from 'amqplib';
import { randomBytes } from 'node:crypto';
import { request } from 'undici';
import { startDispatcher } from '../../services/dispatcher/service.js';
import { startReplayer } from '../../services/dlq-replayer/service.js';
import { startIngress } from '../../services/ingress/service.js';
import { startSender } from '../../services/sender/service.js';
import { startSimulator, type Simulator } from '../../services/simulator/server.js';
import { declareTopology } from '../../services/topology/main.js';
import { Broker } from '../../shared/amqp/broker.js';
import type { Config } from '../../shared/platform/config.js';
import { createLogger } from '../../shared/platform/logger.js';
import { Management } from '../../shared/amqp/management.js';
import { PublisherChannel } from '../../shared/amqp/publisher-channel.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import { brokerUserName, brokerUsers, type BrokerRole } from '../../shared/amqp/topology/permissions.js';
import { devPassword } from '../../scripts/broker-users.js';
import { renderAll } from '../../scripts/gen-definitions.js';
import { shardKey } from '../../shared/amqp/topology/shard.js';
import { isolate, MGMT_URL, queueDepths, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { loadRedisAcl } from './redis-acl.js';

const log = createLogger({ level: 'silent', service: 'test' });

/** The broker's reply code of a rejected operation (amqplib puts it on the error as `code`). */
async function refusal(op: () => Promise<unknown>): Promise<number | null> {
  try {
    await op();
    return null;
  } catch (err) {
    return (err as { code?: number }).code ?? -1;
  }
}

describe('broker users: one per service, least privilege (against RabbitMQ)', function () {
  this.timeout(120_000);
  let iso: Isolation;
  let cfg: Config;
  let sim: Simulator;
  const suffix = randomBytes(3).toString('hex');
  const login: Partial<Record<BrokerRole, { user: string; password: string }>> = {};
  const conns: ChannelModel[] = [];

  const as = (url: string, role: BrokerRole): string => {
    const u = new URL(url);
    u.username = login[role]!.user;
    u.password = login[role]!.password;
    return u.toString();
  };
  const amqpUrlOf = (role: BrokerRole) => as(iso.amqpUrl, role);
  const mgmtUrlOf = (role: BrokerRole) => as(MGMT_URL, role);
  const connectAs = async (role: BrokerRole): Promise<ChannelModel> => {
    const c = await amqplib.connect(amqpUrlOf(role));
    c.on('error', () => {});
    conns.push(c);
    return c;
  };
  /** A fresh channel whose death is reported through the returned promise, not as an unhandled error. */
  const channel = async (c: ChannelModel) => {
    const ch = await c.createChannel();
    ch.on('error', () => {});
    return ch;
  };

  before(async () => {
    iso = await isolate('broker-users');
    cfg = iso.config();
    const t = topologyFromConfig(cfg);
    for (const u of brokerUsers(t)) {
      const user = `pmtest-${u.name}-${suffix}`;
      const password = randomBytes(12).toString('hex');
      await iso.mgmt.call('PUT', `/api/users/${encodeURIComponent(user)}`, { password, tags: u.tags.join(',') });
      await iso.mgmt.call('PUT', `/api/permissions/${Management.vhostPath(iso.vhost)}/${encodeURIComponent(user)}`, {
        configure: u.configure,
        write: u.write,
        read: u.read,
      });
      login[u.role] = { user, password };
    }
    // The one place that declares: the topology job, as the topology user (policies included).
    await declareTopology({ ...cfg, amqpUrl: amqpUrlOf('topology'), managementUrl: mgmtUrlOf('topology') });
    sim = await startSimulator({ accessToken: 'tok', phoneNumberId: '123456' });
  });

  after(async () => {
    for (const c of conns) await c.close().catch(() => {});
    await sim?.close();
    for (const l of Object.values(login)) await iso.mgmt.call('DELETE', `/api/users/${encodeURIComponent(l!.user)}`).catch(() => {});
    await iso?.cleanup();
  });

  it('the topology user declared every queue and policy of the declaration', async () => {
    const t = topologyFromConfig(cfg);
    const queues = await iso.mgmt.queues(iso.vhost);
    expect(queues.map((q) => q.name)).to.include.members(t.queues.map((q) => q.name));
    const policies = await iso.mgmt.call<Array<{ name: string }>>('GET', `/api/policies/${Management.vhostPath(iso.vhost)}`);
    expect(policies.map((p) => p.name)).to.include.members(t.policies.map((p) => p.name));
  });

  it("refuses the ingress's user a queue.declare and a basic.consume (403), even on its own lanes", async () => {
    const n = topologyFromConfig(cfg).names;
    const c = await connectAs('ingress');
    expect(await refusal(async () => (await channel(c)).assertQueue(`pmtest-${suffix}`, { durable: false }))).to.equal(403);
    expect(await refusal(async () => (await channel(c)).assertExchange(n.laneExchange('send'), 'direct', { durable: true }))).to.equal(403);
    expect(await refusal(async () => (await channel(c)).consume(n.shardQueue('send', 0), () => {}))).to.equal(403);
    expect(await refusal(async () => (await channel(c)).consume(n.dlq, () => {}))).to.equal(403);
    // Passive declares (TOPOLOGY_MODE=check) need no right at all, only the object.
    expect(await refusal(async () => (await channel(c)).checkQueue(n.shardQueue('send', 0)))).to.equal(null);
    expect(await refusal(async () => (await channel(c)).checkExchange(n.dead))).to.equal(null);
  });

  it("lets the ingress's user publish a confirmed message to a lane", async () => {
    const n = topologyFromConfig(cfg).names;
    const ch = await (await connectAs('ingress')).createConfirmChannel();
    ch.publish(n.laneExchange('send'), shardKey(1), Buffer.from('{}'), { persistent: true, mandatory: true });
    await ch.waitForConfirms();
    await ch.close();
    expect((await queueDepths(iso.amqpUrl, [n.shardQueue('send', 1)]))[n.shardQueue('send', 1)]).to.equal(1);
  });

  it("refuses the sender's user a publish to the dispatch lanes, and a consume of them", async () => {
    const n = topologyFromConfig(cfg).names;
    const c = await connectAs('sender');
    // A refused publish closes the channel: its 'error' event carries the code, the confirm only "closed".
    const publishTo = async (exchange: string) => {
      const ch = await c.createConfirmChannel();
      let closedWith: Error | null = null;
      ch.on('error', (err: Error) => (closedWith = err));
      ch.publish(exchange, shardKey(0), Buffer.from('{}'), { mandatory: true });
      await ch.waitForConfirms().catch(() => {});
      if (closedWith) throw closedWith;
      await ch.close();
    };
    expect(await refusal(() => publishTo(n.laneExchange('dispatch')))).to.equal(403);
    expect(await refusal(() => publishTo(n.urgent('dispatch')))).to.equal(403);
    expect(await refusal(async () => (await channel(c)).consume(n.shardQueue('dispatch', 0), () => {}))).to.equal(403);
    // …while its own publishes (a retry tier, the dead exchange) go through.
    expect(await refusal(() => publishTo(n.dead))).to.equal(null);
  });

  it('lets every service user send the health probe (an unroutable confirmed publish to the default exchange)', async () => {
    for (const role of ['ingress', 'dispatcher', 'sender', 'dlq-replayer'] as const) {
      const broker = new Broker({ urls: amqpUrlOf(role), logger: log, publishTimeoutMs: 5000, name: `pmtest-probe-${role}` });
      try {
        await broker.waitForConnect(10_000);
        const pub = new PublisherChannel({ manager: broker.manager, name: 'probe', logger: log, timeoutMs: 5000 });
        await pub.probe();
        expect(pub.failingSince, role).to.equal(null);
        await pub.close();
      } finally {
        await broker.close();
      }
    }
    // The right is what lets it through: the CLI's user may write nowhere, and its probe fails.
    const cli = new Broker({ urls: amqpUrlOf('dlq-cli'), logger: log, publishTimeoutMs: 5000, name: 'pmtest-probe-cli' });
    try {
      await cli.waitForConnect(10_000);
      const pub = new PublisherChannel({ manager: cli.manager, name: 'probe', logger: log, timeoutMs: 5000 });
      expect(await refusal(() => pub.probe())).to.not.equal(null);
      await pub.close();
    } finally {
      await cli.close();
    }
  });

  it('starts every service as its own broker and Redis user with TOPOLOGY_MODE=check on the topology the topology user declared', async () => {
    const acl = await loadRedisAcl(iso.redis, `${iso.redisKeyPrefix}:${cfg.topologyPrefix}`);
    const configOf = (role: BrokerRole, extra: Partial<Config> = {}): Config => ({
      ...cfg,
      amqpUrl: amqpUrlOf(role),
      redisUrl: acl.urlOf(brokerUserName(role)),
      managementUrl: '',
      topologyMode: 'check',
      ...extra,
    });
    const ingress = await startIngress(configOf('ingress'));
    const services = [
      ingress,
      await startDispatcher(configOf('dispatcher')),
      await startSender(configOf('sender', { providerBaseUrl: sim.url, whatsappAccessToken: 'tok', whatsappPhoneNumberId: '123456' })),
      await startReplayer(configOf('dlq-replayer')),
    ];
    try {
      // And they work as those users: a send goes ingress → send lane → sender → provider.
      const res = await request(`${ingress.url}/v1/messages`, {
        method: 'POST',
        headers: { authorization: `Bearer ${cfg.ingressApiToken}`, 'content-type': 'application/json' },
        body: JSON.stringify({ to: '15551230001', type: 'text', text: { body: 'hello' } }),
      });
      const body = (await res.body.json()) as { id: string };
      expect(res.statusCode).to.equal(202);
      await waitFor(() => sim.accepted().some((e) => e.to === '15551230001'), { what: 'the send to reach the provider', timeoutMs: 20_000 });
      expect(body.id).to.be.a('string');
      // The dispatcher consumes its lanes too (a refused consume would leave them without consumers).
      const n = topologyFromConfig(cfg).names;
      const consumed = [n.urgent('dispatch'), n.shardQueue('dispatch', 0), n.urgent('send')];
      const guest = await amqplib.connect(iso.amqpUrl);
      conns.push(guest);
      const ch = await guest.createChannel();
      await waitFor(
        async () => {
          for (const q of consumed) if ((await ch.checkQueue(q)).consumerCount === 0) return false;
          return true;
        },
        { what: 'consumers on the dispatch and send lanes', timeoutMs: 30_000, intervalMs: 200 },
      );
    } finally {
      for (const s of services) await s.close();
      await acl.drop();
    }
  });

  it('imports the generated users without a password, and the local users file gives them their dev passwords', async () => {
    const files = renderAll();
    type Doc = { users: Array<{ name: string }>; permissions: Array<{ user: string; vhost: string }> };
    // Users are cluster-wide: import the sender's entries under a name of this run, on this vhost.
    const name = `pmtest-imported-sender-${suffix}`;
    const only = (doc: Doc) => ({
      users: doc.users.filter((u) => u.name === 'postmaster-sender').map((u) => ({ ...u, name })),
      permissions: doc.permissions.filter((p) => p.user === 'postmaster-sender').map((p) => ({ ...p, user: name, vhost: iso.vhost })),
    });
    const url = new URL(iso.amqpUrl);
    url.username = name;
    url.password = devPassword('sender');
    const logsIn = async () => (await refusal(async () => (await amqplib.connect(url.toString())).close())) === null;
    try {
      await iso.mgmt.call('POST', '/api/definitions', only(JSON.parse(files['infra/rabbitmq/definitions.json'])));
      expect(await logsIn(), 'no password login after the definitions import').to.equal(false);
      await iso.mgmt.call('POST', '/api/definitions', only(JSON.parse(files['infra/rabbitmq/local-users.json'])));
      expect(await logsIn(), 'the dev password after the local users import').to.equal(true);
    } finally {
      await iso.mgmt.call('DELETE', `/api/users/${encodeURIComponent(name)}`).catch(() => {});
    }
  });
});
