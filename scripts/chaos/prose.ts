/**
 * The explanatory text of docs/RELIABILITY.md; the numbers and "Measured" lines come from the run.
 */
export const INTRO = `\`npm run chaos\` (scripts/chaos.ts, scripts/chaos/) breaks a loaded fleet in the ways production
will, one scenario at a time, and audits the result from outside the code under test: the provider
simulator's ledger (what reached "WhatsApp"), the DLQ read with raw amqplib, and what the load generator
was answered. Every scenario must end with every accepted message delivered or dead-lettered with a
reason, nothing delivered twice, and every user's messages in the order they were accepted. The run exits
1 if an accepted message is unaccounted for.

It runs on **private infrastructure** that it starts and removes itself, so it never touches the
machine's own RabbitMQ or Redis: RabbitMQ nodes with their own node names (\`pmchaos-<tag>-…@localhost\`),
free ports, data, log, config and enabled-plugins files under \`$TMPDIR/postmaster-chaos-*\` (started with
\`rabbitmq-server -detached\`, driven with \`rabbitmqctl -n\`), first one node, then a 3-node cluster
(\`join_cluster\`), and a Redis without persistence. Everything is torn down at the end, on failure and on
Ctrl-C. The services run as child processes from a copy of \`dist/\` taken at the start (a rebuild during
the run cannot break a restart); their warnings, the nodes' logs, per-second timelines and \`results.json\`
are kept in \`$TMPDIR/postmaster-chaos-logs/<date>/\`.

- \`npm run chaos -- --only sender,redis\` runs some scenarios (the doc is only written by full runs);
  \`--rate\`, \`--users\`, \`--duration\`, \`--drain\`, \`--stall\` change the load and the wait;
  \`npm run chaos -- --render <results.json>\` rewrites this page from a saved run.
- \`npm run cluster -- start|status|stop\` starts the same kind of private 3-node cluster for manual work
  (ports 5701-5703, management 15701-15703) and prints its comma-separated \`AMQP_URL\`.
- \`test/chaos/chaos.test.ts\` is the small version for CI: one private node and Redis, a SIGKILL of a
  sender and a broker restart under short load, the same audit; skipped when \`rabbitmq-server\` is not
  installed; under 3 minutes.

**The load** is a careful client: each message carries an idempotency key, a 503 or a broken connection is
retried with the same key until the ingress answers 202 (or 200: the key was already accepted), and a user
sends its next message only once the previous one was accepted, so the accepted order per user is well
defined. Only accepted messages are audited. The fault window is what the fleet saw where the command
line is slow to say (on a busy machine \`rabbitmqctl\` takes 2–30 s to start): the broker's outage starts
when the ingress loses its connection and ends when the broker listens again; the memory alarm runs from
the ingress's \`blocked\` to its \`unblocked\`.`;

