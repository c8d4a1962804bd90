// Validates rendered objects (JSON, one per line, from labctl's k8s_render or
// `kubectl kustomize DIR | yq -c .`) with the schemas tests/infra uses for k8s/:
// node labs/lib/validate-k8s.mjs FILE. Exit 0 valid, 1 invalid, 3 no validator.
import { readFileSync, existsSync } from 'node:fs';
import { fileURLToPath, pathToFileURL } from 'node:url';
import path from 'node:path';
const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
const lib = path.join(root, 'tests/infra/lib/schemas.mjs');
if (!existsSync(path.join(root, 'tests/infra/node_modules/kubernetes-models'))) {
  console.error('no validator: tests/infra/node_modules is not installed (bash tests/infra/suite.sh installs it)');
  process.exit(3);
}
const { validateObject } = await import(pathToFileURL(lib).href);
let bad = 0;
for (const line of readFileSync(process.argv[2], 'utf8').split('\n')) {
  if (!line.trim()) continue;
  const o = JSON.parse(line);
  const errs = validateObject(o);
  if (errs.length) { bad++; console.log(`${o.kind}/${o.metadata?.name}: ${errs.slice(0, 3).join('; ')}`); }
}
process.exit(bad ? 1 : 0);
