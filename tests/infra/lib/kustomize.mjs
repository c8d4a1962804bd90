// Which kustomizations exist, and which of them reach for remote content.
import path from 'node:path';
import { ROOT, walk, loadOne, rel } from './common.mjs';

export const kustomizations = () => ['k8s', 'argocd', 'policy'].flatMap(d => walk(path.join(ROOT, d), p => path.basename(p) === 'kustomization.yaml'))
  .filter(f => loadOne(f).kind !== 'Component').map(f => path.dirname(f));

// Remote resources/components/bases (URLs, git refs) are refused: everything renders offline.
export function remoteRefs(dir) {
  const k = loadOne(path.join(dir, 'kustomization.yaml'));
  return [...(k.resources || []), ...(k.components || []), ...(k.bases || [])]
    .filter(r => /^(https?:|git[@:]|ssh:|github\.com\/|[a-z0-9.-]+\.[a-z]{2,}\/.+\/\/)/.test(r) || /\?ref=/.test(r))
    .map(r => `${rel(dir)}: remote reference ${r}`);
}