export const MEANWHILE: Record<string, string> = {
  'Redis Sentinel: kill -9 primary':
    'Meanwhile: until the Sentinels promote a replica (down-after-milliseconds 1 s, then the election) and the ' +
    'clients reconnect to it, every Redis command fails after REDIS_COMMAND_TIMEOUT_MS: the ingress answers 503 ' +
    'to requests with an idempotency key and to scheduled sends (the load retries them with the same key), ' +
    'replicas keep the shards they hold, senders re-tier messages as throttled. A scheduled send was answered 202 ' +
    'only after a replica acknowledged it (REDIS_WAIT_REPLICAS=1), so the new primary has every one of them.',
  'kill -9 ingress':
    'Meanwhile: clients get connection errors until the replacement listens (a few seconds); they retry with ' +
    'the same idempotency key. A request cut off between the broker\'s confirm and the 202 is answered 200 ' +
    '(duplicate) on retry; one cut off before its idempotency claim was confirmed waits out the stale-claim ' +
    'window (PUBLISH_TIMEOUT_MS + 5 s) and is published again — the only way this scenario could duplicate. ' +
    'Dispatchers and senders are untouched: deliveries pause only for lack of new input.',
  'kill -9 dispatcher':
    'Meanwhile: send requests do not pass through the dispatcher (the ingress publishes them to the send ' +
    'lanes), so the load flows on; what waits is the dispatcher\'s own work — the status webhooks in the ' +
    'dead replica\'s dispatch shards and its share of due scheduled sends. The broker returns its unacked ' +
    'deliveries to the head of their shards; its leases expire after LEASE_TTL_MS and the other dispatcher ' +
    'takes its shards; when the replacement joins, some shards move back to it by the graceful hand-over.',
  'kill -9 sender':
    'Meanwhile: the broker returns the dead replica\'s unacked deliveries to the head of their shards; its ' +
    'leases expire after LEASE_TTL_MS and the other sender takes its shards (the affected users wait for ' +
    'the lease TTL, the others flow on); a message the dead sender had already handed to the ' +
    'provider is redelivered with its `sending` mark set, so the new owner waits (up to ' +
    'SENDER_AMBIGUOUS_WAIT_MS) for the provider\'s status webhook instead of sending it again.',
  'freeze sender 8 s':
    'Meanwhile: the frozen sender\'s connections stay open, so the broker keeps it as the active consumer ' +
    'of its shards (single active consumer) with the deliveries it holds. Its leases and membership expire; ' +
    'the other sender takes the leases and subscribes, waiting. When the frozen one runs again, it finds ' +
    'its leases gone and drains without cancelling first — a cancel would let the broker activate the ' +
    'waiting consumer at once, with earlier messages of the same users still in hand — then closes its ' +
    'channels; the other sender starts at the first message it did not finish. The affected users wait ' +
    'for the freeze.',
  'kill -9 dlq-replayer':
    'Meanwhile: nothing on the message path depends on the replayer (the DLQ was empty); the replacement ' +
    'takes over replay jobs through BullMQ\'s lock. The scenario shows the kill does not disturb the rest.',
  'RabbitMQ restart':
    '`stop_app` first lets the node finish what it is doing, then closes every connection. Meanwhile the ' +
    'ingress answers 503 + Retry-After (it never buffers), workers reconnect every second ' +
    '(amqp-connection-manager) and re-subscribe; the quorum shards, retry tiers and DLQ keep their messages ' +
    'on disk, and unacked deliveries return to the head of their shards. Every user stays on its shard: ' +
    'the publisher picks the shard (jump consistent hash of the user) and the broker only follows the ' +
    'shard exchange\'s durable bindings, which a restart does not change.',
  'Redis down 10 s':
    'Meanwhile: the ingress answers 503 to requests with an idempotency key (the claim needs Redis; a request ' +
    'without a key would be accepted); dispatchers and senders hold the deliveries they have and retry ' +
    'the step that needs Redis with backoff (an outage is not a failure: nothing is re-tiered, requeued or ' +
    'counted, so per-user order holds) and keep the shards they hold (membership heartbeats fail, ' +
    'single active consumer still holds). Redis comes back **empty**: leases, membership, holds, rate-limit ' +
    'state, sent-ids and idempotency keys are rebuilt or lost — a redelivery after the flush of a message ' +
    'already sent is the duplicate risk.',
  'Redis frozen 10 s':
    'Meanwhile: every Redis command times out after REDIS_COMMAND_TIMEOUT_MS instead of waiting for an ' +
    'answer that does not come, so the ingress answers 503 + Retry-After to requests with an idempotency key ' +
    'within PUBLISH_TIMEOUT_MS (never a hung request); workers treat the timeouts as a Redis outage (the ' +
    'deliveries they hold wait and retry, nothing is re-tiered) and lease renewal fails fast instead of ' +
    'freezing. When Redis runs again its state is intact: no lease, hold or sent-id is lost.',
  'send bindings deleted 10 s':
    'Meanwhile: every publish of the ingress is mandatory, so the broker returns it (it reaches no queue) ' +
    'and the ingress answers 503 + Retry-After — never a 202 for a message stored nowhere; ' +
    '`postmaster_unroutable_total` counts them and `PostmasterUnroutablePublishes` fires. The load retries ' +
    'with the same idempotency key and gets in once the bindings are back. Senders drain what the shards ' +
    'held.',
  'simulator down 30 s':
    'Meanwhile: the ingress and dispatchers go on (no 503s); every send fails with a connection reset, a ' +
    'transient error, and goes through the retry tiers (1 s, 5 s, 30 s) while strict ordering parks each ' +
    'user\'s later messages. A reset connection may have reached the provider, so the retried message waits ' +
    'up to SENDER_AMBIGUOUS_WAIT_MS for a status webhook before it is sent again. When the provider is back ' +
    'the backlog drains at the number\'s throughput limit (80/s × 20/21).',
  'memory alarm 10 s':
    'Meanwhile: the broker blocks every publishing connection. The ingress answers 503 at once (it tracks ' +
    '`connection.blocked`); dispatchers cannot publish to the send lanes: they hold those deliveries and ' +
    'publish again with backoff once unblocked (no requeue, so no delivery count is spent); senders drain ' +
    'what is already in the send lanes.',
  'cluster: kill -9 shard leader':
    'Meanwhile: the quorum queues elect new leaders on the two surviving nodes within seconds and lose ' +
    'nothing; every client connection to the killed node drops and reconnects to the next node of ' +
    '`AMQP_URL`. The classic urgent queues live on one node only (DESIGN §2): while that node is down ' +
    'they are unavailable; the urgent consumers are refused (404) and subscribe again on a timer while ' +
    'the shard consumers go on.',
  'cluster: rolling restart':
    'Meanwhile: each stopping node hands its quorum-queue leaderships to the others and its clients ' +
    'reconnect to the next node of `AMQP_URL`; the shards keep a quorum (two of three members) throughout, ' +
    'so publishing and consuming go on with short pauses while leaders move. Waiting for every member to be ' +
    'back online before the next node is what a rolling upgrade must do: stopping a second node while the ' +
    'first is still catching up would leave a shard without quorum. The classic urgent queues live on one ' +
    'node and are unavailable while it is down. No user moves shard: the routes are durable bindings.',
  'cluster: whole-cluster stop and start':
    'Meanwhile: nothing is served (the ingress answers 503 + Retry-After, workers retry their connections ' +
    'every second); the quorum shards, retry tiers and DLQ keep their messages on disk on all three nodes. ' +
    'When the nodes are back, deliveries resume from the head of each shard. A whole-cluster restart is the ' +
    'case the broker\'s own x-consistent-hash exchange did not survive (it rebuilt its ring in another order); ' +
    'with the shard chosen by the publisher, no user moves.',
};

