/**
 * Runs one scenario: fleet up, steady load, the fault in the middle of it, then wait until every
 * accepted message has reached the provider or the DLQ (or the deadline), and audit.
 */
import { randomBytes } from 'node:crypto';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { LedgerEntry } from '../../services/simulator/server.js';
import { names } from '../../shared/amqp/topology/names.js';
import { acceptedKeys, audit, deadLetterCount, deliveredCount, drainDeadLetters, keyOfEntry, longestGapMs, recoveryMs, type Audit } from './audit.js';
import { Management } from '../../shared/amqp/management.js';
import { ChaosFleet, type Infra } from './fleet.js';
import type { RabbitNode } from '../lib/private-rabbit.js';
import { sleep } from '../lib/wait.js';
import { PacedLoad, usersFor, type LoadCounts } from './load.js';
import type { FaultWindow, RoutesMoved, Scenario } from './scenarios.js';

export interface RunOptions {
  ratePerS: number;
  users: number;
  /** Load duration, at least; the load goes on for `afterFaultMs` after the fault's end. */
  loadMs: number;
  afterFaultMs: number;
  /** Default time of the fault from the load's start. */
  faultAtMs: number;
  /** How long to wait after the load for every accepted message to arrive somewhere, at most… */
  drainMs: number;
  /** …and how long without any progress before giving up earlier. */
  stallMs: number;
  logDir?: string;
  log: (line: string) => void;
}

export interface ScenarioResult {
  name: string;
  audit: Audit | null;
  recoveryMs: number | null;
  longestGapMs: number | null;
  load: LoadCounts | null;
  notes: string[];
  /** From the fault (FaultWindow.routesMoved): shard routes that point at another queue after it. */
  routesMoved?: RoutesMoved | null;
  error?: string;
  tookMs: number;
}

const slug = (name: string) =>
  name
    .replace(/[^a-z0-9]+/gi, '-')
    .replace(/^-|-$/g, '')
    .toLowerCase();

/** Per-second acceptances and deliveries from the load's start, with the fault window (for plots and debugging). */
async function writeTimeline(dir: string, load: PacedLoad, ledger: LedgerEntry[], w: FaultWindow, a: Audit): Promise<void> {
  const t0 = load.startedAt;
  const bucket = (xs: number[]) => {
    const out: number[] = [];
    for (const x of xs) {
      const i = Math.max(0, Math.floor((x - t0) / 1000));
      while (out.length <= i) out.push(0);
      out[i]++;
    }
    return out;
  };
  const accepted = bucket([...load.accepted.values()].flat().map((m) => m.at));
  const delivered = bucket(ledger.map((e) => e.receivedAt));
  await mkdir(dir, { recursive: true });
  if (a.misorderedUsers.length) {
    // Every provider entry of the misordered users: who, which message, when (ms from the load's start), which envelope id.
    const users = new Set(a.misorderedUsers);
    const entries = ledger.filter((e) => users.has(e.to)).map((e) => ({ to: e.to, key: keyOfEntry(e), at: e.receivedAt - t0, id: e.id }));
    const acceptedIds = [...load.accepted.values()].flat().filter((m) => users.has(m.user));
    await writeFile(path.join(dir, 'misordered.json'), JSON.stringify({ entries, accepted: acceptedIds.map((m) => ({ ...m, at: m.at - t0 })) }, null, 1));
  }
  await writeFile(
    path.join(dir, 'timeline.json'),
    JSON.stringify({ faultStartS: (w.faultStart - t0) / 1000, faultEndS: (w.faultEnd - t0) / 1000, loadEndS: (load.endedAt - t0) / 1000, accepted, delivered }),
  );
}

/** Where unaccounted messages may sit: "left in queues: send.03 64 (64 unacked), retry.1s 4" (management API). */
async function queueDepths(fleet: ChaosFleet, node: RabbitNode): Promise<string> {
  const qs = await new Management(node.mgmtUrl).queues(fleet.vhost);
  const prefix = `${fleet.cfg.topologyPrefix}.`;
  const busy = qs
    .filter((q) => q.messages > 0 && !q.name.endsWith('.dlq'))
    .map((q) => `${q.name.replace(prefix, '')} ${q.messages}${q.messages_unacknowledged ? ` (${q.messages_unacknowledged} unacked)` : ''}`);
  return `left in queues: ${busy.join(', ') || 'none'}`;
}

