// Every kustomization renders with `kubectl kustomize`, without remote bases.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { kustomizations, remoteRefs } from '../lib/kustomize.mjs';
import { ROOT, rel, render, kubectlSkip, listBroken, fixtureMeta, assertRejected, ENVS, SERVICES } from '../lib/common.mjs';

const skip = kubectlSkip();
if (skip) console.log(`# SKIP ${skip}`);

test('kustomizations use no remote bases or resources', () => {
  assert.deepEqual(kustomizations().flatMap(remoteRefs), []);
});

test('every kustomization renders with kubectl kustomize', { skip }, () => {
  const dirs = kustomizations(), bad = [];
  assert.ok(dirs.length >= 30, `only ${dirs.length} kustomizations`);
  for (const d of dirs) { try { assert.ok(render(d).length > 0, `${rel(d)} renders nothing`); } catch (e) { bad.push(e.message); } }
  assert.deepEqual(bad, []);
});

test('each env has an overlay per service plus mesh, and the env overlay contains them all', { skip }, () => {
  for (const e of ENVS) {
    for (const s of [...SERVICES, 'mesh']) assert.ok(fs.existsSync(path.join(ROOT, `k8s/overlays/${e}/${s}/kustomization.yaml`)), `k8s/overlays/${e}/${s} missing`);
    const objs = render(`k8s/overlays/${e}`);
    for (const s of SERVICES) assert.ok(objs.some(o => o.kind === 'Deployment' && o.metadata.name === s && o.metadata.namespace === 'exchange'), `${e}: no Deployment ${s} in namespace exchange`);
    assert.ok(objs.every(o => ['Namespace', 'PriorityClass', 'ClusterSecretStore'].includes(o.kind) || o.metadata.namespace === 'exchange'), `${e}: an object outside namespace exchange`);
    assert.ok(objs.every(o => o.metadata.labels?.['exchange-lab.io/env'] === e || o.kind === 'ConfigMap' || !['Deployment'].includes(o.kind)), `${e}: Deployments not labelled with the env`);
  }
});

// The remote-reference fixtures need no kubectl; the others do.
for (const d of listBroken('render', { dirs: true })) test(`broken render: ${path.basename(d)} is rejected`, { skip: remoteRefs(d).length ? false : skip }, () => {
  const meta = fixtureMeta(fs.readFileSync(path.join(d, 'kustomization.yaml'), 'utf8'));
  const errs = remoteRefs(d);
  if (!errs.length) { try { render(d); } catch (e) { errs.push(e.message); } }
  assertRejected(errs, meta.expect, rel(d));
});
