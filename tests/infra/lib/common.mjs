// Shared helpers: repository paths, YAML loading, kubectl kustomize rendering.
import fs from 'node:fs';
import path from 'node:path';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { fileURLToPath } from 'node:url';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
export const YAML = require('yaml');

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../..');
export const FIX = path.join(ROOT, 'tests/infra/fixtures');
export const rel = p => path.relative(ROOT, p);
export const abs = p => path.resolve(ROOT, p);
export const SERVICES = ['gateway', 'trading-api', 'matching', 'wallet', 'risk', 'catalog', 'order'];
export const CANARIED = ['gateway', 'trading-api', 'wallet', 'catalog', 'order'];
export const ENVS = ['dev', 'stg', 'prod'];

export function walk(dir, pred = () => true, out = []) {
  if (!fs.existsSync(dir)) return out;
  for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) { if (e.name !== 'node_modules' && e.name !== '.terraform') walk(p, pred, out); }
    else if (pred(p)) out.push(p);
  }
  return out.sort();
}

// Every document of a YAML file; throws with file:line on a parse error or a duplicate key.
export function loadDocs(file, text = fs.readFileSync(file, 'utf8')) {
  const docs = YAML.parseAllDocuments(text, { uniqueKeys: true, prettyErrors: true });
  const out = [];
  for (const d of docs) {
    if (d.errors.length) throw new Error(`${rel(file)}: ${d.errors[0].message}`);
    const v = d.toJS({ maxAliasCount: 50 });
    if (v !== null && v !== undefined) out.push(v);
  }
  return out;
}
export const loadOne = f => loadDocs(f)[0];

let kubectlState;
// { ok, version, kustomize, reason }: kubectl with a kustomize new enough for components (v5+).
export function kubectl() {
  if (kubectlState === undefined) {
    try {
      const v = JSON.parse(execFileSync('kubectl', ['version', '--client', '-o', 'json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }));
      const kmajor = Number((/^v?([0-9]+)/.exec(v.kustomizeVersion || '') || [])[1] || 0);
      kubectlState = kmajor >= 5 ? { ok: true, version: v.clientVersion.gitVersion, kustomize: v.kustomizeVersion }
        : { ok: false, reason: `kubectl ${v.clientVersion?.gitVersion} has kustomize ${v.kustomizeVersion || 'unknown'}, too old for components (need kubectl >= 1.27, kustomize v5: https://kubernetes.io/docs/tasks/tools/); render checks NOT run` };
    } catch { kubectlState = { ok: false, reason: KUBECTL_SKIP }; }
  }
  return kubectlState;
}
export const KUBECTL_SKIP = 'kubectl not found (install kubectl >= 1.27 with built-in kustomize v5: https://kubernetes.io/docs/tasks/tools/); render checks NOT run';
// false, or the reason the render-dependent tests are skipped.
export const kubectlSkip = () => kubectl().ok ? false : kubectl().reason;

const renderCache = new Map();
// kubectl kustomize DIR -> objects (cached). Throws with kubectl's message on failure.
export function render(dir) {
  const d = abs(dir);
  if (!renderCache.has(d)) {
    // suite.sh shares one cache directory between the test files of a run.
    const cdir = process.env.INFRA_RENDER_CACHE;
    const cfile = cdir && path.join(cdir, createHash('sha1').update(d).digest('hex') + '.yaml');
    let out = cfile && fs.existsSync(cfile) ? fs.readFileSync(cfile, 'utf8') : null;
    if (out === null) {
      try { out = execFileSync('kubectl', ['kustomize', d], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 }); }
      catch (e) { throw new Error(`kubectl kustomize ${rel(d)} failed: ${(e.stderr || e.message).toString().trim().split('\n').slice(-3).join(' ')}`); }
      if (cfile) { const tmp = `${cfile}.${process.pid}`; fs.writeFileSync(tmp, out); fs.renameSync(tmp, cfile); } // atomic: files run in parallel
    }
    renderCache.set(d, loadDocs(d + '/<rendered>', out));
  }
  return renderCache.get(d);
}

export const id = o => `${o.kind}/${o.metadata?.namespace ? o.metadata.namespace + '/' : ''}${o.metadata?.name}`;
export const byKind = (objs, kind) => objs.filter(o => o.kind === kind);
export const find = (objs, kind, name) => objs.find(o => o.kind === kind && o.metadata?.name === name);
export const matchLabels = (sel, labels) => !!sel && Object.entries(sel).every(([k, v]) => labels?.[k] === v);

export function selectorMatches(sel, labels) { // a LabelSelector (matchLabels + matchExpressions)
  if (!sel) return false;
  if (!matchLabels(sel.matchLabels || {}, labels || {})) return false;
  for (const e of sel.matchExpressions || []) {
    const v = labels?.[e.key];
    if (e.operator === 'In' && !e.values.includes(v)) return false;
    if (e.operator === 'NotIn' && e.values.includes(v)) return false;
    if (e.operator === 'Exists' && v === undefined) return false;
    if (e.operator === 'DoesNotExist' && v !== undefined) return false;
  }
  return true;
}

// "# expect: REGEX", "# check: NAME", "# env: ENV" headers of a broken fixture.
export function fixtureMeta(text) {
  const get = k => (new RegExp(`^#\\s*${k}:\\s*(.+)$`, 'm').exec(text) || [])[1]?.trim();
  const expect = get('expect');
  return { expect: expect ? new RegExp(expect) : null, check: get('check'), env: get('env'), service: get('service') };
}
export const brokenDir = cat => path.join(FIX, 'broken', cat);
export function listBroken(cat, { dirs = false } = {}) {
  const d = brokenDir(cat);
  if (!fs.existsSync(d)) return [];
  return fs.readdirSync(d, { withFileTypes: true }).filter(e => dirs ? e.isDirectory() : e.isFile()).map(e => path.join(d, e.name)).sort();
}
// Exactly one matching problem is not required, but one must match.
export function assertRejected(errs, expect, what) {
  if (!expect) throw new Error(`${what}: fixture has no "# expect:" header`);
  if (!errs.some(e => expect.test(e))) throw new Error(`${what}: expected a problem matching ${expect}, got ${errs.length ? errs.join(' | ') : 'none (the check accepted a broken input)'}`);
}
