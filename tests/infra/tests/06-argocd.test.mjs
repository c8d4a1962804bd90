// ArgoCD: AppProjects, root Application per env -> child Applications per
// service and platform component; child paths exist and render.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, ENVS, loadDocs, loadOne, render, rel, kubectlSkip, listBroken, fixtureMeta, assertRejected, walk } from '../lib/common.mjs';
import { checkApps, checkProjects, checkBootstrap } from '../lib/argocd-checks.mjs';

const skip = kubectlSkip();
const projects = () => walk(path.join(ROOT, 'argocd/projects'), p => p.endsWith('.yaml') && !p.endsWith('kustomization.yaml')).flatMap(f => loadDocs(f));
const appsOf = e => ['platform.yaml', 'services.yaml'].flatMap(f => loadDocs(path.join(ROOT, `argocd/apps/${e}`, f)));
const OBS = ['loki', 'tempo', 'grafana', 'alloy'].map(n => `observability/helm/${n}-values.yaml`);
const exists = p => fs.existsSync(path.join(ROOT, p));
// The observability engineer's values files are reported by their own test below.
const pathExists = p => OBS.includes(p) || exists(p);

test('AppProjects restrict sourceRepos and destinations (no *)', () => assert.deepEqual(checkProjects(projects()), []));

for (const e of ENVS) test(`${e}: child Applications (namespace, finalizer, project, pinned charts, value files, sync policy, ignoreDifferences, waves)`, () => {
  assert.deepEqual(checkApps(appsOf(e), projects(), e, { pathExists }), []);
});

for (const e of ENVS) test(`${e}: root Application -> argocd/apps/${e} (same revision as its children)`, { skip }, () => {
  const root = loadOne(path.join(ROOT, `argocd/root/${e}.yaml`));
  assert.equal(root.spec.source.path, `argocd/apps/${e}`);
  assert.deepEqual(checkApps([root], projects(), e, { pathExists }).filter(x => !/no Application for service|sync-wave pair/.test(x)), []);
  const rendered = render(root.spec.source.path);
  const kids = rendered.filter(o => o.kind === 'Application');
  assert.ok(kids.length >= 20, `${e}: only ${kids.length} child apps`);
  for (const k of kids) for (const s of k.spec.sources || [k.spec.source]) if (s.repoURL === root.spec.source.repoURL && !s.ref)
    assert.equal(s.targetRevision, root.spec.source.targetRevision, `${k.metadata.name} tracks ${s.targetRevision}, root tracks ${root.spec.source.targetRevision}`);
});

for (const e of ENVS) test(`${e}: every git path of a child Application exists and renders`, { skip }, () => {
  const bad = [];
  for (const a of appsOf(e)) for (const s of a.spec.sources || [a.spec.source]) if (s.path) {
    try { assert.ok(render(s.path).length > 0); } catch (err) { bad.push(`${a.metadata.name}: ${err.message}`); }
  }
  assert.deepEqual(bad, []);
});

test('argocd bootstrap values carry the Application health check that makes sync waves wait', () => {
  assert.deepEqual(checkBootstrap(loadOne(path.join(ROOT, 'argocd/bootstrap/values.yaml'))), []);
});

test('observability Helm values referenced by the loki/tempo/grafana/alloy Applications exist', () => {
  const missing = OBS.filter(p => !exists(p));
  assert.deepEqual(missing, [], `missing (owned by the observability engineer): ${missing.join(', ')}`);
  for (const p of OBS) loadDocs(path.join(ROOT, p));
});

for (const f of listBroken('argocd')) test(`broken argocd: ${path.basename(f)} is rejected`, () => {
  const text = fs.readFileSync(f, 'utf8'), meta = fixtureMeta(text), docs = loadDocs(f, text);
  const projs = [...projects().filter(p => !docs.some(d => d.kind === 'AppProject' && d.metadata.name === p.metadata.name)), ...docs.filter(d => d.kind === 'AppProject')];
  const apps = docs.filter(d => d.kind === 'Application');
  const errs = meta.check === 'bootstrap' ? checkBootstrap(docs[0]) : [...checkProjects(projs), ...checkApps(apps, projs, meta.env || 'dev')];
  assertRejected(errs, meta.expect, rel(f));
});

