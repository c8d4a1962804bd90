// Platform wiring: chart values, env endpoints from terraform outputs,
// NetworkPolicy CIDRs = VPC CIDRs, Istio ingress JWT per env.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, ENVS, loadDocs, loadOne, render, kubectl, KUBECTL_SKIP, find } from '../lib/common.mjs';

const skip = kubectl().ok ? false : KUBECTL_SKIP;
const tfvars = e => fs.readFileSync(path.join(ROOT, `terraform/envs/${e}/terraform.tfvars`), 'utf8');
const tfv = (e, k) => (new RegExp(`^${k}\\s*=\\s*"([^"]+)"`, 'm').exec(tfvars(e)) || [])[1];

test('our platform values files exist and parse (istio, flagger, prometheus-operator, external-secrets, kyverno, gatekeeper)', () => {
  const dir = path.join(ROOT, 'k8s/platform/values');
  for (const n of ['istio-base', 'istiod', 'istio-cni', 'istio-ingress', 'flagger', 'flagger-loadtester', 'kube-prometheus-stack', 'external-secrets', 'kyverno', 'gatekeeper'])
    loadDocs(path.join(dir, `${n}.yaml`));
  const f = loadOne(path.join(dir, 'flagger.yaml'));
  assert.equal(f.meshProvider, 'istio');
  assert.match(f.metricsServer, /kube-prometheus-stack-prometheus\.monitoring/);
});

for (const e of ENVS) test(`${e}: endpoints.env keys map to terraform outputs; data-store NetworkPolicies use the VPC CIDR`, { skip }, () => {
  const env = fs.readFileSync(path.join(ROOT, `k8s/overlays/${e}/mesh/endpoints.env`), 'utf8');
  const outs = fs.readFileSync(path.join(ROOT, `terraform/envs/${e}/outputs.tf`), 'utf8');
  const MAP = { KAFKA_BROKERS: 'msk_bootstrap_brokers_sasl_scram', DATABASE_HOST: 'aurora_endpoint', DATABASE_READER_HOST: 'aurora_reader_endpoint', REDIS_HOST: 'redis_primary_endpoint' };
  for (const [k, o] of Object.entries(MAP)) {
    assert.match(env, new RegExp(`^${k}=\\S+`, 'm'), `${e}: ${k} missing`);
    assert.match(outs, new RegExp(`output "${o}"`), `${e}: terraform output ${o} missing`);
  }
  assert.match(env, new RegExp(`exchange-${e}\\.`), `${e}: endpoints do not name the ${e} resources`);
  const objs = render(`k8s/overlays/${e}`);
  const cidr = tfv(e, 'vpc_cidr');
  for (const np of objs.filter(o => o.kind === 'NetworkPolicy' && /^allow-(postgres|redis|kafka)-egress$/.test(o.metadata.name)))
    assert.equal(np.spec.egress[0].to[0].ipBlock.cidr, cidr, `${e}: ${np.metadata.name}`);
  const css = find(objs, 'ClusterSecretStore', 'aws-secrets-manager');
  assert.equal(css.spec.provider.aws.region, tfv(e, 'region'));
});

for (const e of ENVS) test(`${e}: ingress Gateway host = terraform api_host; JWT required at the ingress except public paths`, { skip }, () => {
  const objs = render(`k8s/platform/istio-ingress/${e}`);
  const host = tfv(e, 'api_host');
  assert.deepEqual(find(objs, 'Gateway', 'public').spec.servers.map(s => s.hosts[0]), [host, host]);
  const ra = find(objs, 'RequestAuthentication', 'public-jwt');
  assert.equal(ra.spec.jwtRules[0].issuer, `https://${host}`);
  const ap = find(objs, 'AuthorizationPolicy', 'public-jwt');
  const jwtRule = ap.spec.rules.find(r => r.from);
  assert.deepEqual(jwtRule.from[0].source.requestPrincipals, [`https://${host}/*`]);
  assert.ok(objs.every(o => o.metadata.namespace === 'istio-ingress'));
  const canary = find(render(`k8s/overlays/${e}`), 'Canary', 'gateway');
  assert.ok(canary.spec.service.hosts.includes(host) && canary.spec.service.gateways.includes('istio-ingress/public'));
});
