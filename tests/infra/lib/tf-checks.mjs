// Terraform structural checks on the HCL parsed by @cdktf/hcl2json (no
// terraform binary, no providers, no network).
import fs from 'node:fs';
import path from 'node:path';
import { createRequire } from 'node:module';
const require = createRequire(import.meta.url);
const { parse } = require('@cdktf/hcl2json');

const deepMerge = (a, b) => { for (const [k, v] of Object.entries(b)) a[k] = a[k] && typeof v === 'object' && !Array.isArray(v) ? deepMerge(a[k], v) : Array.isArray(a[k]) && Array.isArray(v) ? a[k].concat(v) : v; return a; };

// dir -> { json (merged *.tf), files: {name: json}, tfvars } (memoised per process)
const dirCache = new Map();
export function loadDir(dir) {
  const d = path.resolve(dir);
  if (!dirCache.has(d)) dirCache.set(d, loadDirUncached(d));
  return dirCache.get(d);
}
async function loadDirUncached(dir) {
  const files = {}, merged = {};
  for (const f of fs.readdirSync(dir).filter(f => f.endsWith('.tf')).sort()) {
    const text = fs.readFileSync(path.join(dir, f), 'utf8');
    let j;
    try { j = await parse(f, text); } catch (e) { throw new Error(`${dir}/${f}: HCL parse error: ${e.message || e}`); }
    files[f] = { json: j, text };
    for (const [k, v] of Object.entries(j)) merged[k] = Array.isArray(v) ? (merged[k] || []).concat(v) : deepMerge(merged[k] || {}, v);
  }
  let tfvars = null;
  const tv = path.join(dir, 'terraform.tfvars');
  if (fs.existsSync(tv)) tfvars = await parse('terraform.tfvars', fs.readFileSync(tv, 'utf8'));
  return { dir, json: merged, files, tfvars };
}

const first = v => Array.isArray(v) ? v[0] : v;
const EXACT = /^=?\s*[0-9]+\.[0-9]+\.[0-9]+$/;
const SECRET_NAME = /(password|passwd|secret|token|private_key|access_key|auth)/i;

export function checkRoot(m, env, { expectKey } = {}) {
  const errs = [], j = m.json, tfs = j.terraform || [];
  if (!tfs.some(t => t.required_version)) errs.push(`${env}: no required_version`);
  const providers = Object.assign({}, ...tfs.flatMap(t => t.required_providers || []));
  if (!Object.keys(providers).length) errs.push(`${env}: no required_providers`);
  for (const [n, p] of Object.entries(providers)) if (!EXACT.test(p.version || '')) errs.push(`${env}: provider ${n} version "${p.version}" is not pinned exactly`);
  const backends = tfs.flatMap(t => Object.entries(t.backend || {}));
  if (backends.length !== 1 || backends[0][0] !== 's3') errs.push(`${env}: needs exactly one s3 backend`);
  else {
    const b = first(backends[0][1]);
    if (b.encrypt !== true) errs.push(`${env}: backend not encrypted`);
    if (b.use_lockfile !== true && !b.dynamodb_table) errs.push(`${env}: backend without locking (use_lockfile)`);
    if (expectKey && b.key !== expectKey) errs.push(`${env}: backend key ${b.key}, expected ${expectKey}`);
    for (const k of ['access_key', 'secret_key', 'token']) if (b[k]) errs.push(`${env}: credentials in the backend block`);
  }
  return errs;
}

export function checkVariables(m, where) {
  const errs = [];
  for (const [n, vs] of Object.entries(m.json.variable || {})) {
    const v = first(vs);
    if (!v.type) errs.push(`${where}: variable ${n} has no type`);
    if (!v.description) errs.push(`${where}: variable ${n} has no description`);
    if (SECRET_NAME.test(n) && !/_(arns?|ids?|names?)$/.test(n) && v.default !== undefined && v.default !== '' && v.default !== null) errs.push(`${where}: variable ${n} looks secret and has a default`);
  }
  return errs;
}

