// Strict (unknown fields fail) structural check of an object against the
// TypeScript declarations that kubernetes-models generates from the
// Kubernetes/CRD OpenAPI schemas. The models' own validate() checks types and
// required fields but lets unknown fields through; this walk closes that gap.
import ts from 'typescript';
import path from 'node:path';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);

let program, checker;
const declCache = new Map();

export function modelDts(spec) { // 'kubernetes-models/apps/v1/Deployment'
  return require.resolve(spec).replace(/\.js$/, '.d.ts');
}

export function prepare(specs) {
  const files = specs.map(modelDts);
  program = ts.createProgram(files, { noEmit: true, skipLibCheck: true, types: [], module: ts.ModuleKind.CommonJS,
    moduleResolution: ts.ModuleResolutionKind.Node10, target: ts.ScriptTarget.ES2020 });
  checker = program.getTypeChecker();
}

function typeOf(spec, kind) {
  const key = spec;
  if (declCache.has(key)) return declCache.get(key);
  const sf = program.getSourceFile(modelDts(spec));
  if (!sf) throw new Error(`no declarations for ${spec}`);
  const mod = checker.getSymbolAtLocation(sf);
  const sym = checker.getExportsOfModule(mod).find(s => s.getName() === 'I' + kind);
  if (!sym) throw new Error(`no interface I${kind} in ${spec}`);
  const t = checker.getDeclaredTypeOfSymbol(checker.getAliasedSymbol ? (sym.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(sym) : sym) : sym);
  declCache.set(key, t);
  return t;
}

const isObj = v => v !== null && typeof v === 'object' && !Array.isArray(v);
const isObjT = t => !!(t.flags & ts.TypeFlags.Object) || t.isIntersection();
const arrayElem = t => {
  if (checker.isArrayType(t)) return checker.getTypeArguments(t)[0];
  if (t.isIntersection()) for (const m of t.types) { const e = arrayElem(m); if (e) return e; }
  return null;
};

function walk(v, t, p, errs) {
  if (t.flags & (ts.TypeFlags.Any | ts.TypeFlags.Unknown)) return;
  if (t.isUnion()) {
    const members = t.types.filter(m => !(m.flags & (ts.TypeFlags.Undefined | ts.TypeFlags.Null)));
    const cands = members.filter(m => Array.isArray(v) ? !!arrayElem(m)
      : isObj(v) ? isObjT(m) && !arrayElem(m) : !isObjT(m));
    if (!cands.length) return; // scalar mismatches are the model validator's job
    let best = null;
    for (const m of cands) { const e = []; walk(v, m, p, e); if (!e.length) return; if (!best || e.length < best.length) best = e; }
    errs.push(...best); return;
  }
  if (Array.isArray(v)) {
    const el = arrayElem(t);
    if (el) v.forEach((x, i) => walk(x, el, `${p}[${i}]`, errs));
    return;
  }
  if (!isObj(v) || !isObjT(t)) return;
  const idx = checker.getIndexInfoOfType(t, ts.IndexKind.String);
  const props = new Map(checker.getPropertiesOfType(t).map(s => [s.getName(), s]));
  for (const [k, x] of Object.entries(v)) {
    const s = props.get(k);
    if (s) { walk(x, checker.getNonNullableType(checker.getTypeOfSymbol(s)), `${p}.${k}`, errs); continue; }
    if (idx) { walk(x, idx.type, `${p}.${k}`, errs); continue; }
    if (props.size === 0 && !idx) continue; // an open object type ({}), e.g. x-kubernetes-preserve-unknown-fields
    errs.push(`${p}.${k}: unknown field`);
  }
}

export function strictErrors(obj, spec, kind) {
  const errs = [];
  walk(obj, typeOf(spec, kind), '', errs);
  return errs.map(e => e.replace(/^\./, ''));
}
