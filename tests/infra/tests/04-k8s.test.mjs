// Cross-reference checks on each rendered environment (k8s/overlays/<env>),
// and on broken overlays (tests/infra/fixtures/broken/k8s/<case>) that each
// check must reject.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ENVS, render, rel, kubectlSkip, listBroken, fixtureMeta, assertRejected, find } from '../lib/common.mjs';
import * as K from '../lib/k8s-checks.mjs';
import * as F from '../lib/flows.mjs';

const skip = kubectlSkip();
export const CHECKS = {
  services: K.checkServices, canaries: K.checkCanaries, scaling: K.checkScaling, pdbs: K.checkPdbs,
  workloads: K.checkWorkloads, servicemonitors: K.checkServiceMonitors, secrets: K.checkSecrets,
  'env-has-services': K.checkEnvHasServices, networkpolicies: F.checkNetworkPolicies, authorization: F.checkAuthorization,
};
const TITLES = {
  services: 'Services select existing pods and target container ports',
  canaries: 'Canaries: targets/HPAs exist, success-rate + duration + "100 - success%" template, smoke + load webhooks, maxWeight multiple of stepWeight, no hand-written Flagger objects',
  scaling: 'HPAs target existing Deployments; no replicas where HPA/Flagger own scale',
  pdbs: 'every Deployment has a PodDisruptionBudget selecting its pods',
  workloads: 'workloads: probes, resources, security context, config refs, drain < grace period, matching Guaranteed QoS + priority + anti-affinity + pool',
  servicemonitors: 'ServiceMonitors select Services (hand-written or Flagger-generated)',
  secrets: 'no plaintext Secret in the manifests',
  'env-has-services': 'every service has all its objects',
  networkpolicies: 'NetworkPolicies allow exactly the design\'s flows (default deny)',
  authorization: 'Istio: STRICT mTLS, allow-nothing default, each service admits exactly its callers',
};

for (const e of ENVS) for (const [name, fn] of Object.entries(CHECKS))
  test(`${e}: ${TITLES[name]}`, { skip }, () => assert.deepEqual(fn(render(`k8s/overlays/${e}`)), []));

test('envs differ where they must: log level, HPA bounds, policy mode label, resources', { skip }, () => {
  const get = e => render(`k8s/overlays/${e}`);
  const lvl = e => find(get(e), 'ConfigMap', 'gateway-config').data.LOG_LEVEL;
  assert.deepEqual(ENVS.map(lvl), ['debug', 'info', 'warn']);
  const mode = e => find(get(e), 'Namespace', 'exchange').metadata.labels['exchange-lab.io/policy'];
  assert.deepEqual(ENVS.map(mode), ['audit', 'enforce', 'enforce']);
  const max = e => find(get(e), 'HorizontalPodAutoscaler', 'gateway').spec.maxReplicas;
  assert.ok(max('dev') < max('stg') && max('stg') < max('prod'), 'HPA bounds grow dev < stg < prod');
  const host = e => find(get(e), 'Canary', 'gateway').spec.service.hosts;
  assert.deepEqual(ENVS.map(host).map(h => h[1]), ['api.dev.exchange-lab.example', 'api.stg.exchange-lab.example', 'api.exchange-lab.example']);
});

for (const d of listBroken('k8s', { dirs: true })) {
  const meta = fixtureMeta(fs.readFileSync(path.join(d, 'kustomization.yaml'), 'utf8'));
  test(`broken k8s: ${path.basename(d)} is rejected by the ${meta.check} check`, { skip }, () => {
    assert.ok(CHECKS[meta.check], `${rel(d)}: unknown "# check: ${meta.check}"`);
    assertRejected(CHECKS[meta.check](render(d)), meta.expect, rel(d));
  });
}