for (const e of ENVS) test(`${e}: IRSA role ARNs given to the charts are the roles terraform creates in the ${e} account`, () => {
  const account = /account_id\s*=\s*"([0-9]{12})"/.exec(fs.readFileSync(path.join(ROOT, `terraform/envs/${e}/terraform.tfvars`), 'utf8'))[1];
  const iam = fs.readFileSync(path.join(ROOT, 'terraform/modules/iam/main.tf'), 'utf8');
  assert.match(iam, /name\s*=\s*"\$\{var\.name\}-\$\{each\.key\}"/);
  assert.match(iam, /role_name\s*=\s*"\$\{var\.name\}-aws-load-balancer-controller"/);
  assert.match(fs.readFileSync(path.join(ROOT, `terraform/envs/${e}/main.tf`), 'utf8'), /name = "exchange-\$\{var\.env\}"/);
  const want = { 'external-secrets': `arn:aws:iam::${account}:role/exchange-${e}-external-secrets`,
    'aws-load-balancer-controller': `arn:aws:iam::${account}:role/exchange-${e}-aws-load-balancer-controller` };
  for (const [app, arn] of Object.entries(want)) {
    const a = appsOf(e).find(x => x.metadata.name === `${app}-${e}`);
    const p = a.spec.sources[0].helm.parameters.find(x => x.name === 'serviceAccount.annotations.eks\\.amazonaws\\.com/role-arn');
    assert.equal(p?.value, arn, `${app}-${e}`);
  }
});

test('docs/deploy.md names only files that exist, the pinned argo-cd chart and every wave correctly', () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs/deploy.md'), 'utf8');
  const missing = [];
  for (const m of doc.matchAll(/`([^`\s]+)`/g)) {
    const p = m[1].replace(/\/$/, '');
    if (!/^(terraform|k8s|argocd|policy|services|observability|tests|\.github|docs|\.sops\.yaml)(\/|$)/.test(p) || p.includes('*')) continue;
    const expand = s => s.includes('<env>') ? ENVS.flatMap(e => expand(s.replace('<env>', e)))
      : s.includes('<service>') || s.includes('<name>') ? ['gateway', 'wallet'].flatMap(x => expand(s.replace(/<service>|<name>/, x))) : [s];
    const alts = p.replace(/\{([^}]+)\}/, (_, g) => `{${g}}`);
    const variants = /\{([^}]+)\}/.test(alts) ? /\{([^}]+)\}/.exec(alts)[1].split(',').map(v => alts.replace(/\{[^}]+\}/, v)) : [p];
    for (const v of variants.flatMap(expand)) if (!fs.existsSync(path.join(ROOT, v))) missing.push(v);
  }
  assert.deepEqual([...new Set(missing)], []);
  const version = /argo\/argo-cd chart, version ([0-9.]+)/.exec(fs.readFileSync(path.join(ROOT, 'argocd/bootstrap/values.yaml'), 'utf8'))[1];
  assert.match(doc, new RegExp(`argo/argo-cd --version ${version.replace(/\./g, '\\.')}`));
  const waves = new Map();
  for (const a of appsOf('dev')) waves.set(a.metadata.name.replace(/-dev$/, ''), Number(a.metadata.annotations['argocd.argoproj.io/sync-wave']));
  for (const row of doc.matchAll(/^\| (-?[0-9]) \| (.+) \|$/gm)) for (const n of row[2].matchAll(/`([a-z-]+)`/g))
    if (waves.has(n[1])) assert.equal(waves.get(n[1]), Number(row[1]), `docs put ${n[1]} in wave ${row[1]}`);
  for (const [n, w] of waves) if (!['gateway', 'trading-api', 'matching', 'wallet', 'risk', 'catalog', 'order', 'exchange-mesh'].includes(n))
    assert.match(doc, new RegExp(`\\| ${w} \\|[^\\n]*\`${n}\``), `docs do not list ${n} in wave ${w}`);
});
