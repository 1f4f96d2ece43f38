/**
 * A small NetworkPolicy evaluator for the infra tests: whether a connection from one peer to another
 * on a TCP port is allowed by a namespace's policies, as the Kubernetes semantics say. A pod no
 * policy selects for a direction is open in that direction; a selected pod admits only what one of
 * the rules selecting it admits; a connection needs the source's egress and the destination's
 * ingress. Peers outside the cluster are given by IP, pods by labels and namespace labels.
 */
import type { Doc } from './repo.js';

export interface Peer {
  /** A pod's labels; absent for an address outside the cluster. */
  labels?: Record<string, string>;
  /** Labels of the pod's namespace (kubernetes.io/metadata.name at least). */
  ns?: Record<string, string>;
  /** An address outside the cluster. */
  ip?: string;
  /** Shown in assertion messages. */
  name: string;
}

interface Requirement {
  key: string;
  operator: 'In' | 'NotIn' | 'Exists' | 'DoesNotExist';
  values?: string[];
}

/** A label selector (matchLabels and matchExpressions); `{}` selects everything. */
export function selects(selector: Doc | undefined, labels: Record<string, string>): boolean {
  if (!selector) return false;
  const byLabel = Object.entries(selector.matchLabels ?? {}).every(([k, v]) => labels[k] === v);
  const byExpr = ((selector.matchExpressions ?? []) as Requirement[]).every((r) => {
    const has = r.key in labels;
    if (r.operator === 'Exists') return has;
    if (r.operator === 'DoesNotExist') return !has;
    const inValues = has && (r.values ?? []).includes(labels[r.key]);
    return r.operator === 'In' ? inValues : !inValues;
  });
  return byLabel && byExpr;
}

function ipToInt(ip: string): number {
  return ip.split('.').reduce((n, o) => n * 256 + Number(o), 0);
}

function inCidr(ip: string, cidr: string): boolean {
  const [base, bits] = cidr.split('/');
  const size = 2 ** (32 - Number(bits));
  return Math.floor(ipToInt(ip) / size) === Math.floor(ipToInt(base) / size);
}

/** Whether a `from`/`to` entry names `peer`, for a policy in namespace `policyNs`. */
function peerMatches(entry: Doc, peer: Peer, policyNs: Record<string, string>): boolean {
  if (entry.ipBlock) {
    return peer.ip !== undefined && inCidr(peer.ip, entry.ipBlock.cidr) && !(entry.ipBlock.except ?? []).some((c: string) => inCidr(peer.ip!, c));
  }
  if (!peer.labels) return false;
  const ns = peer.ns ?? policyNs;
  const nsOk = entry.namespaceSelector ? selects(entry.namespaceSelector, ns) : ns['kubernetes.io/metadata.name'] === policyNs['kubernetes.io/metadata.name'];
  const podOk = entry.podSelector ? selects(entry.podSelector, peer.labels) : true;
  return nsOk && podOk;
}

function portMatches(rule: Doc, port: number): boolean {
  const ports = (rule.ports ?? []) as Doc[];
  return ports.length === 0 || ports.some((p) => (p.protocol ?? 'TCP') === 'TCP' && p.port === port);
}

/** Whether the policies that select `pod` for `direction` let `other` through on `port`. */
function admits(policies: Doc[], pod: Peer, direction: 'Ingress' | 'Egress', other: Peer, port: number, ns: Record<string, string>): boolean {
  const mine = policies.filter((p) => selects(p.spec.podSelector, pod.labels!) && (p.spec.policyTypes ?? ['Ingress']).includes(direction));
  if (mine.length === 0) return true;
  const key = direction === 'Ingress' ? 'ingress' : 'egress';
  const peers = direction === 'Ingress' ? 'from' : 'to';
  return mine.some((p) =>
    ((p.spec[key] ?? []) as Doc[]).some((rule) => portMatches(rule, port) && (rule[peers] === undefined || (rule[peers] as Doc[]).some((e) => peerMatches(e, other, ns)))),
  );
}

/**
 * Whether `from` may open a TCP connection to `to` on `port`, given the NetworkPolicies of the
 * namespace `ns` (its labels). Pods without `ns` are in that namespace.
 */
export function allowed(policies: Doc[], ns: Record<string, string>, from: Peer, to: Peer, port: number): boolean {
  const here = (p: Peer) => p.labels !== undefined && (p.ns === undefined || p.ns['kubernetes.io/metadata.name'] === ns['kubernetes.io/metadata.name']);
  const out = here(from) ? admits(policies, from, 'Egress', to, port, ns) : true;
  const into = here(to) ? admits(policies, to, 'Ingress', from, port, ns) : true;
  return out && into;
}
