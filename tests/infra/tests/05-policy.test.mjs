// Admission policies: every CEL expression is evaluated (@bufbuild/cel)
// against policy/fixtures (pass/ must pass all, fail/<rule>.yaml must fail
// exactly <rule>) and against every rendered stg/prod overlay.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, ENVS, walk, loadDocs, render, rel, kubectlSkip, id, loadOne, listBroken, fixtureMeta, assertRejected } from '../lib/common.mjs';
import { loadRules, evaluate } from '../lib/cel.mjs';

const skip = kubectlSkip();
// The base is read file by file (no kubectl needed): the CEL is the same in every env.
const baseObjs = () => loadOne(path.join(ROOT, 'policy/base/kustomization.yaml')).resources.flatMap(r => loadDocs(path.join(ROOT, 'policy/base', r)));
const { rules, errors } = loadRules(baseObjs());
const ruleIds = [...new Set(rules.map(r => r.id))].sort();
const fixture = (kind) => walk(path.join(ROOT, 'policy/fixtures', kind), p => p.endsWith('.yaml'));

test('every policy validation has a [rule-id] and every rule compiles and runs', () => {
  assert.deepEqual(errors, []);
  assert.ok(ruleIds.length >= 14, `only ${ruleIds.length} rules: ${ruleIds}`);
  for (const e of ['vap', 'kyverno', 'gatekeeper']) assert.ok(rules.some(r => r.engine === e), `no ${e} rule`);
});

test('passing fixtures pass every policy', () => {
  const bad = [];
  for (const f of fixture('pass')) for (const o of loadDocs(f)) { const r = evaluate(rules, o); if (r.failed.length) bad.push(`${rel(f)}: ${r.details.join('; ')}`); }
  assert.deepEqual(bad, []);
});

for (const f of fixture('fail')) {
  const want = path.basename(f, '.yaml').replace(/--.*/, '');
  test(`failing fixture ${path.basename(f)} fails exactly [${want}]`, () => {
    const o = loadDocs(f)[0];
    assert.deepEqual(evaluate(rules, o).failed, [want]);
  });
}

test('every rule has at least one failing fixture', () => {
  const have = new Set(fixture('fail').map(f => path.basename(f, '.yaml').replace(/--.*/, '')));
  assert.deepEqual(ruleIds.filter(r => !have.has(r)), []);
});

for (const e of ['stg', 'prod']) test(`${e}: every rendered object passes our own policies`, { skip }, () => {
  const envRules = loadRules(render(`policy/overlays/${e}`)).rules;
  assert.equal(envRules.length, rules.length);
  const bad = [];
  for (const o of render(`k8s/overlays/${e}`)) { const r = evaluate(envRules, o); if (r.failed.length) bad.push(`${id(o)}: ${r.details.join('; ')}`); }
  assert.deepEqual(bad, []);
});

// Audit in dev, enforce in stg/prod, for every engine. -> problems
function policyModeErrors(objs, e) {
  const errs = [], enforce = e !== 'dev';
  for (const b of objs.filter(o => o.kind === 'ValidatingAdmissionPolicyBinding')) {
    const a = b.spec.validationActions;
    if (a.includes('Deny') !== enforce || !a.includes(enforce ? 'Deny' : 'Audit')) errs.push(`${e}: VAP binding ${b.metadata.name} is [${a}]`);
  }
  for (const p of objs.filter(o => o.kind === 'ClusterPolicy')) for (const r of p.spec.rules) {
    const fa = r.validate?.failureAction ?? r.verifyImages?.[0]?.failureAction;
    if (fa !== (enforce ? 'Enforce' : 'Audit')) errs.push(`${e}: kyverno ${r.name} is ${fa}`);
  }
  for (const c of objs.filter(o => o.apiVersion.startsWith('constraints.gatekeeper.sh/')))
    if (c.spec.enforcementAction !== (enforce ? 'deny' : 'dryrun')) errs.push(`${e}: gatekeeper ${c.metadata.name} is ${c.spec.enforcementAction}`);
  if (!objs.some(o => o.kind === 'ValidatingAdmissionPolicyBinding') || !objs.some(o => o.kind === 'ClusterPolicy')) errs.push(`${e}: policies missing`);
  return errs;
}

test('policy mode: audit in dev, enforce in stg and prod', { skip }, () => {
  assert.deepEqual(ENVS.flatMap(e => policyModeErrors(render(`policy/overlays/${e}`), e)), []);
});

for (const d of listBroken('policy-mode', { dirs: true })) test(`broken policy mode: ${path.basename(d)} is rejected`, { skip }, () => {
  const meta = fixtureMeta(fs.readFileSync(path.join(d, 'kustomization.yaml'), 'utf8'));
  assertRejected(policyModeErrors(render(d), meta.env), meta.expect, rel(d));
});

test('kyverno verifyImages checks the cosign keyless signature of images.yml on our registry', () => {
  const p = baseObjs().find(o => o.kind === 'ClusterPolicy');
  const v = p.spec.rules.flatMap(r => r.verifyImages || []);
  assert.ok(v.length, 'no verifyImages rule');
  const k = v[0].attestors[0].entries[0].keyless;
  assert.equal(k.issuer, 'https://token.actions.githubusercontent.com');
  assert.match(k.subject, /\.github\/workflows\/images\.yml@refs\/heads\/main$/);
  const wf = fs.readFileSync(path.join(ROOT, '.github/workflows/images.yml'), 'utf8');
  const reg = /REGISTRY:\s*(\S+)/.exec(wf)[1];
  assert.ok(v[0].imageReferences.every(r => r.startsWith(`${reg}/exchange-lab/`)), 'verifyImages covers another registry than images.yml pushes to');
});