/** Runs one scenario on a fleet that is up (load, fault, drain, audit); the fleet stays up. */
export async function exercise(fleet: ChaosFleet, sc: Scenario, index: number, infra: Infra, o: RunOptions): Promise<ScenarioResult> {
  const began = Date.now();
  const notes: string[] = [];
  try {
    fleet.sim.reset();
    fleet.crashes.length = 0;
    const load = new PacedLoad({
      url: fleet.ingressUrl,
      token: fleet.cfg.ingressApiToken,
      users: usersFor(index, o.users),
      ratePerS: o.ratePerS,
      runId: randomBytes(4).toString('hex'),
      ...(sc.load?.scheduled ? { scheduled: sc.load.scheduled } : {}),
    });
    const loading = load.run();
    await sleep(sc.faultAtMs ?? o.faultAtMs);
    o.log(`  fault: ${sc.name}`);
    const w = await sc.inject({ fleet, infra, log: o.log }).catch((err: Error) => {
      load.finishAt(Date.now());
      throw err;
    });
    notes.push(...w.notes);
    load.finishAt(Math.max(load.startedAt + o.loadMs, w.faultEnd + o.afterFaultMs));
    await loading;
    o.log(`  load done: ${load.acceptedCount} accepted, ${load.counts.unavailable} × 503, ${load.counts.networkErrors} connection errors`);
    if (load.counts.gaveUp) notes.push(`${load.counts.gaveUp} never accepted (last error: ${load.describeLastError()})`);
    if (load.counts.otherErrors) notes.push(`${load.counts.otherErrors} unexpected answers (last: ${load.describeLastError()})`);

    const queues = names(fleet.cfg.topologyPrefix);
    const auditNode = infra.nodes[infra.nodes.length - 1];
    const amqpUrl = fleet.amqpUrlOf(auditNode);
    const keys = acceptedKeys(load.accepted);
    // Wait until everything is accounted for; give up after drainMs, or earlier once nothing has
    // moved for stallMs (longer than the 2-minute retry tier a held user may wait in).
    const deadline = Date.now() + o.drainMs;
    let settled = false;
    let last = -1;
    let lastMove = Date.now();
    while (Date.now() < deadline && Date.now() - lastMove < o.stallMs) {
      const delivered = deliveredCount(fleet.sim.accepted(), keys);
      const dead = delivered >= keys.size ? 0 : await deadLetterCount(amqpUrl, queues.dlq).catch(() => 0);
      if (delivered + dead >= keys.size) {
        settled = true;
        break;
      }
      if (delivered + dead !== last) [last, lastMove] = [delivered + dead, Date.now()];
      await sleep(1000);
    }
    if (!settled) notes.push(`not settled after ${((Date.now() - load.endedAt) / 1000).toFixed(0)} s of waiting`);
    if (!settled) notes.push(await queueDepths(fleet, auditNode).catch((err: Error) => `queue depths unavailable: ${err.message}`));
    await sleep(3000); // late copies (redeliveries) still count as duplicates
    const ledger = fleet.sim.accepted();
    const dead = await drainDeadLetters(amqpUrl, queues.dlq);
    const a = audit(load.accepted, ledger, dead);
    if (a.lost) notes.push(`lost e.g. ${a.lostSample.slice(0, 3).join(', ')}`);
    if (Object.keys(a.deadReasons).length) notes.push(`DLQ: ${JSON.stringify(a.deadReasons)}`);
    if (a.misorderedUsers.length) notes.push(`${a.misorderedUsers.length} user(s) out of order, e.g. ${a.misorderedSample[0]}`);
    notes.push(...fleet.describeCrashes());
    if (load.counts.unavailable) notes.push(`${load.counts.unavailable} × 503`);
    if (load.counts.networkErrors) notes.push(`${load.counts.networkErrors} connection errors`);
    const rec = recoveryMs(ledger, { loadStart: load.startedAt, faultStart: w.faultStart, faultEnd: w.faultEnd, nominalRate: o.ratePerS });
    const gap = longestGapMs(ledger, w.faultStart, load.endedAt);
    if (o.logDir) await writeTimeline(path.join(o.logDir, slug(sc.name)), load, ledger, w, a).catch(() => undefined);
    return { name: sc.name, audit: a, recoveryMs: rec, longestGapMs: gap, load: load.counts, notes, routesMoved: w.routesMoved, tookMs: Date.now() - began };
  } catch (err) {
    o.log(`  FAILED: ${(err as Error).stack ?? String(err)}`);
    return { name: sc.name, audit: null, recoveryMs: null, longestGapMs: null, load: null, notes, error: (err as Error).message, tookMs: Date.now() - began };
  }
}

/** A fresh fleet for the scenario, exercise(), then the fleet's logs saved and the fleet closed. */
export async function runScenario(sc: Scenario, index: number, infra: Infra, o: RunOptions): Promise<ScenarioResult> {
  const began = Date.now();
  let fleet: ChaosFleet;
  try {
    fleet = await ChaosFleet.start(infra, slug(sc.name), sc.shape);
  } catch (err) {
    o.log(`  FAILED to start the fleet: ${(err as Error).stack ?? String(err)}`);
    return {
      name: sc.name,
      audit: null,
      recoveryMs: null,
      longestGapMs: null,
      load: null,
      notes: [],
      error: (err as Error).message,
      tookMs: Date.now() - began,
    };
  }
  o.log(`  fleet up in ${((Date.now() - began) / 1000).toFixed(1)} s (vhost ${fleet.vhost})`);
  try {
    const r = await exercise(fleet, sc, index, infra, o);
    return { ...r, tookMs: Date.now() - began };
  } finally {
    if (o.logDir) await fleet.saveLogs(path.join(o.logDir, slug(sc.name))).catch(() => undefined);
    await fleet.close();
  }
}
