/**
 * The Redis ACL users of infra/redis/users.acl, loaded into the test Redis for one isolation: key
 * patterns moved from `postmaster:postmaster:` to the isolation's prefix, user names suffixed
 * (ACL users are server-wide), passwords random. Removed by the returned `drop()`.
 */
import { randomBytes } from 'node:crypto';
import type { Redis } from 'ioredis';
import { read } from '../infra/repo.js';
import { REDIS_URL } from '../support/isolation.js';

export interface RedisAclUsers {
  /** REDIS_URL of a service's ACL user, e.g. urlOf('postmaster-sender'). */
  urlOf(user: string): string;
  drop(): Promise<void>;
}

export async function loadRedisAcl(redis: Redis, keyPrefix: string): Promise<RedisAclUsers> {
  const suffix = randomBytes(3).toString('hex');
  const created = new Map<string, { name: string; password: string }>();
  const lines = read('infra/redis/users.acl')
    .split('\n')
    .filter((l) => l.startsWith('user postmaster-'));
  for (const line of lines) {
    const [, user, ...rules] = line.trim().split(/\s+/);
    const name = `pmtest-${user}-${suffix}`;
    const password = randomBytes(12).toString('hex');
    const moved = rules.map((r) => (r.startsWith('>') ? `>${password}` : r.replace('~postmaster:postmaster:', `~${keyPrefix}:`)));
    await redis.call('ACL', 'SETUSER', name, 'reset', ...moved);
    created.set(user, { name, password });
  }
  return {
    urlOf(user) {
      const u = new URL(REDIS_URL);
      const c = created.get(user);
      if (!c) throw new Error(`infra/redis/users.acl has no user ${user}`);
      u.username = c.name;
      u.password = c.password;
      return u.toString();
    },
    async drop() {
      for (const c of created.values()) await redis.call('ACL', 'DELUSER', c.name).catch(() => {});
    },
  };
}
