// Container images and their CI: Dockerfiles, .github/workflows/images.yml,
// SOPS rules and encrypted files.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, SERVICES, ENVS, walk, loadDocs, loadOne, rel, listBroken, fixtureMeta, assertRejected, FIX } from '../lib/common.mjs';
import { checkWorkflow, checkDockerfile, checkSopsConfig, checkSopsFile, serviceDataPaths } from '../lib/ci-checks.mjs';
const dataPaths = s => serviceDataPaths(ROOT, s, fs, path);

for (const s of SERVICES) test(`services/${s}/Dockerfile: multi-stage bookworm -> distroless, numeric non-root, no HEALTHCHECK, OCI labels, carries build/bin/${s} and its data files`, () => {
  const f = path.join(ROOT, `services/${s}/Dockerfile`);
  assert.ok(fs.existsSync(f), `${rel(f)} missing`);
  assert.deepEqual(checkDockerfile(fs.readFileSync(f, 'utf8'), s, dataPaths(s)), []);
});

test('images.yml: matrix build, Trivy gate before push, SBOM, cosign keyless by digest, dev bump commit, least privilege, actions pinned by SHA', () => {
  assert.deepEqual(checkWorkflow(loadOne(path.join(ROOT, '.github/workflows/images.yml'))), []);
});

test('images.yml bumps exactly the image names the dev overlays use', () => {
  const wf = loadOne(path.join(ROOT, '.github/workflows/images.yml'));
  for (const s of SERVICES) {
    const k = loadOne(path.join(ROOT, `k8s/overlays/dev/${s}/kustomization.yaml`));
    assert.deepEqual(k.images.map(i => i.name), [`${wf.env.REGISTRY}/${wf.env.REPOSITORY_PREFIX}/${s}`]);
  }
});

const accounts = Object.fromEntries(ENVS.map(e => [e, /account_id\s*=\s*"([0-9]{12})"/.exec(fs.readFileSync(path.join(ROOT, `terraform/envs/${e}/terraform.tfvars`), 'utf8'))[1]]));

test('.sops.yaml: one rule per env with that env\'s KMS key (terraform alias exchange-<env>-secrets)', () => {
  assert.deepEqual(checkSopsConfig(loadOne(path.join(ROOT, '.sops.yaml')), accounts), []);
});

test('every *.sops.yaml in the repo is fully encrypted, and the sample is valid', () => {
  const files = [...['k8s', 'argocd', 'policy'].flatMap(d => walk(path.join(ROOT, d), p => /\.sops\.ya?ml$/.test(p))), path.join(FIX, 'sops/valid.sops.yaml')];
  const bad = files.flatMap(f => loadDocs(f).flatMap(d => checkSopsFile(d).map(e => `${rel(f)}: ${e}`)));
  assert.deepEqual(bad, []);
});

for (const f of listBroken('images')) test(`broken images: ${path.basename(f)} is rejected`, () => {
  const text = fs.readFileSync(f, 'utf8'), meta = fixtureMeta(text);
  const errs = f.endsWith('.Dockerfile') ? checkDockerfile(text, meta.service || 'gateway', dataPaths(meta.service || 'gateway'))
    : /sops/.test(path.basename(f)) && !f.endsWith('.sops.yaml') ? checkSopsConfig(loadOne(f), accounts)
    : f.endsWith('.sops.yaml') ? checkSopsFile(loadOne(f)) : checkWorkflow(loadOne(f));
  assertRejected(errs, meta.expect, rel(f));
});
