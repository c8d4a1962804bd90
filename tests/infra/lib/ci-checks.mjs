// images.yml structure, Dockerfiles, SOPS rules and files.
import { SERVICES, ENVS } from './common.mjs';
import { validateSops, validateEncrypted } from './schemas.mjs';

const SHA_PIN = /^[A-Za-z0-9_.-]+\/[A-Za-z0-9_./-]+@[0-9a-f]{40}$/;
export function checkWorkflow(wf) {
  const errs = [];
  if (!wf || typeof wf !== 'object') return ['workflow does not parse to a mapping'];
  const top = wf.permissions;
  if (!top || top === 'write-all' || Object.values(top).some(v => v === 'write')) errs.push('top-level permissions must be read-only (contents: read)');
  const jobs = wf.jobs || {};
  const build = Object.values(jobs).find(j => j.strategy?.matrix?.service);
  if (!build) errs.push('no build job with a matrix over services');
  else {
    const svcs = [...build.strategy.matrix.service].sort();
    if (JSON.stringify(svcs) !== JSON.stringify([...SERVICES].sort())) errs.push(`build matrix is [${svcs}], expected every service`);
    if (build.permissions?.['id-token'] !== 'write') errs.push('build job needs permissions id-token: write (OIDC for AWS and cosign keyless)');
    if (build.permissions?.contents === 'write') errs.push('build job must not write contents');
    const steps = build.steps || [], text = JSON.stringify(steps);
    const idx = re => steps.findIndex(s => re.test(JSON.stringify(s)));
    const trivy = steps.find(s => /aquasecurity\/trivy-action/.test(s.uses || ''));
    if (!trivy) errs.push('no Trivy scan step');
    else {
      if (!/HIGH/.test(trivy.with?.severity || '') || !/CRITICAL/.test(trivy.with?.severity || '')) errs.push('Trivy must check HIGH and CRITICAL');
      if (String(trivy.with?.['exit-code']) !== '1') errs.push('Trivy must fail the job (exit-code: 1)');
    }
    const pushAt = steps.findIndex(s => /build-push-action/.test(s.uses || '') && s.with?.push === true);
    if (pushAt < 0) errs.push('no push step');
    if (trivy && pushAt >= 0 && steps.indexOf(trivy) > pushAt) errs.push('Trivy must run before the push');
    if (idx(/sbom-action|syft/) < 0) errs.push('no SBOM step');
    const sign = steps.find(s => /cosign sign/.test(s.run || ''));
    if (!sign) errs.push('no cosign sign step');
    else {
      if (/--key\b/.test(sign.run)) errs.push('cosign must sign keyless (no --key)');
      if (!/@\$\{?DIGEST|@\$\{\{\s*steps\.[a-z-]+\.outputs\.digest/.test(sign.run)) errs.push('cosign must sign by digest (image@sha256:...)');
    }
  }
  const bump = Object.values(jobs).find(j => (j.steps || []).some(s => /k8s\/overlays\/dev/.test(s.run || '')));
  if (!bump) errs.push('no job that bumps the image tag in k8s/overlays/dev');
  else {
    if (bump.permissions?.contents !== 'write') errs.push('the bump job needs contents: write');
    if (!bump.needs) errs.push('the bump job must wait for the builds (needs)');
    if (!(bump.steps || []).some(s => /git commit/.test(s.run || ''))) errs.push('the bump job does not commit');
  }
  for (const [jn, j] of Object.entries(jobs)) for (const s of j.steps || [])
    if (s.uses && !s.uses.startsWith('./') && !SHA_PIN.test(s.uses)) errs.push(`${jn}: action ${s.uses} is not pinned by commit SHA`);
  return errs;
}

// Static checks of a service Dockerfile.
export function checkDockerfile(text, service, dataPaths = []) {
  const errs = [];
  const code = text.split('\n').filter(l => !l.trim().startsWith('#')).join('\n');
  const lines = text.replace(/\\\n/g, ' ').split('\n').map(l => l.trim()).filter(l => l && !l.startsWith('#'));
  const instr = lines.map(l => { const m = /^([A-Za-z]+)\s+(.*)$/.exec(l); return m ? [m[1].toUpperCase(), m[2]] : [l, '']; });
  const froms = instr.filter(([i]) => i === 'FROM');
  if (froms.length < 2) errs.push('not multi-stage (needs a build and a runtime stage)');
  if (froms.length && !/^(debian:(12|bookworm)[^ ]*)\s+AS\s+\w+/i.test(froms[0][1])) errs.push(`build stage is "${froms[0]?.[1]}", expected Debian bookworm`);
  const last = froms[froms.length - 1]?.[1] || '';
  if (!/distroless|-slim\b|:.*slim/.test(last)) errs.push(`runtime base "${last}" is not slim/distroless`);
  if (/:latest\b/.test(froms.map(f => f[1]).join(' ')) || froms.some(f => !/[:@]/.test(f[1].split(/\s+/)[0]))) errs.push('a base image is untagged or latest');
  const finalStage = instr.slice(instr.lastIndexOf(froms[froms.length - 1]));
  const users = finalStage.filter(([i]) => i === 'USER');
  const user = users[users.length - 1]?.[1];
  if (!user || !/^[0-9]+(:[0-9]+)?$/.test(user) || /^0(:|$)/.test(user)) errs.push(`runtime USER "${user}" must be numeric and non-root`);
  if (instr.some(([i]) => i === 'HEALTHCHECK')) errs.push('HEALTHCHECK is not allowed (Kubernetes probes own health)');
  for (const l of ['title', 'source', 'revision', 'version', 'licenses'])
    if (!new RegExp(`org\\.opencontainers\\.image\\.${l}=`).test(code)) errs.push(`no OCI label org.opencontainers.image.${l}`);
  if (!instr.some(([i, a]) => i === 'RUN' && /\bmake\b[^&]*\bbuild\b/.test(a))) errs.push('the build stage does not run make build');
  const bins = service === 'wallet' ? ['wallet', 'wallet-signer'] : [service];
  const esc = b => b.replace(/-/g, '\\-');
  for (const b of bins) {
    const direct = new RegExp(`build/bin/${esc(b)}(?![\\w-])`).test(code);
    const looped = new RegExp(`for (\\w+) in [^;]*(?<![\\w-])${esc(b)}(?![\\w-])[^;]*; do [^;]*build/bin/\\$\\1\\b`).test(code);
    if (!direct && !looped) errs.push(`image does not carry build/bin/${b}`);
  }
  // Data files the service opens by repository-relative default path.
  const workdir = finalStage.filter(([i]) => i === 'WORKDIR').pop()?.[1];
  if (dataPaths.length && workdir !== '/app') errs.push(`runtime WORKDIR is ${workdir}, the data files live under /app`);
  for (const d of dataPaths) if (!code.includes(d)) errs.push(`image lacks ${d} (the service's default data path)`);
  const ep = finalStage.find(([i]) => i === 'ENTRYPOINT');
  if (!ep || !ep[1].startsWith('[')) errs.push('ENTRYPOINT must be exec form');
  else if (!ep[1].includes(`/${service}"`)) errs.push(`ENTRYPOINT does not run ${service}`);
  if (instr.some(([i, a]) => (i === 'ARG' || i === 'ENV') && /(PASSWORD|TOKEN|SECRET|PRIVATE_KEY)/i.test(a))) errs.push('secret-like ARG/ENV in the image');
  if (instr.some(([i, a]) => i === 'ADD' && /^https?:/.test(a))) errs.push('ADD from a URL');
  return errs;
}

// .sops.yaml: one creation rule per env, KMS key of that env's account.
export function checkSopsConfig(cfg, accounts) {
  const errs = [], rules = cfg?.creation_rules || [];
  for (const e of ENVS) {
    const r = rules.find(x => new RegExp(x.path_regex).test(`k8s/overlays/${e}/secrets/x.sops.yaml`));
    if (!r) { errs.push(`.sops.yaml: no rule for ${e}`); continue; }
    for (const o of ENVS.filter(x => x !== e)) if (new RegExp(r.path_regex).test(`k8s/overlays/${o}/secrets/x.sops.yaml`)) errs.push(`.sops.yaml: the ${e} rule also matches ${o}`);
    const arn = r.kms || '';
    if (!new RegExp(`^arn:aws:kms:[a-z0-9-]+:${accounts[e]}:alias/exchange-${e}-secrets$`).test(arn)) errs.push(`.sops.yaml: ${e} key ${arn} is not alias/exchange-${e}-secrets in account ${accounts[e]}`);
    if (r.encrypted_regex && !new RegExp(r.encrypted_regex).test('data')) errs.push(`.sops.yaml: ${e} rule leaves data unencrypted`);
  }
  return errs;
}

export function checkSopsFile(doc) {
  if (!validateSops(doc)) return validateSops.errors.map(e => `${e.instancePath || '/'} ${e.message}`);
  const re = new RegExp(doc.sops.encrypted_regex || '.*'), errs = [];
  const keys = Object.keys(doc).filter(k => k !== 'sops' && re.test(k));
  if (!keys.length) errs.push('nothing is encrypted');
  for (const k of keys) if (!validateEncrypted(doc[k])) errs.push(`/${k} holds plaintext (not ENC[AES256_GCM,...])`);
  return errs;
}

// Repository-relative data paths a service's C sources use as defaults ("services/x/migrations", ...).
export function serviceDataPaths(root, service, fsmod, pathmod) {
  const dir = pathmod.join(root, 'services', service);
  const out = new Set();
  for (const f of fsmod.readdirSync(dir).filter(f => f.endsWith('.c')))
    for (const m of fsmod.readFileSync(pathmod.join(dir, f), 'utf8').matchAll(/"(services\/[a-z-]+\/[A-Za-z0-9._-]+)"/g))
      if (fsmod.existsSync(pathmod.join(root, m[1]))) out.add(m[1]);
  return [...out].sort();
}
