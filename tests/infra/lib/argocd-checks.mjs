// ArgoCD app-of-apps checks over a set of Application/AppProject objects.
import fs from 'node:fs';
import { ROOT, abs, SERVICES, ENVS } from './common.mjs';

const SEMVER = /^v?[0-9]+\.[0-9]+\.[0-9]+$/;
export const WAVE_ORDER = [ // [earlier, later]: the later one needs what the earlier installs
  ['istio-base', 'istiod'], ['istiod', 'istio-ingress'], ['istio-ingress', 'istio-ingress-config'], ['istio-cni', 'istio-ingress'],
  ['kube-prometheus-stack', 'exchange-mesh'], ['flagger', 'exchange-mesh'], ['external-secrets', 'exchange-mesh'],
  ['kyverno', 'admission-policies'], ['gatekeeper', 'admission-policies'], ['istiod', 'exchange-mesh'],
  ['admission-policies', 'exchange-mesh'], ['exchange-mesh', 'gateway'], ['kube-prometheus-stack', 'flagger'], ['aws-load-balancer-controller', 'istio-ingress-config'], ['karpenter', 'karpenter-nodepools'], ['karpenter-nodepools', 'exchange-mesh'],
];
const wave = a => Number(a.metadata.annotations?.['argocd.argoproj.io/sync-wave'] ?? 0);
const base = (a, env) => a.metadata.name.replace(new RegExp(`-${env}$`), '');
const sourcesOf = a => a.spec.sources || (a.spec.source ? [a.spec.source] : []);

// apps: Applications of one env; projects: AppProjects; env: dev|stg|prod.
export function checkApps(apps, projects, env, { pathExists = p => fs.existsSync(abs(p)) } = {}) {
  const errs = [];
  const proj = new Map(projects.map(p => [p.metadata.name, p]));
  for (const a of apps) {
    const n = a.metadata.name, s = a.spec;
    if (a.metadata.namespace !== 'argocd') errs.push(`${n}: not in the argocd namespace`);
    if (!a.metadata.finalizers?.includes('resources-finalizer.argocd.argoproj.io')) errs.push(`${n}: no resources-finalizer (deleting the app would orphan its resources)`);
    const p = proj.get(s.project);
    if (!p) errs.push(`${n}: project ${s.project} is not one of our AppProjects`);
    for (const src of sourcesOf(a)) {
      if (p && !p.spec.sourceRepos.includes(src.repoURL)) errs.push(`${n}: source ${src.repoURL} not allowed by project ${s.project}`);
      if (src.chart) {
        if (!SEMVER.test(src.targetRevision || '')) errs.push(`${n}: chart ${src.chart} version "${src.targetRevision}" is not pinned`);
        for (const vf of src.helm?.valueFiles || []) {
          const m = /^\$([a-z]+)\/(.+)$/.exec(vf);
          if (!m) { errs.push(`${n}: value file ${vf} is not a $ref/ path into the repo`); continue; }
          if (!sourcesOf(a).some(x => x.ref === m[1])) errs.push(`${n}: value file ${vf} uses ref ${m[1]} that no source defines`);
          if (!pathExists(m[2])) errs.push(`${n}: value file ${m[2]} does not exist`);
        }
      } else if (src.path && !pathExists(src.path)) errs.push(`${n}: path ${src.path} does not exist`);
      if (!src.chart && !src.ref) {
        if (env === 'prod' && !SEMVER.test(src.targetRevision || '')) errs.push(`${n}: prod targetRevision "${src.targetRevision}" is not a pinned release tag`);
      }
      if (src.ref && env === 'prod' && !SEMVER.test(src.targetRevision || '')) errs.push(`${n}: prod values ref at "${src.targetRevision}" is not pinned`);
    }
    if (p && !p.spec.destinations.some(d => d.namespace === s.destination.namespace && d.server === s.destination.server))
      errs.push(`${n}: destination ${s.destination.namespace} not allowed by project ${s.project}`);
    const auto = s.syncPolicy?.automated;
    if (env === 'prod' && auto) errs.push(`${n}: prod must sync manually (no syncPolicy.automated)`);
    if (env !== 'prod' && !(auto?.prune && auto?.selfHeal)) errs.push(`${n}: ${env} must be automated with prune and selfHeal`);
  }
  // every service has an app, with ignoreDifferences on /spec/replicas (HPA/Flagger own it)
  for (const svc of SERVICES) {
    const a = apps.find(x => base(x, env) === svc);
    if (!a) { errs.push(`${env}: no Application for service ${svc}`); continue; }
    if (!(a.spec.ignoreDifferences || []).some(d => d.kind === 'Deployment' && (d.jsonPointers || []).includes('/spec/replicas')))
      errs.push(`${a.metadata.name}: no ignoreDifferences for Deployment /spec/replicas`);
  }
  const byBase = new Map(apps.map(a => [base(a, env), a]));
  for (const [x, y] of WAVE_ORDER) {
    const ax = byBase.get(x), ay = byBase.get(y);
    if (!ax || !ay) { errs.push(`${env}: sync-wave pair ${x} < ${y}: missing Application ${!ax ? x : y}`); continue; }
    if (!(wave(ax) < wave(ay))) errs.push(`${env}: ${y} (wave ${wave(ay)}) must sync after ${x} (wave ${wave(ax)})`);
  }
  return errs;
}

export function checkProjects(projects) {
  const errs = [];
  for (const p of projects) {
    const n = p.metadata.name;
    if (p.metadata.namespace !== 'argocd') errs.push(`AppProject ${n}: not in argocd`);
    if (!p.spec.sourceRepos?.length || p.spec.sourceRepos.some(r => r.includes('*'))) errs.push(`AppProject ${n}: sourceRepos must be an explicit list (no *)`);
    if (!p.spec.destinations?.length || p.spec.destinations.some(d => [d.namespace, d.server, d.name].some(v => v?.includes('*')))) errs.push(`AppProject ${n}: destinations must be explicit (no *)`);
  }
  return errs;
}

// resource.customizations health check for argoproj.io/Application (needed for waves between apps).
export function checkBootstrap(values) {
  const cm = values?.configs?.cm || {};
  const lua = cm['resource.customizations.health.argoproj.io_Application'] || cm['resource.customizations']?.['argoproj.io/Application']?.['health.lua'];
  return lua && /obj\.status\.health/.test(lua) && /return hs/.test(lua) ? [] : ['argocd bootstrap values: no health check for argoproj.io/Application (sync waves would not wait)'];
}

export const ENV_LIST = ENVS;
export { ROOT };
