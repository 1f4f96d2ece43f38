/**
 * The chaos scenario "Redis Sentinel: kill -9 primary": the fleet runs on the private Sentinel set
 * (Infra.sentinel; REDIS_SENTINELS, REDIS_WAIT_REPLICAS=1) while a share of the load is scheduled a
 * few seconds ahead, so BullMQ holds accepted messages in Redis — the only copy — when the primary
 * is SIGKILLed. The audit (every accepted message delivered once) is the proof that the WAIT before
 * each 202 kept them; the notes give the time to recover: the Sentinels' new primary, then a client
 * of the fleet's kind writing (and replicating) through it again.
 */
import { createRedis, redisDeadlines, waitForReplicas } from '../../shared/platform/redis.js';
import { waitFor } from '../lib/wait.js';
import type { Scenario } from './scenarios.js';

const s = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

export const sentinelKillPrimary: Scenario = {
  name: 'Redis Sentinel: kill -9 primary',
  sentinel: true,
  load: { scheduled: { share: 0.3, aheadMs: 4000 } },
  async inject({ fleet, infra, log }) {
    const set = infra.sentinel;
    if (!set) throw new Error('this scenario needs the Sentinel set (Infra.sentinel)');
    const old = (await set.primary()).port;
    const delayedKey = `${fleet.cfg.redisKeyPrefix}:${fleet.cfg.topologyPrefix}:bullmq:scheduled-sends:delayed`;
    const pending = Number((await set.cli(old, ['zcard', delayedKey])).trim()) || 0;
    log(`    primary :${old} holds ${pending} scheduled sends: kill -9`);
    await set.kill9(old);
    const killedAt = Date.now();
    const now = await set.newPrimary(old, 60_000);
    const electedAt = Date.now();
    // A client like every one of the fleet's (same factory, same configuration): when it writes and
    // a replica acknowledges again, so can they.
    const probe = createRedis(fleet.cfg, redisDeadlines(fleet.cfg));
    probe.on('error', () => undefined);
    const probeKey = `${fleet.cfg.redisKeyPrefix}:chaos-probe`;
    let writingAt: number;
    try {
      await waitFor(
        () =>
          probe
            .set(probeKey, String(Date.now()))
            .then(() => waitForReplicas(probe, fleet.cfg, 'probe'))
            .then(
              () => true,
              () => false,
            ),
        { timeoutMs: 60_000, intervalMs: 50, what: 'a replicated write through the new primary' },
      );
      writingAt = Date.now();
    } finally {
      probe.disconnect();
    }
    await set.start(old);
    const notes = [
      `primary :${old} held ${pending} scheduled sends when killed`,
      `recovery: new primary :${now.port} elected ${s(electedAt - killedAt)} after the kill; a client writing (WAIT 1) again after ${s(writingAt - killedAt)}`,
      `:${old} back as a replica ${s(Date.now() - killedAt)} after the kill`,
    ];
    return { faultStart: killedAt, faultEnd: writingAt, notes };
  },
};
