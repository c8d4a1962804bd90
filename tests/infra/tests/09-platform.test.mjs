// Platform wiring: chart values, env endpoints from terraform outputs,
// NetworkPolicy CIDRs = VPC CIDRs, Istio ingress JWT per env.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, ENVS, loadDocs, loadOne, render, rel, kubectlSkip, find, listBroken, fixtureMeta, assertRejected } from '../lib/common.mjs';

const skip = kubectlSkip();
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

// The env's endpoints (ConfigMap platform-endpoints from endpoints.env), data-store
// NetworkPolicies and secret store against terraform/envs/<env>. -> problems
function endpointErrors(objs, e) {
  const errs = [];
  const outs = fs.readFileSync(path.join(ROOT, `terraform/envs/${e}/outputs.tf`), 'utf8');
  const cm = find(objs, 'ConfigMap', 'platform-endpoints');
  if (!cm) return [`${e}: no ConfigMap platform-endpoints`];
  const MAP = { KAFKA_BROKERS: 'msk_bootstrap_brokers_sasl_scram', DATABASE_HOST: 'aurora_endpoint', DATABASE_READER_HOST: 'aurora_reader_endpoint', REDIS_HOST: 'redis_primary_endpoint' };
  for (const [k, o] of Object.entries(MAP)) {
    if (!cm.data?.[k]) errs.push(`${e}: ${k} missing from platform-endpoints`);
    else if (!cm.data[k].includes(`exchange-${e}.`)) errs.push(`${e}: ${k}=${cm.data[k]} does not name the exchange-${e} resources`);
    if (!new RegExp(`output "${o}"`).test(outs)) errs.push(`${e}: terraform output ${o} missing`);
  }
  const cidr = tfv(e, 'vpc_cidr');
  for (const k of ['postgres', 'redis', 'kafka']) {
    const np = find(objs, 'NetworkPolicy', `allow-${k}-egress`);
    const got = np?.spec.egress?.[0]?.to?.[0]?.ipBlock?.cidr;
    if (got !== cidr) errs.push(`${e}: allow-${k}-egress goes to ${got}, the VPC is ${cidr}`);
  }
  const css = find(objs, 'ClusterSecretStore', 'aws-secrets-manager');
  if (css?.spec.provider.aws.region !== tfv(e, 'region')) errs.push(`${e}: ClusterSecretStore region is not ${tfv(e, 'region')}`);
  return errs;
}

for (const e of ENVS) test(`${e}: endpoints.env keys map to terraform outputs; data-store NetworkPolicies use the VPC CIDR`, { skip }, () => {
  assert.deepEqual(endpointErrors(render(`k8s/overlays/${e}`), e), []);
});

for (const d of listBroken('endpoints', { dirs: true })) test(`broken endpoints: ${path.basename(d)} is rejected`, { skip }, () => {
  const meta = fixtureMeta(fs.readFileSync(path.join(d, 'kustomization.yaml'), 'utf8'));
  assertRejected(endpointErrors(render(d), meta.env), meta.expect, rel(d));
});

for (const e of ENVS) test(`${e}: ALB (ACM cert, WAF, HTTPS only) -> Gateway host = terraform api_host; JWT required at the ingress except public paths`, { skip }, () => {
  const objs = render(`k8s/platform/istio-ingress/${e}`);
  const ra = find(objs, 'RequestAuthentication', 'public-jwt');
  const host = tfv(e, 'api_host');
  assert.deepEqual(find(objs, 'Gateway', 'public').spec.servers.map(s => s.hosts), [[host]]);
  const ing = find(objs, 'Ingress', 'public');
  assert.deepEqual(ing.spec.tls[0].hosts, [host], 'ALB certificate (ACM, discovered from tls hosts) is for api_host');
  assert.equal(ing.spec.rules[0].host, host);
  assert.match(ing.metadata.annotations['alb.ingress.kubernetes.io/wafv2-acl-arn'], new RegExp(`^arn:aws:wafv2:${tfv(e, 'region')}:${tfv(e, 'account_id')}:regional/webacl/exchange-${e}/`), 'WAF of this env');
  assert.equal(ing.metadata.annotations['alb.ingress.kubernetes.io/listen-ports'], '[{"HTTPS": 443}]', 'HTTPS only');
  assert.equal(ing.spec.rules[0].http.paths[0].backend.service.name, loadOne(path.join(ROOT, 'k8s/platform/values/istio-ingress.yaml')).serviceAccount.name);
  // The gateway issues the tokens the ingress verifies: same issuer, audience, published keys.
  const gwcfg = find(render(`k8s/overlays/${e}`), 'ConfigMap', 'gateway-config').data;
  assert.equal(ra.spec.jwtRules[0].issuer, gwcfg.JWT_ISSUER, 'RequestAuthentication issuer = gateway JWT_ISSUER');
  assert.deepEqual(ra.spec.jwtRules[0].audiences, [gwcfg.JWT_AUDIENCE]);
  assert.match(gwcfg.JWT_ALG, /^(RS|ES)256$/, 'the ingress needs an asymmetric algorithm to verify with JWKS');
  const routes = fs.readFileSync(path.join(ROOT, 'services/gateway/routes.c'), 'utf8');
  const jwksPath = new URL(ra.spec.jwtRules[0].jwksUri).pathname;
  assert.ok(routes.includes(`"${jwksPath}"`), `gateway serves no ${jwksPath}`);
  assert.equal(ra.spec.jwtRules[0].jwksUri, `https://${host}${jwksPath}`);
  assert.equal(ra.spec.jwtRules[0].issuer, `https://${host}`);
  const ap = find(objs, 'AuthorizationPolicy', 'public-jwt');
  const jwtRule = ap.spec.rules.find(r => r.from);
  assert.ok(ap.spec.rules.some(r => !r.from && r.to.some(t => (t.operation.paths || []).includes(new URL(ra.spec.jwtRules[0].jwksUri).pathname))), 'the JWKS must be public at the ingress');
  assert.deepEqual(jwtRule.from[0].source.requestPrincipals, [`https://${host}/*`]);
  assert.ok(objs.every(o => o.metadata.namespace === 'istio-ingress'));
  const canary = find(render(`k8s/overlays/${e}`), 'Canary', 'gateway');
  assert.ok(canary.spec.service.hosts.includes(host) && canary.spec.service.gateways.includes('istio-ingress/public'));
});