export const FINDINGS = `The 3-node cluster leader kill of a run on 2026-11-23 (before the fixes below) left 955 of 1,555
accepted messages undelivered, 5 users out of order and every dispatcher and sender crashed.
"Lost" in the table means *not delivered and not in the DLQ when the wait ended*.

What the earlier runs found, and what was done (commit "Workers: ack on the delivering channel, re-subscribe a channel the broker closed, wait out RabbitMQ/Redis outages in place…"):

1. **Acks dropped after every (re)connect, shards stalled** (\`shared/consumer.ts\`). amqp-connection-manager
   emits \`connect\` only after it has re-created the consumers, so the first deliveries of a new channel —
   and, at start, of a queue with a backlog — were taken for the old channel's and their acks dropped:
   a shard with more waiting than its prefetch stopped for good. **Fixed**: deliveries are acked on the
   amqplib channel that delivered them, tracked in the wrapper's setup (which runs before the consumer is
   re-created). \`test/shared/consumer.test.ts\` fails on the old code.
2. **Workers crashed on broker trouble.** A channel-level error (\`basic.consume\` answered 404 because
   the node holding a classic urgent queue was down) was thrown with no listener, which tears the whole
   connection down; an unawaited \`prefetch()\` inside amqp-connection-manager then rejected unhandled and
   the process exited. **Fixed**: an \`error\` listener on every channel (and on the publisher wrapper),
   the prefetch set in the channel setup, unhandled rejections logged instead of fatal, and a consumer
   whose channel the broker closed while the connection stays up subscribes again on a timer (the
   urgent lane comes back by itself when its node does; the shards never wait for it).
3. **Outages turned healthy messages into poison and orphaned strict-order holds.** A dispatcher whose
   publish failed (broker unreachable or blocked) nacked and requeued at once, burning the shard's
   delivery limit in milliseconds; the broker then dead-lettered the message behind the app's back and
   the user's hold kept its id forever. **Fixed**: an outage of RabbitMQ or Redis is not a failure — the
   worker keeps the delivery and runs the failed step again with backoff while its channel lives
   (\`shared/failures/outage.ts\`); the worker itself dead-letters a delivery handed out
   \`DELIVERY_LIMIT\` times (poison/\`delivery-limit\`, releasing the hold), and a parked message
   dead-lettered so is removed from the hold wherever it is.
4. **A throttled message came back "ambiguous"** and waited 15 s for a webhook that could not come.
   Fixed earlier the same day (the \`sending\` mark is cleared when our own limiter turns a message away).
5. **Redis down**: deliveries now wait in place for Redis (nothing re-tiered, so order holds — the earlier
   run had 6 users out of order and 3 duplicates here, this one none). What remains: a Redis that comes
   back **empty** has lost the sent-ids (a redelivery of a message already sent may reach the user
   twice), holds of messages parked before the outage, idempotency keys and scheduled sends. Run
   Redis with AOF (\`appendonly yes\`) in production; docker-compose does.
6. **Provider outage**: a reset connection may have reached the provider, so every retried message waits
   up to SENDER_AMBIGUOUS_WAIT_MS (15 s) for a status webhook before it is sent again — correct, and the
   reason the recovery takes seconds after the simulator returns.
7. **SIGKILLs** of the ingress, a dispatcher, a sender or the replayer: nothing lost, nothing duplicated,
   order held in every run.
8. **A broker restart moved users between shards** (found 2026-12-04: one user's messages reached the
   provider in the order 0, 2, 1 across a \`stop_app\` / \`start_app\`). RabbitMQ's \`x-consistent-hash\`
   exchange rebuilds its ring (bucket → queue) in memory when a node boots, not in the order the bindings
   were made: 15 of 16 buckets pointed at another queue after one restart of a single node, and after a
   whole-cluster stop and start. **Fixed** (issue #26): the publisher computes the user's shard itself
   (jump consistent hash, \`shared/topology/shard.ts\`) and publishes to a direct exchange whose bindings
   name each shard by its key: durable topology that no restart changes. The restart scenarios now read
   the shard routes (the bindings, through the management API) before and after, and every scenario
   checks per-user order with messages in every send shard at the fault.

9. **A scheduled send can overtake the user's previous one across a Redis failover** (seen in one of
   three runs of "Redis Sentinel: kill -9 primary" on 2026-12-05: 12 of 30 scheduling users, 0 lost,
   0 duplicated; none in the other runs). A job due during the outage was published about 8 s late —
   after the scheduler reconnected to the new primary it picked the job up later than the user's next
   job, due just after the failover — so the two reached the provider swapped. Scheduled sends are
   independent BullMQ jobs: their order per user is their due times', and holds only when those are
   further apart than a failover's delay. **Not fixed**; docs/OPERATIONS.md, "Redis Sentinel", says so.

**Flaky or noisy**: on this 2-core machine shared with other runs, \`rabbitmqctl\` takes 2–35 s to
start, so fault windows are measured from what the fleet saw; rates and recovery times vary run to run by
several seconds. One run of each scenario is a sample, not a proof: the scenarios are bounded (about
1,000–2,000 messages each).`;

