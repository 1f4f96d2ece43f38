import { expect } from 'chai';
import { startDispatcher, type Dispatcher } from '../../services/dispatcher/service.js';
import { startReplayer, type Replayer } from '../../services/dlq-replayer/service.js';
import { Broker } from '../../shared/amqp/broker.js';
import { silentLogger } from '../../shared/platform/logger.js';
import { consumerTag, processReplicaId } from '../../shared/platform/replica.js';
import { isolate, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { publishDeadLetters, runCli } from '../dlq/helpers.js';

type Conn = { name: string; client_properties?: { connection_name?: string } };
type Consumer = { consumer_tag: string; queue: { name: string }; channel_details: { connection_name?: string } | [] };

/** The connection a consumer's channel belongs to; undefined until the management API filled in its channel (it lists `[]` before). */
function connectionOf(c: Consumer): string | undefined {
  return Array.isArray(c.channel_details) ? undefined : c.channel_details.connection_name;
}

/**
 * Every replica's connections and subscriptions carry its name, so the management UI tells the
 * replicas of a service apart. Checked from the broker's side, through the management HTTP API.
 */
describe('shared/replica: connection names and consumer tags name the replica', function () {
  this.timeout(60_000);
  const REPLICA = 'postmaster-dispatcher-7d9f8-x2k4q';
  let iso: Isolation;
  let dispatcher: Dispatcher | undefined;
  let replayer: Replayer | undefined;

  before(async () => {
    iso = await isolate('replica-names');
  });
  after(async () => {
    await dispatcher?.close();
    await replayer?.close();
    await iso?.cleanup();
  });

  /** The connection_name of every connection the broker lists for this vhost, by its own name. */
  async function connectionNames(): Promise<Map<string, string>> {
    const conns = await iso.mgmt.call<Conn[]>('GET', `/api/vhosts/${encodeURIComponent(iso.vhost)}/connections`);
    return new Map(conns.map((c) => [c.name, c.client_properties?.connection_name ?? '']));
  }

  it("names a dispatcher's two connections and each of its lanes' consumers after its REPLICA_ID", async () => {
    dispatcher = await startDispatcher(iso.config({ replicaId: REPLICA }));
    const { names } = dispatcher.rt.topology;
    const lanes = [names.urgent('dispatch'), ...Array.from({ length: dispatcher.rt.topology.options.shards }, (_, i) => names.shardQueue('dispatch', i))];
    // The management API lists new connections and consumers after its next stats emission, and
    // a consumer's channel details (its connection) only after a later one.
    const { consumers, byConnection } = await waitFor(
      async () => {
        const all = await iso.mgmt.call<Consumer[]>('GET', `/api/consumers/${encodeURIComponent(iso.vhost)}`);
        const conns = await connectionNames();
        const listed = lanes.every((q) => all.some((c) => c.queue.name === q && connectionOf(c) && conns.has(connectionOf(c)!)));
        return listed ? { consumers: all, byConnection: conns } : null;
      },
      { timeoutMs: 30_000, intervalMs: 250, what: 'a consumer on every dispatch lane, with its connection' },
    );
    expect([...byConnection.values()]).to.have.members([`postmaster-dispatcher@${REPLICA}`, `postmaster-dispatcher:urgent@${REPLICA}`]);
    for (const q of lanes) {
      const c = consumers.find((x) => x.queue.name === q)!;
      expect(c.consumer_tag, q).to.equal(`postmaster-dispatcher@${REPLICA}:${q}`);
      const expected = q === names.urgent('dispatch') ? `postmaster-dispatcher:urgent@${REPLICA}` : `postmaster-dispatcher@${REPLICA}`;
      expect(byConnection.get(connectionOf(c)!), `${q}'s connection`).to.equal(expected);
    }
  });

  it("names the DLQ replayer's subscription to the DLQ, while a replay pass runs, after its replica", async () => {
    const replica = 'postmaster-dlq-replayer-6f5d4-p8w2m';
    const cfg = iso.config({ replicaId: replica });
    replayer = await startReplayer(cfg);
    const dlq = replayer.rt.topology.names.dlq;
    // Twenty dead letters at one a second: the pass holds its subscription for 20 s.
    await publishDeadLetters(
      iso.amqpUrl,
      cfg.topologyPrefix,
      Array.from({ length: 20 }, (_, i) => ({ user: `1555444${String(i).padStart(4, '0')}`, code: '131026' })),
    );
    const run = await runCli(cfg, ['replay', '--all', '--rate', '1', '--yes', '--json']);
    expect(run.code, run.stderr).to.equal(0);
    const tag = await waitFor(
      async () => {
        const all = await iso.mgmt.call<Consumer[]>('GET', `/api/consumers/${encodeURIComponent(iso.vhost)}`);
        return all.find((c) => c.queue.name === dlq)?.consumer_tag ?? null;
      },
      { timeoutMs: 20_000, intervalMs: 250, what: 'the replay pass consuming the DLQ' },
    );
    expect(tag).to.equal(`postmaster-dlq-replayer@${replica}:${dlq}`);
  });

  it('names a connection after the pod (HOSTNAME) and the pid when no replica is given', async () => {
    expect(processReplicaId({ HOSTNAME: 'postmaster-sender-5c6b-9zq' })).to.equal(`postmaster-sender-5c6b-9zq-${process.pid}`);
    const broker = new Broker({ urls: iso.amqpUrl, logger: silentLogger(), publishTimeoutMs: 5000, name: 'postmaster-dlq-cli' });
    try {
      await broker.waitForConnect(10_000);
      const expected = `postmaster-dlq-cli@${processReplicaId()}`;
      await waitFor(async () => [...(await connectionNames()).values()].includes(expected), {
        timeoutMs: 20_000,
        intervalMs: 250,
        what: `a connection named ${expected}`,
      });
    } finally {
      await broker.close();
    }
  });

  it("keeps consumer tags within AMQP's 255 bytes, the queue's name whole", () => {
    const queue = `postmaster.send.${'x'.repeat(100)}`;
    const tag = consumerTag('postmaster-sender', 'é'.repeat(200), queue);
    expect(Buffer.byteLength(tag)).to.be.at.most(255);
    expect(tag.startsWith('postmaster-sender@é')).to.equal(true);
    expect(tag.endsWith(`:${queue}`)).to.equal(true);
  });
});
