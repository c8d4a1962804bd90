// Offline evaluation of our admission policies' CEL with @bufbuild/cel, with
// the variables each engine provides: ValidatingAdmissionPolicy (object,
// oldObject, params, variables.*), Kyverno validate.cel (object, oldObject),
// Gatekeeper K8sNativeValidation (object, variables.anyObject, variables.params).
// Each validation message starts with its rule id: "[non-root] ...".
import { createRequire } from 'node:module';
import { selectorMatches } from './common.mjs';
const require = createRequire(import.meta.url);
const { run, isCelError } = require('@bufbuild/cel');
const { strings } = require('@bufbuild/cel/ext');

const toCel = v => Array.isArray(v) ? v.map(toCel)
  : v && typeof v === 'object' ? new Map(Object.entries(v).map(([k, x]) => [k, toCel(x)]))
  : typeof v === 'number' && Number.isInteger(v) ? BigInt(v) : v;
const ruleId = m => (/^\[([a-z0-9-]+)\]/.exec(m || '') || [])[1];
const RESOURCE_KIND = { deployments: 'Deployment', statefulsets: 'StatefulSet', daemonsets: 'DaemonSet', pods: 'Pod', secrets: 'Secret' };
const groupOf = o => o.apiVersion.includes('/') ? o.apiVersion.split('/')[0] : '';

// -> [{ id, engine, policy, applies(obj), expression, vars: [{name, expression}], params }]
export function loadRules(objs) {
  const rules = [], errors = [];
  const add = r => { if (!r.id) errors.push(`${r.policy}: message without a [rule-id]: ${r.message}`); else rules.push(r); };
  for (const p of objs.filter(o => o.kind === 'ValidatingAdmissionPolicy')) {
    const rr = p.spec.matchConstraints.resourceRules;
    const applies = o => rr.some(r => r.apiGroups.includes(groupOf(o)) && r.resources.some(x => RESOURCE_KIND[x] === o.kind));
    for (const v of p.spec.validations) add({ id: ruleId(v.message), message: v.message, engine: 'vap', policy: p.metadata.name, applies, expression: v.expression, vars: p.spec.variables || [] });
  }
  for (const p of objs.filter(o => o.kind === 'ClusterPolicy')) for (const r of p.spec.rules) {
    if (!r.validate?.cel) continue;
    const applies = o => (r.match.any || []).some(m => m.resources.kinds.includes(o.kind));
    for (const v of r.validate.cel.expressions) add({ id: ruleId(v.message), message: v.message, engine: 'kyverno', policy: `${p.metadata.name}/${r.name}`, applies, expression: v.expression, vars: r.validate.cel.variables || [] });
  }
  const templates = Object.fromEntries(objs.filter(o => o.kind === 'ConstraintTemplate').map(t => [t.spec.crd.spec.names.kind, t]));
  for (const c of objs.filter(o => o.apiVersion?.startsWith('constraints.gatekeeper.sh/'))) {
    const t = templates[c.kind];
    if (!t) { errors.push(`constraint ${c.metadata.name}: no ConstraintTemplate for ${c.kind}`); continue; }
    const m = c.spec.match;
    const applies = o => m.kinds.some(k => k.apiGroups.includes(groupOf(o)) && k.kinds.includes(o.kind)) &&
      (!m.labelSelector || selectorMatches(m.labelSelector, o.metadata?.labels || {}));
    for (const code of t.spec.targets[0].code) for (const v of code.source.validations)
      add({ id: ruleId(v.message), message: v.message, engine: 'gatekeeper', policy: `${t.metadata.name}/${c.metadata.name}`, applies, expression: v.expression,
        vars: code.source.variables || [], params: c.spec.parameters || {} });
  }
  return { rules, errors };
}

// -> { failed: [rule ids], details: [strings] } for one object.
export function evaluate(rules, obj) {
  const failed = new Set(), details = [];
  for (const r of rules) {
    if (!r.applies(obj)) continue;
    const object = toCel(obj);
    const variables = new Map();
    if (r.engine === 'gatekeeper') { variables.set('anyObject', object); variables.set('params', toCel(r.params)); }
    const ctx = { object, oldObject: null, variables };
    for (const v of r.vars) variables.set(v.name, run(v.expression, ctx, { funcs: strings }));
    const res = run(r.expression, ctx, { funcs: strings });
    if (res !== true) { failed.add(r.id); details.push(`${r.policy} ${r.message}${isCelError(res) ? ` (CEL error: ${res.message})` : ''}`); }
  }
  return { failed: [...failed].sort(), details };
}
