// The design's traffic (docs: architecture sections 3 and 6) and checks that
// NetworkPolicies and Istio AuthorizationPolicies allow exactly that.
import { SERVICES, CANARIED, byKind, selectorMatches } from './common.mjs';

export const HTTP_FLOWS = [
  ['istio-ingress', 'gateway'],
  ['gateway', 'trading-api'], ['gateway', 'wallet'], ['gateway', 'catalog'], ['gateway', 'order'],
  ['trading-api', 'risk'], ['trading-api', 'wallet'], ['trading-api', 'matching'],
  ['order', 'catalog'],
  ...CANARIED.map(s => ['flagger-loadtester', s]),
  ...SERVICES.map(s => ['prometheus', s]),
];
export const STORE_FLOWS = {
  gateway: ['postgres', 'redis'], 'trading-api': ['kafka', 'postgres', 'redis'], matching: ['kafka', 'postgres'],
  wallet: ['kafka', 'postgres', 'redis'], risk: ['kafka', 'redis', 'webhook'], catalog: ['postgres', 'redis'], order: ['kafka', 'postgres', 'redis'],
};
const STORE_PORTS = { postgres: 5432, redis: 6379, kafka: 9096, webhook: 443 };
const EXTERNAL = [
  { name: 'istio-ingress', ns: 'istio-ingress', labels: { istio: 'ingressgateway' } },
  { name: 'flagger-loadtester', ns: 'flagger', labels: { 'app.kubernetes.io/name': 'loadtester' } },
  { name: 'prometheus', ns: 'monitoring', labels: { 'app.kubernetes.io/name': 'prometheus' } },
];

const nsOf = o => o.metadata.namespace || 'default';
function peerMatches(peer, pod, policyNs) {
  if (peer.ipBlock) return false;
  const nsOk = peer.namespaceSelector ? selectorMatches(peer.namespaceSelector, { 'kubernetes.io/metadata.name': pod.ns }) : pod.ns === policyNs;
  return nsOk && (!peer.podSelector || selectorMatches(peer.podSelector, pod.labels));
}
const portOk = (ports, port) => !ports || ports.some(p => p.port === port || p.port === undefined);
const selects = (np, pod) => nsOf(np) === pod.ns && selectorMatches(np.spec.podSelector, pod.labels);
const types = np => np.spec.policyTypes || ['Ingress', ...(np.spec.egress ? ['Egress'] : [])];

export function computeFlows(objs) {
  const nps = byKind(objs, 'NetworkPolicy');
  const pods = byKind(objs, 'Deployment').map(d => ({ name: d.metadata.name, ns: nsOf(d), labels: d.spec.template.metadata.labels || {} }));
  const ingress = (dst, src, port) => nps.some(np => selects(np, dst) && types(np).includes('Ingress') &&
    (np.spec.ingress || []).some(r => (!r.from || r.from.some(p => peerMatches(p, src, nsOf(np)))) && portOk(r.ports, port)));
  const egress = (src, dst, port) => src.external || nps.some(np => selects(np, src) && types(np).includes('Egress') &&
    (np.spec.egress || []).some(r => (!r.to || r.to.some(p => peerMatches(p, dst, nsOf(np)))) && portOk(r.ports, port)));
  const isolated = pod => ['Ingress', 'Egress'].every(t => nps.some(np => selects(np, pod) && types(np).includes(t)));
  const flows = [], errs = [];
  for (const p of pods) if (!isolated(p)) errs.push(`${p.name}: not covered by a default-deny (Ingress + Egress) NetworkPolicy`);
  for (const src of [...EXTERNAL.map(e => ({ ...e, external: true })), ...pods]) for (const dst of pods)
    if (src !== dst && ingress(dst, src, 8080) && egress(src, dst, 8080)) flows.push(`${src.name} -> ${dst.name}`);
  const stores = {};
  for (const p of pods) {
    stores[p.name] = Object.entries(STORE_PORTS).filter(([, port]) => nps.some(np => selects(np, p) && types(np).includes('Egress') &&
      (np.spec.egress || []).some(r => (r.to || []).some(x => x.ipBlock) && portOk(r.ports, port)))).map(([k]) => k).sort();
  }
  return { flows: flows.sort(), stores, errs };
}

export function checkNetworkPolicies(objs) {
  const { flows, stores, errs } = computeFlows(objs);
  const want = HTTP_FLOWS.map(([a, b]) => `${a} -> ${b}`).sort();
  for (const f of flows) if (!want.includes(f)) errs.push(`NetworkPolicies allow ${f}, which is not a flow of the design`);
  for (const f of want) if (!flows.includes(f)) errs.push(`NetworkPolicies block ${f}, a flow of the design`);
  for (const [s, want2] of Object.entries(STORE_FLOWS)) {
    const got = stores[s] || [];
    if (JSON.stringify(got) !== JSON.stringify(want2)) errs.push(`${s}: data-store egress is [${got}], the design says [${want2}]`);
  }
  return errs;
}

export function checkAuthorization(objs) {
  const errs = [];
  const aps = byKind(objs, 'AuthorizationPolicy');
  if (!byKind(objs, 'PeerAuthentication').some(p => p.spec?.mtls?.mode === 'STRICT' && !p.spec.selector)) errs.push('no namespace-wide PeerAuthentication with mTLS STRICT');
  if (!aps.some(a => !a.spec || Object.keys(a.spec).length === 0)) errs.push('no allow-nothing AuthorizationPolicy (empty spec) for the namespace');
  for (const s of SERVICES) {
    const mine = aps.filter(a => a.spec?.selector && selectorMatches(a.spec.selector, { 'exchange-lab.io/service': s, 'app.kubernetes.io/name': s }));
    if (!mine.length) { errs.push(`${s}: no AuthorizationPolicy`); continue; }
    const callers = new Set(), metrics = new Set();
    for (const a of mine) {
      if ((a.spec.action || 'ALLOW') !== 'ALLOW') continue;
      for (const r of a.spec.rules || []) {
        const onlyMetrics = (r.to || []).length > 0 && r.to.every(t => JSON.stringify(t.operation?.paths) === '["/metrics"]');
        const principals = (r.from || []).flatMap(f => f.source?.principals || []);
        if (!r.from || principals.length === 0) { errs.push(`${s}: an ALLOW rule without source principals admits anyone`); continue; }
        for (const p of principals) (onlyMetrics ? metrics : callers).add(p.replace(/^.*\/sa\//, ''));
      }
    }
    const want = HTTP_FLOWS.filter(([a, b]) => b === s && a !== 'prometheus').map(([a]) => a).sort();
    const got = [...callers].sort();
    if (JSON.stringify(got) !== JSON.stringify(want)) errs.push(`${s}: AuthorizationPolicy admits [${got}], the design says [${want}]`);
    if (!metrics.has('kube-prometheus-stack-prometheus')) errs.push(`${s}: Prometheus may not scrape /metrics`);
  }
  return errs;
}
