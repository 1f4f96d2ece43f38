import { expect } from 'chai';
import { loadConfig } from '../../shared/platform/config.js';
import { topologyFromConfig } from '../../shared/amqp/runtime.js';
import type { Stage } from '../../shared/amqp/topology/names.js';
import { envFile, kubectlAvailable, kustomize, read, yamlDocs, type Doc } from './repo.js';

const K8S = 'infra/k8s';
/** The stage each worker service consumes (the image's command, args[0]). */
const STAGE_OF: Record<string, Stage> = { dispatcher: 'dispatch', sender: 'send' };

/** The topology the ConfigMap's TOPOLOGY_PREFIX and SHARDS give (the services' defaults for the rest). */
function topologyOf(config: Record<string, string>) {
  const env = Object.fromEntries(['TOPOLOGY_PREFIX', 'SHARDS'].filter((k) => config[k] !== undefined).map((k) => [k, config[k]]));
  return topologyFromConfig(loadConfig(env));
}

/**
 * The queues a Deployment's pods consume: its stage's shards unless WORKER_LANES=urgent, its urgent
 * lane unless WORKER_LANES=ordered, under the ConfigMap's TOPOLOGY_PREFIX and SHARDS.
 */
function consumedQueues(d: Doc, config: Record<string, string>): { stage: Stage; queues: string[] } {
  const c = d.spec.template.spec.containers[0] as Doc;
  const stage = STAGE_OF[c.args?.[0]];
  expect(stage, `${d.metadata.name} runs a stage worker`).to.be.a('string');
  const lanes = ((c.env ?? []) as Doc[]).find((e) => e.name === 'WORKER_LANES')?.value ?? config.WORKER_LANES ?? 'all';
  const t = topologyOf(config);
  const queues: string[] = [];
  if (lanes !== 'urgent') for (let i = 0; i < t.options.shards; i++) queues.push(t.names.shardQueue(stage, i));
  if (lanes !== 'ordered') queues.push(t.names.urgent(stage));
  return { stage, queues };
}

/**
 * Every ScaledObject scales its Deployment on the depth of exactly the queues that Deployment
 * consumes: each of them matches the trigger, no other queue of the topology does (another stage's,
 * an urgent lane a dedicated Deployment drains, the retry tiers, the DLQ).
 */
function checkTriggers(docs: Doc[], config: Record<string, string>, where: string): void {
  const t = topologyOf(config);
  const every = t.queues.map((q) => q.name);
  const scaled = docs.filter((d) => d.kind === 'ScaledObject');
  expect(scaled.length, `${where}: ScaledObjects`).to.be.greaterThan(0);
  for (const so of scaled) {
    const name = `${where}: ${so.metadata.name}`;
    const target = docs.find((d) => d.kind === 'Deployment' && d.metadata.name === so.spec.scaleTargetRef.name);
    expect(target, `${name} scales a Deployment that exists`).to.exist;
    // The HPA owns the count; a replicas field would fight it on every apply.
    expect(target!.spec.replicas, `${name}: ${target!.metadata.name} has no replicas field`).to.equal(undefined);
    const { queues } = consumedQueues(target!, config);
    expect(so.spec.maxReplicaCount, `${name}: beyond SHARDS replicas the extra ones idle`).to.be.at.most(t.options.shards);
    for (const trigger of so.spec.triggers as Doc[]) {
      expect(trigger.type).to.equal('rabbitmq');
      expect(trigger.metadata).to.include({ protocol: 'http', useRegex: 'true', operation: 'sum', mode: 'QueueLength' });
      const re = new RegExp(trigger.metadata.queueName);
      expect(every.filter((q) => re.test(q)), `${name}: the queues its trigger sums`).to.have.members(queues);
    }
  }
}

/** The data of the rendered ConfigMap the Deployments read (its name carries a content hash). */
function renderedConfig(docs: Doc[]): Record<string, string> {
  const cm = docs.find((d) => d.kind === 'ConfigMap' && String(d.metadata.name).startsWith('postmaster-config'));
  expect(cm, 'the postmaster-config ConfigMap').to.exist;
  return cm!.data as Record<string, string>;
}

describe('KEDA triggers (infra/k8s)', () => {
  it('scale the base\'s dispatcher and sender on their shards and urgent lane, and nothing else', () => {
    const docs = ['dispatcher.yaml', 'sender.yaml', 'keda.yaml'].flatMap((f) => yamlDocs(read(`${K8S}/base/${f}`), f));
    checkTriggers(docs, envFile(`${K8S}/base/config.env`), 'base');
    expect(docs.filter((d) => d.kind === 'ScaledObject').map((s) => s.spec.scaleTargetRef.name)).to.have.members(['postmaster-dispatcher', 'postmaster-sender']);
    const auth = docs.find((d) => d.kind === 'TriggerAuthentication')!;
    expect(auth.spec.secretTargetRef).to.deep.include({ parameter: 'host', name: 'postmaster-keda-secrets', key: 'RABBITMQ_MANAGEMENT_URL' });
  });

  it('tell an ordered lane from an urgent one: an ordered-only Deployment scaled on an urgent queue fails the check', () => {
    const docs = ['dispatcher.yaml', 'keda.yaml'].flatMap((f) => yamlDocs(read(`${K8S}/base/${f}`), f)).filter((d) => d.kind !== 'ScaledObject' || d.metadata.name === 'postmaster-dispatcher');
    const dispatcher = docs.find((d) => d.kind === 'Deployment')!;
    dispatcher.spec.template.spec.containers[0].env.push({ name: 'WORKER_LANES', value: 'ordered' });
    expect(() => checkTriggers(docs, envFile(`${K8S}/base/config.env`), 'mutated')).to.throw(/the queues its trigger sums/);
  });

  describe('rendered with kubectl kustomize (no cluster needed)', function () {
    before(async function () {
      if (!(await kubectlAvailable())) this.skip();
    });

    for (const dir of ['base', 'overlays/local', 'overlays/production']) {
      it(`scale every KEDA-scaled Deployment of ${dir} on exactly the lanes it consumes`, async () => {
        const docs = await kustomize(`${K8S}/${dir}`);
        checkTriggers(docs, renderedConfig(docs), dir);
      });
    }

    it('leave production\'s urgent lanes out of the ordered-only Deployments\' triggers', async () => {
      const docs = await kustomize(`${K8S}/overlays/production`);
      for (const [svc, stage] of Object.entries(STAGE_OF)) {
        const so = docs.find((d) => d.kind === 'ScaledObject' && d.metadata.name === `postmaster-${svc}`)!;
        const { queues } = consumedQueues(docs.find((d) => d.kind === 'Deployment' && d.metadata.name === `postmaster-${svc}`)!, renderedConfig(docs));
        expect(queues, `${svc} consumes no urgent queue`).to.not.include(`postmaster.${stage}.urgent`);
        expect(new RegExp(so.spec.triggers[0].metadata.queueName).test(`postmaster.${stage}.urgent`), `${svc}'s trigger`).to.equal(false);
      }
    });
  });
});
