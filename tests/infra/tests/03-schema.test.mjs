// Every rendered object validates against its schema, strictly (unknown
// fields fail): kubernetes-models + @kubernetes-models/{istio,argo-cd,
// prometheus-operator}, and hand-written JSON Schemas (ajv) for Flagger,
// Kyverno, Gatekeeper, External Secrets and SOPS.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, walk, loadDocs, rel, render, kubectlSkip, listBroken, fixtureMeta, assertRejected, id } from '../lib/common.mjs';
import { validateObject } from '../lib/schemas.mjs';
import { kustomizations } from '../lib/kustomize.mjs';

const skip = kubectlSkip();

test('every object of every rendered kustomization validates strictly against its schema', { skip }, () => {
  const bad = []; let n = 0;
  for (const d of kustomizations()) for (const o of render(d)) { n++; for (const e of validateObject(o)) bad.push(`${rel(d)} ${id(o)}: ${e}`); }
  assert.ok(n > 400, `only ${n} objects`);
  assert.deepEqual(bad, []);
});

test('root Applications and policy fixtures validate strictly', () => {
  const bad = [];
  for (const f of [...walk(path.join(ROOT, 'argocd/root')), ...walk(path.join(ROOT, 'policy/fixtures'))])
    for (const o of loadDocs(f)) for (const e of validateObject(o)) bad.push(`${rel(f)} ${id(o)}: ${e}`);
  assert.deepEqual(bad, []);
});

for (const f of listBroken('schema')) test(`broken schema: ${path.basename(f)} is rejected`, () => {
  const text = fs.readFileSync(f, 'utf8');
  assertRejected(loadDocs(f, text).flatMap(validateObject), fixtureMeta(text).expect, rel(f));
});