for (const e of ENVS) test(`${e}: Karpenter NodePool is amd64 with encrypted disks and IMDSv2; EC2NodeClass uses terraform's node role and discovery tags`, { skip }, () => {
  const objs = render(`k8s/platform/karpenter/${e}`);
  const nc = find(objs, 'EC2NodeClass', 'default'), np = find(objs, 'NodePool', 'general');
  const eks = fs.readFileSync(path.join(ROOT, 'terraform/modules/eks/main.tf'), 'utf8');
  assert.match(eks, /node_iam_role_name\s*=\s*"\$\{var\.name\}-karpenter-node"/);
  assert.match(eks, /queue_name\s*=\s*"\$\{var\.name\}-karpenter"/);
  assert.equal(nc.spec.role, `exchange-${e}-karpenter-node`);
  for (const t of [...nc.spec.subnetSelectorTerms, ...nc.spec.securityGroupSelectorTerms]) assert.equal(t.tags['karpenter.sh/discovery'], `exchange-${e}`);
  assert.ok(nc.spec.blockDeviceMappings.every(b => b.ebs.encrypted === true), 'unencrypted node disk');
  assert.equal(nc.spec.metadataOptions.httpTokens, 'required');
  assert.ok(!/@latest$/.test(nc.spec.amiSelectorTerms[0].alias || ''), 'AMI alias must be pinned');
  assert.deepEqual(np.spec.template.spec.requirements.find(r => r.key === 'kubernetes.io/arch').values, ['amd64']);
  const app = loadDocs(path.join(ROOT, `argocd/apps/${e}/platform.yaml`)).find(a => a.metadata.name === `karpenter-${e}`);
  const params = Object.fromEntries(app.spec.sources[0].helm.parameters.map(p => [p.name, p.value]));
  assert.deepEqual(params, { 'settings.clusterName': `exchange-${e}`, 'settings.interruptionQueue': `exchange-${e}-karpenter` });
});

for (const e of ENVS) test(`${e}: gateway upstream env vars (services/gateway/routes.json) point at the services, and the ingress lets no auth-required route through without a JWT`, { skip }, () => {
  const routes = JSON.parse(fs.readFileSync(path.join(ROOT, 'services/gateway/routes.json'), 'utf8'));
  const gw = find(render(`k8s/overlays/${e}`), 'ConfigMap', 'gateway-config').data;
  for (const [svc, u] of Object.entries(routes.upstreams)) assert.equal(gw[u.env], `http://${svc}:8080`, `${e}: gateway ${u.env}`);
  const ap = find(render(`k8s/platform/istio-ingress/${e}`), 'AuthorizationPolicy', 'public-jwt');
  const open = ap.spec.rules.filter(r => !r.from).flatMap(r => r.to.flatMap(t => t.operation.paths || []));
  for (const r of routes.routes.filter(x => x.auth === 'required'))
    for (const p of open) assert.ok(!(r.prefix + '/').startsWith(p.replace(/\*$/, '')) && !p.replace(/\*$/, '').startsWith(r.prefix), `${e}: ingress path ${p} is public but gateway route ${r.prefix} requires auth`);
});
