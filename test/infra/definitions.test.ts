import { expect } from 'chai';
import amqplib from 'amqplib';
import { createHash, randomBytes } from 'node:crypto';
import { execFile } from 'node:child_process';
import { renderDefinitions, scopeToVhost, type Definitions, type VhostDefinitions } from '../../scripts/gen-definitions.js';
import { loadConfig } from '../../shared/platform/config.js';
import { Management } from '../../shared/amqp/management.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import { assertTopology } from '../../shared/amqp/topology/assert.js';
import { isolate, MGMT_URL, type Isolation } from '../support/isolation.js';
import { waitFor } from '../support/wait.js';
import { read, repoPath } from './repo.js';

/** Exit code of `gen-definitions --check`; with an environment, checks that environment's topology. */
function genCheck(env: Record<string, string>): Promise<number> {
  const args = [repoPath('dist/scripts/gen-definitions.js'), '--check', ...(Object.keys(env).length ? ['--from-env'] : [])];
  return new Promise((resolve) => {
    execFile('node', args, { env: { PATH: process.env.PATH ?? '', ...env }, timeout: 30_000 }, (err) =>
      resolve(err ? (typeof err.code === 'number' ? err.code : 1) : 0),
    );
  });
}

/** RabbitMQ's rabbit_password_hashing_sha256: base64(salt(4) ++ sha256(salt ++ password)). */
function hashMatches(passwordHash: string, password: string): boolean {
  const raw = Buffer.from(passwordHash, 'base64');
  const salt = raw.subarray(0, 4);
  return createHash('sha256').update(Buffer.concat([salt, Buffer.from(password)])).digest().equals(raw.subarray(4));
}

type Exported = VhostDefinitions & Record<string, unknown>;

/** A vhost's objects as the broker exports them, vhost fields dropped, in a stable order. */
async function exported(iso: Isolation): Promise<VhostDefinitions> {
  const d = await iso.mgmt.call<Exported>('GET', `/api/definitions/${Management.vhostPath(iso.vhost)}`);
  const key = (x: object) => JSON.stringify(x);
  const sort = <T extends object>(xs: T[]) => xs.map((x) => {
    const { vhost: _v, ...rest } = x as T & { vhost?: string };
    return rest as T;
  }).sort((a, b) => key(a).localeCompare(key(b)));
  return { exchanges: sort(d.exchanges), queues: sort(d.queues), bindings: sort(d.bindings), policies: sort(d.policies) };
}

function sorted(v: VhostDefinitions): VhostDefinitions {
  const key = (x: object) => JSON.stringify(x);
  const sort = <T extends object>(xs: T[]) => [...xs].sort((a, b) => key(a).localeCompare(key(b)));
  return { exchanges: sort(v.exchanges), queues: sort(v.queues), bindings: sort(v.bindings), policies: sort(v.policies) };
}

describe('RabbitMQ definitions (infra/rabbitmq)', () => {
  const file = JSON.parse(read('infra/rabbitmq/definitions.json')) as Definitions;

  it('definitions.json is exactly what scripts/gen-definitions.ts generates from the topology now', () => {
    expect(read('infra/rabbitmq/definitions.json')).to.equal(renderDefinitions());
  });

  it('gen-definitions --check passes on the committed file and fails on drift', async () => {
    expect(await genCheck({})).to.equal(0);
    // A different shard count is drift from the committed (16-shard) file.
    expect(await genCheck({ SHARDS: '3' })).to.equal(1);
  });

  it('describes the config defaults: prefix postmaster, 16 shards, five tiers, classic urgent lanes, delivery limit 5', () => {
    const t = topologyFromConfig(loadConfig({}));
    expect(file.vhosts).to.deep.equal([{ name: '/' }]);
    expect(file.queues.filter((q) => /^postmaster\.dispatch\.\d+$/.test(q.name))).to.have.length(16);
    expect(file.queues.map((q) => q.name).filter((n) => n.startsWith('postmaster.retry.'))).to.deep.equal(
      ['1s', '5s', '30s', '2m', '10m'].map((l) => `postmaster.retry.${l}`),
    );
    expect(file.queues.find((q) => q.name === 'postmaster.send.urgent')?.arguments).to.include({ 'x-queue-type': 'classic' });
    expect(file.policies.find((p) => p.name === 'postmaster.shards')?.definition).to.include({ 'delivery-limit': 5 });
    expect(file.queues).to.have.length(t.queues.length);
    // One user per service (shared/amqp/topology/permissions.ts), none with a password: those are per cluster.
    expect(file.users.map((u) => u.password_hash)).to.satisfy((hashes: string[]) => hashes.length > 0 && hashes.every((h) => h === ''));
    expect(file.permissions.map((p) => p.user).sort()).to.deep.equal(file.users.map((u) => u.name).sort());
  });

  it('local-users.json gives the local stack guest/guest on "/" (boot-time import seeds no default user)', () => {
    const users = JSON.parse(read('infra/rabbitmq/local-users.json'));
    const guest = users.users.find((u: { name: string }) => u.name === 'guest');
    expect(guest.hashing_algorithm).to.equal('rabbit_password_hashing_sha256');
    expect(hashMatches(guest.password_hash, 'guest')).to.equal(true);
    expect(users.permissions).to.deep.include({ user: 'guest', vhost: '/', configure: '.*', write: '.*', read: '.*' });
  });

  describe('against the broker', () => {
    let imported: Isolation;
    let asserted: Isolation;

    before(async () => {
      imported = await isolate('defs-import');
      asserted = await isolate('defs-assert');
    });
    after(async () => {
      await imported?.cleanup();
      await asserted?.cleanup();
    });

    it('importing the definitions builds the same vhost as assertTopology', async () => {
      await imported.mgmt.call('POST', `/api/definitions/${Management.vhostPath(imported.vhost)}`, scopeToVhost(file));
      const conn = await amqplib.connect(asserted.amqpUrl);
      try {
        await assertTopology(conn, topologyFromConfig(loadConfig({})), { mode: 'assert', managementUrl: MGMT_URL, vhost: asserted.vhost });
      } finally {
        await conn.close();
      }
      const wanted = sorted(scopeToVhost(file));
      const fromImport = await waitFor(async () => {
        const e = await exported(imported);
        return e.queues.length === wanted.queues.length && e.bindings.length === wanted.bindings.length ? e : null;
      }, { what: 'the imported definitions to appear', timeoutMs: 30_000 });
      const fromAssert = await exported(asserted);
      expect(fromImport).to.deep.equal(fromAssert);
      // …and both are the file itself: the broker added or changed nothing on the way.
      expect(fromAssert).to.deep.equal(wanted);
    });

    it('accepts the local users file\'s password hash as guest\'s password', async () => {
      const users = JSON.parse(read('infra/rabbitmq/local-users.json'));
      const name = `pmtest-user-${randomBytes(3).toString('hex')}`;
      const user = { ...users.users[0], name, tags: [] };
      await imported.mgmt.call('POST', '/api/definitions', { users: [user], permissions: [{ user: name, vhost: imported.vhost, configure: '.*', write: '.*', read: '.*' }] });
      try {
        const u = new URL(imported.amqpUrl);
        u.username = name;
        u.password = 'guest';
        const conn = await amqplib.connect(u.toString());
        await conn.close();
      } finally {
        await imported.mgmt.call('DELETE', `/api/users/${encodeURIComponent(name)}`);
      }
    });
  });
});
