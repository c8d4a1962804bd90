// Terraform, parsed with @cdktf/hcl2json (no terraform binary, no network).
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, ENVS, rel, listBroken, fixtureMeta, assertRejected } from '../lib/common.mjs';
import * as T from '../lib/tf-checks.mjs';

const MODS = ['vpc', 'eks', 'msk', 'aurora', 'elasticache', 'ecr', 'dns', 'waf', 'iam', 'kms'];
const modules = {};
for (const m of fs.readdirSync(path.join(ROOT, 'terraform/modules'))) modules[m] = await T.loadDir(path.join(ROOT, 'terraform/modules', m));
const envs = {};
for (const e of ENVS) envs[e] = await T.loadDir(path.join(ROOT, 'terraform/envs', e));

test('every module of the design exists and parses', () => assert.deepEqual(MODS.filter(m => !modules[m]?.files['main.tf']), []));

test('modules: typed + described variables, described outputs, var refs declared, no secret literals, pinned registry modules', async () => {
  const errs = [];
  for (const [n, m] of Object.entries(modules)) errs.push(...T.checkVariables(m, n), ...T.checkOutputs(m, n), ...T.checkVarRefs(m, n), ...T.checkNoSecretLiterals(m, n), ...await T.checkModuleCalls(m, n));
  assert.deepEqual(errs, []);
});

for (const e of ENVS) test(`${e}: S3 backend (own key, encrypt, use_lockfile), required_version, pinned providers`, () => {
  assert.deepEqual(T.checkRoot(envs[e], e, { expectKey: `envs/${e}/terraform.tfstate` }), []);
});

for (const e of ENVS) test(`${e}: variables typed/described/validated, module calls match module variables and outputs, no secrets`, async () => {
  const m = envs[e];
  assert.deepEqual([...T.checkVariables(m, e), ...T.checkOutputs(m, e), ...T.checkVarRefs(m, e), ...T.checkNoSecretLiterals(m, e), ...await T.checkModuleCalls(m, e)], []);
  assert.ok(Object.values(m.json.variable).some(v => v[0].validation), `${e}: no variable validation at all`);
  assert.equal(m.tfvars.env, e);
});

for (const e of ENVS) test(`${e}: encryption everywhere${e === 'prod' ? ', prod protection and redundancy' : ''}`, () => {
  assert.deepEqual(T.checkSafety(envs[e], e, modules), []);
});

test('backend keys and state buckets are distinct per env', () => {
  const b = ENVS.map(e => envs[e].json.terraform.find(t => t.backend).backend.s3[0]);
  assert.equal(new Set(b.map(x => x.key)).size, 3);
  assert.equal(new Set(b.map(x => x.bucket)).size, 3);
});

test('every terraform output the overlays consume exists (endpoints.env, NetworkPolicy CIDR)', () => {
  for (const e of ENVS) {
    const outs = Object.keys(envs[e].json.output);
    for (const o of ['msk_bootstrap_brokers_sasl_scram', 'aurora_endpoint', 'aurora_reader_endpoint', 'redis_primary_endpoint', 'vpc_cidr', 'external_secrets_role_arn'])
      assert.ok(outs.includes(o), `${e}: output ${o} missing`);
  }
});

for (const d of listBroken('terraform', { dirs: true })) {
  const text = fs.readdirSync(d).filter(f => f.endsWith('.tf')).map(f => fs.readFileSync(path.join(d, f), 'utf8')).join('\n');
  const meta = fixtureMeta(text);
  test(`broken terraform: ${path.basename(d)} is rejected by the ${meta.check} check`, async () => {
    const m = await T.loadDir(d), env = meta.env || 'dev';
    const run = {
      root: () => T.checkRoot(m, env, { expectKey: `envs/${env}/terraform.tfstate` }), variables: () => T.checkVariables(m, env),
      secrets: () => T.checkNoSecretLiterals(m, env), modules: () => T.checkModuleCalls(m, env), varrefs: () => T.checkVarRefs(m, env),
      safety: () => T.checkSafety(m, env, { ...modules, ...(m.json.resource ? { [meta.service]: m } : {}) }),
      arch: () => T.checkArch(m, env, workflow), outputs: () => T.checkOutputs(m, env),
    }[meta.check];
    assert.ok(run, `${rel(d)}: unknown check ${meta.check}`);
    assertRejected(await run(), meta.expect, rel(d));
  });
}

const workflow = fs.readFileSync(path.join(ROOT, '.github/workflows/images.yml'), 'utf8');
const eksText = fs.readFileSync(path.join(ROOT, 'terraform/modules/eks/main.tf'), 'utf8');
test('EKS nodes run the architecture images.yml builds (amd64 unless it lists arm64 platforms)', () => {
  assert.deepEqual(ENVS.flatMap(e => T.checkArch(envs[e], e, workflow, eksText)), []);
});
