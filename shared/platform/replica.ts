/**
 * How a replica names itself to the broker, so that the management UI (and `rabbitmqctl
 * list_connections` / `list_consumers`) tells the replicas of a service apart: connection names
 * `<name>@<replica>` (`postmaster-sender@postmaster-sender-7d9f8-x2k4q`) and consumer tags
 * `<name>@<replica>:<queue>`.
 */
import os from 'node:os';

/** AMQP short strings (a consumer tag) hold at most 255 bytes. */
const SHORTSTR_MAX = 255;

/**
 * This process, when nothing names the replica (REPLICA_ID): the pod name (HOSTNAME, which
 * Kubernetes sets to it) or the machine's host name, and the pid.
 */
export function processReplicaId(env: NodeJS.ProcessEnv = process.env): string {
  return `${env.HOSTNAME || os.hostname()}-${process.pid}`;
}

/** The `connection_name` client property of a connection: `<name>@<replica>`. */
export function connectionName(name: string, replica: string): string {
  return `${name}@${replica}`;
}

/**
 * The consumer tag of a subscription: `<name>@<replica>:<queue>`. Tags are unique per channel
 * only, and every subscription here has a channel of its own. A tag past 255 bytes has its replica
 * name shortened, so that the queue always shows.
 */
export function consumerTag(name: string, replica: string, queue: string): string {
  const tag = `${name}@${replica}:${queue}`;
  if (Buffer.byteLength(tag) <= SHORTSTR_MAX) return tag;
  const room = SHORTSTR_MAX - Buffer.byteLength(`${name}@:${queue}`);
  const short =
    room > 0
      ? Buffer.from(replica)
          .subarray(0, room)
          .toString()
          .replace(/\uFFFD$/, '')
      : '';
  return Buffer.from(`${name}@${short}:${queue}`)
    .subarray(0, SHORTSTR_MAX)
    .toString()
    .replace(/\uFFFD$/, '');
}