/** Each promise of issue-level reliability, with the test that fails if it breaks (docs/RELIABILITY.md). */
export const PROMISES = `## Promises and the tests that prove them

Besides the scenarios below, each of these holds on every \`npm test\`; the test named fails if it breaks.

| promise | proved by |
|---|---|
| A 202 means the broker confirmed that very message: a value AMQP cannot encode (a property over 255 bytes) is refused before a confirm is counted, and the confirms of the next publishes each answer their own message | \`test/shared/publisher-channel.test.ts\` |
| Every value that becomes an AMQP property or header is checked in bytes at the door, with a 400 naming the field (body \`correlationId\`, \`X-Correlation-Id\`, \`idempotencyKey\`, webhook ids); the ingress keeps answering 202 after | \`test/ingress/byte-limits.test.ts\` |
| Generated requests, valid by the schema but extreme in length, script, nesting and header values, single and in batches, among ordinary traffic: only 202/200/400, every 202 delivered exactly once and in order per user, nothing published for a 4xx | \`test/ingress/property.test.ts\` (fast-check) |
| A 503 after a confirm timeout says \`"outcome": "unknown"\`; a retry with the same idempotency key is published under the same id and reaches the user once | \`test/ingress/unknown-outcome.test.ts\` |
| A channel the broker closes fails only the publishes in flight on it; the next publish opens a new one | \`test/shared/publisher-channel.test.ts\` |
| Nothing is confirmed into the void: a publish that reaches no queue (a binding deleted under load) is answered 503, never 202, and a worker's is retried until the route is back; every 202 reaches the provider once | \`test/ingress/unroutable.test.ts\` |
| \`/readyz\` goes red while publishing fails or a lane is not consumed; \`/healthz\` fails once that lasts \`HEALTH_STUCK_AFTER_MS\`; both recover by themselves (a probe publish heals an idle publisher) | \`test/shared/publisher-channel.test.ts\`, \`test/shared/health.test.ts\` |
| No user is stuck forever: a held user whose head's retry copy is lost flows again, in order, within \`HOLD_GRACE_MS\` + 2 × the shortest tier | \`test/ordering/hold-heal.test.ts\`, \`test/ordering/hold-rules.test.ts\` |
| Every wait has a deadline: a Redis that accepts connections and never answers gives 503 within \`PUBLISH_TIMEOUT_MS\` and does not freeze lease renewal; provider and bot-handler calls have an overall deadline and a response-size cap | \`test/shared/redis-deadlines.test.ts\`, \`test/sender/http-deadlines.test.ts\`; scenario "Redis frozen 10 s" |
| Poison on the urgent lane (a classic priority queue keeps no delivery count) reaches the DLQ after \`DELIVERY_LIMIT\` deliveries | \`test/urgent/poison.test.ts\` |
| A user's shard is the publisher's choice (jump consistent hash of the user, the same in every process and version) and the broker routes it by durable bindings only: no broker restart, node loss or whole-cluster restart moves a user; replays and retries return to that shard | \`test/topology/shard.test.ts\`, \`test/dlq/decode.test.ts\`; scenarios "RabbitMQ restart", "cluster: rolling restart", "cluster: whole-cluster stop and start" |
| Content the Cloud API can never take (nesting over 16 levels, over 128 KiB, over its field limits) is a 400, never a 503 | \`test/ingress/content-bounds.test.ts\` |

A binding deleted under load: \`test/ingress/unroutable.test.ts\` (the urgent lanes, audited message by
message) and the scenario "send bindings deleted 10 s" below. A deleted shard binding makes that
shard's publishes unroutable (503 at the ingress, a retry in the workers) until it is back; it never sends
a user to another shard, because the publisher, not the broker, picks the shard.
`;