export function checkOutputs(m, where) {
  return Object.entries(m.json.output || {}).filter(([, o]) => !first(o).description).map(([n]) => `${where}: output ${n} has no description`);
}

// No secret literals: string attributes named like secrets must be expressions, not literals.
export function checkNoSecretLiterals(m, where) {
  const errs = [];
  const walk = (v, p) => {
    if (Array.isArray(v)) return v.forEach((x, i) => walk(x, `${p}[${i}]`));
    if (v && typeof v === 'object') return Object.entries(v).forEach(([k, x]) => {
      if (typeof x === 'string' && SECRET_NAME.test(k) && !/^\$\{/.test(x) && !/(_arn|_id|_name|_kms_key_id|_strategy|_type|_enabled)$/.test(k) && !['description', 'secret_id'].includes(k) && x.length >= 6)
        errs.push(`${where}: ${p}.${k} is a literal secret-like value`);
      walk(x, `${p}.${k}`);
    });
  };
  for (const block of ['resource', 'module', 'provider', 'locals', 'data']) walk(m.json[block], block);
  if (m.tfvars) for (const [k, v] of Object.entries(m.tfvars)) if (SECRET_NAME.test(k) && typeof v === 'string' && v) errs.push(`${where}: terraform.tfvars sets secret-like ${k}`);
  for (const [f, { text }] of Object.entries(m.files)) {
    if (/AKIA[0-9A-Z]{16}/.test(text)) errs.push(`${where}/${f}: AWS access key id literal`);
    if (/-----BEGIN [A-Z ]*PRIVATE KEY-----/.test(text)) errs.push(`${where}/${f}: private key literal`);
  }
  return errs;
}

// module blocks: local sources exist; every argument is a declared variable; every required variable is passed; registry sources pinned.
export async function checkModuleCalls(m, where, load = loadDir) {
  const errs = [];
  const META = new Set(['source', 'version', 'count', 'for_each', 'providers', 'depends_on']);
  for (const [name, calls] of Object.entries(m.json.module || {})) {
    const c = first(calls);
    if (c.source.startsWith('.')) {
      const dir = path.resolve(m.dir, c.source);
      if (!fs.existsSync(dir) || !fs.readdirSync(dir).some(f => f.endsWith('.tf'))) { errs.push(`${where}: module ${name} source ${c.source} does not exist`); continue; }
      const mod = await load(dir);
      const vars = mod.json.variable || {};
      for (const k of Object.keys(c)) if (!META.has(k) && !vars[k]) errs.push(`${where}: module ${name} passes ${k}, which ${c.source} does not declare`);
      for (const [k, v] of Object.entries(vars)) if (!('default' in first(v)) && !(k in c)) errs.push(`${where}: module ${name} does not pass required variable ${k}`);
      for (const ref of JSON.stringify(c).matchAll(/module\.([a-z_]+)\.([a-z_]+)/g)) {
        const other = first(m.json.module?.[ref[1]] || []);
        if (!other) { errs.push(`${where}: module ${name} refers to module.${ref[1]} which does not exist`); continue; }
        if (other.source.startsWith('.')) {
          const om = await load(path.resolve(m.dir, other.source));
          if (!om.json.output?.[ref[2]]) errs.push(`${where}: module ${name} uses module.${ref[1]}.${ref[2]}, not an output of ${other.source}`);
        }
      }
    } else if (!EXACT.test(c.version || '')) errs.push(`${where}: module ${name} (${c.source}) version "${c.version}" is not pinned exactly`);
  }
  return errs;
}

// var.X used anywhere must be declared; tfvars keys must be declared.
export function checkVarRefs(m, where) {
  const errs = [], declared = new Set(Object.keys(m.json.variable || {}));
  for (const [f, { text }] of Object.entries(m.files)) for (const r of text.matchAll(/\bvar\.([a-zA-Z0-9_]+)/g))
    if (!declared.has(r[1])) errs.push(`${where}/${f}: var.${r[1]} is not declared`);
  for (const k of Object.keys(m.tfvars || {})) if (!declared.has(k)) errs.push(`${where}/terraform.tfvars: ${k} is not a declared variable`);
  return [...new Set(errs)];
}

// Safety settings that hold in every env (encryption) and in prod (protection, redundancy).
export function checkSafety(m, env, modules) {
  const errs = [], v = m.tfvars || {};
  if (env === 'prod') {
    if (v.deletion_protection !== true) errs.push('prod: deletion_protection must be true');
    if (!(v.backup_retention_days >= 14)) errs.push('prod: backup_retention_days must be >= 14');
    if (!(v.aurora_instance_count >= 2)) errs.push('prod: Aurora needs >= 2 instances (Multi-AZ)');
    if (!(v.redis_num_cache_clusters >= 2)) errs.push('prod: Redis needs >= 2 nodes');
    if (v.single_nat_gateway === true) errs.push('prod: one NAT gateway per AZ');
  }
  const mod = n => modules[n]?.json.resource || {};
  const r = (n, type) => first(Object.values(mod(n)[type] || {})[0] || []);
  const db = r('aurora', 'aws_rds_cluster');
  if (db?.storage_encrypted !== true) errs.push('aurora: storage_encrypted must be true');
  if (!db?.kms_key_id) errs.push('aurora: no customer-managed kms_key_id');
  if (db?.manage_master_user_password !== true) errs.push('aurora: master password must be managed by RDS (manage_master_user_password)');
  if (!String(db?.deletion_protection).includes('var.deletion_protection') && db?.deletion_protection !== true) errs.push('aurora: deletion_protection not wired');
  const rg = r('elasticache', 'aws_elasticache_replication_group');
  for (const k of ['at_rest_encryption_enabled', 'transit_encryption_enabled', 'automatic_failover_enabled', 'multi_az_enabled']) if (rg?.[k] !== true) errs.push(`elasticache: ${k} must be true`);
  const msk = r('msk', 'aws_msk_cluster');
  const eit = first(first(msk?.encryption_info || [])?.encryption_in_transit || []);
  if (eit?.client_broker !== 'TLS' || eit?.in_cluster !== true) errs.push('msk: encryption in transit must be TLS everywhere');
  if (!first(msk?.encryption_info || [])?.encryption_at_rest_kms_key_arn) errs.push('msk: no KMS key at rest');
  const sasl = first(first(msk?.client_authentication || [])?.sasl || []);
  if (sasl?.iam !== true) errs.push('msk: IAM client authentication must be on');
  if (first(msk?.client_authentication || [])?.unauthenticated !== false) errs.push('msk: unauthenticated access must be off');
  const key = r('kms', 'aws_kms_key');
  if (key?.enable_key_rotation !== true) errs.push('kms: key rotation must be on');
  const ecr = r('ecr', 'aws_ecr_repository');
  if (ecr && ecr.image_tag_mutability !== 'IMMUTABLE') errs.push('ecr: tags must be immutable');
  return errs;
}

// Node architecture = image architecture (images.yml builds linux/amd64 unless it lists arm64 platforms).
export function checkArch(m, env, workflowText, eksText = '') {
  const errs = [], arm = /platforms:[^\n]*arm64/.test(workflowText);
  if (arm) return errs;
  for (const k of ['system_instance_types', 'matching_instance_types']) for (const t of m.tfvars?.[k] || [])
    if (/^[a-z]+[0-9]+g[a-z]*\./.test(t)) errs.push(`${env}: ${k} ${t} is arm64 but images.yml builds amd64 only`);
  if (/ami_type\s*=\s*"[^"]*ARM/.test(eksText)) errs.push('eks: arm64 AMI for amd64 images');
  return errs;
}
