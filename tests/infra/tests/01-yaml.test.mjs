// Every YAML file we own parses (strictly: no duplicate keys), and so do the
// observability Helm values our ArgoCD apps reference, when present.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { ROOT, walk, loadDocs, rel, listBroken, fixtureMeta, assertRejected } from '../lib/common.mjs';

const isYaml = p => /\.ya?ml$/.test(p);
const yamlFiles = () => [
  ...['k8s', 'argocd', 'policy', '.github/workflows'].flatMap(d => walk(path.join(ROOT, d), isYaml)),
  path.join(ROOT, '.sops.yaml'),
];

test('every YAML file in k8s/, argocd/, policy/, .github/workflows/ and .sops.yaml parses', () => {
  const files = yamlFiles(), bad = [];
  assert.ok(files.length > 50, `only ${files.length} YAML files found`);
  for (const f of files) { try { loadDocs(f); } catch (e) { bad.push(e.message); } }
  assert.deepEqual(bad, []);
});

for (const f of listBroken('yaml')) test(`broken yaml: ${path.basename(f)} is rejected`, () => {
  const text = fs.readFileSync(f, 'utf8');
  let err = null;
  try { loadDocs(f, text); } catch (e) { err = e.message; }
  assertRejected(err ? [err] : [], fixtureMeta(text).expect, rel(f));
});
