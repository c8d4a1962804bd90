#!/usr/bin/env node
// Offline checks of observability/ for tests/observability/suite.sh.
//
//   node check.mjs CHECK      exit 0 if the check holds, else print why and exit 1
//   node check.mjs exprs DIR  write every PromQL expression (rules, dashboards)
//                             as one rule file per source into DIR, for promtool
//   node check.mjs used-metrics   print the metric names that rules and
//                             dashboards read from services (one a line)
//
// CHECK is one of: contract, readme, rules-meta, runbooks, tests-cover,
// eval-order, metrics-known, labels-known, dashboards, dashboard-vars,
// datasources, loki-labels, alertmanager, helm.
// Run from anywhere; paths are resolved from the repository root.
import { readFileSync, readdirSync, existsSync, writeFileSync, mkdirSync } from 'node:fs';
import { join, dirname, basename } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';
import { parser } from '@prometheus-io/lezer-promql';

// OBS_CHECK_ROOT points the checks at a copy of the tree (the suite's self-tests).
const ROOT = process.env.OBS_CHECK_ROOT ?? join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const OBS = join(ROOT, 'observability');
const RULES_DIR = join(OBS, 'prometheus', 'rules');
const RULE_TESTS_DIR = join(OBS, 'prometheus', 'tests');
const DASH_DIR = join(OBS, 'grafana', 'dashboards');
const SERVICES = ['gateway', 'trading-api', 'matching', 'wallet', 'risk', 'catalog', 'order'];
const SEVERITIES = ['page', 'ticket', 'info'];
// Series Prometheus makes itself rather than scraping them from a service.
const SYNTHETIC = ['up', 'ALERTS', 'ALERTS_FOR_STATE', 'scrape_duration_seconds', 'scrape_samples_scraped',
  'scrape_samples_post_metric_relabeling', 'scrape_series_added'];
// Grafana's own variables.
const GRAFANA_BUILTINS = new Set(['__rate_interval', '__interval', '__interval_ms', '__range', '__range_s', '__range_ms',
  '__from', '__to', '__dashboard', '__org', '__user', '__name', '__timeFilter', '__auto', '__all']);
// Label names that would make a series per user, order, request...: never labels.
const UNBOUNDED_LABELS = /^(user|user_id|order_id|request_id|trace_id|id|address|ip|path|url|email|client_order_id)$/;

const problems = [];
const fail = (msg) => problems.push(msg);

// ------------------------------------------------------------------ loading

const readYaml = (p) => YAML.parse(readFileSync(p, 'utf8'));
const ls = (dir, ext) => (existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith(ext)).sort().map((f) => join(dir, f)) : []);
const rel = (p) => p.slice(ROOT.length + 1);

function loadContract() {
  return JSON.parse(readFileSync(join(OBS, 'metrics-contract.json'), 'utf8'));
}

function loadRules() {
  const out = [];
  for (const file of ls(RULES_DIR, '.yml')) {
    for (const g of readYaml(file).groups ?? []) {
      for (const r of g.rules ?? []) out.push({ ...r, group: g.name, file: rel(file) });
    }
  }
  return out;
}

function loadDashboards() {
  return ls(DASH_DIR, '.json').map((file) => {
    try {
      return { file: rel(file), json: JSON.parse(readFileSync(file, 'utf8')) };
    } catch (e) {
      fail(`${rel(file)}: not JSON: ${e.message}`);
      return { file: rel(file), json: { panels: [], templating: { list: [] } } };
    }
  });
}

// Panels including those nested in collapsed rows.
function allPanels(d) {
  const out = [];
  for (const p of d.panels ?? []) { out.push(p); for (const q of p.panels ?? []) out.push(q); }
  return out;
}

function provisionedDatasources() {
  const f = join(OBS, 'grafana', 'provisioning', 'datasources', 'datasources.yml');
  return readYaml(f).datasources ?? [];
}

// --------------------------------------------------------------- PromQL

// Replaces Grafana variables so the expression is plain PromQL. Ranges
// become 5m; any other variable becomes the word x (variables sit inside
// label matcher strings; one used elsewhere fails to parse, as it should).
function degrafana(expr) {
  return expr
    .replace(/\$\{(__rate_interval|__interval|__range)(:[^}]*)?\}|\$(__rate_interval|__interval|__range)\b/g, '5m')
    .replace(/\$\{[A-Za-z0-9_]+(:[^}]*)?\}|\$[A-Za-z_][A-Za-z0-9_]*|\[\[[A-Za-z0-9_]+\]\]/g, 'x');
}

// label_values(selector, label) / label_values(label) / query_result(expr)
function varQueryToPromql(q) {
  let m = /^\s*label_values\((.*),\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$/.exec(q);
  if (m) return m[1];
  m = /^\s*query_result\((.*)\)\s*$/.exec(q);
  if (m) return m[1];
  if (/^\s*label_values\(\s*[A-Za-z_][A-Za-z0-9_]*\s*\)\s*$/.test(q)) return null;
  if (/^\s*(label_names|metrics)\(/.test(q)) return null;
  return q;
}

// Every PromQL expression in rules and dashboards: {where, expr (plain PromQL)}.
function allExprs() {
  const out = [];
  for (const r of loadRules()) out.push({ where: `${r.file} ${r.record ?? r.alert}`, expr: String(r.expr), kind: 'rule' });
  const prom = new Set(provisionedDatasources().filter((d) => d.type === 'prometheus').map((d) => d.uid));
  for (const { file, json } of loadDashboards()) {
    for (const p of allPanels(json)) {
      for (const t of p.targets ?? []) {
        const ds = t.datasource ?? p.datasource;
        if (ds && prom.has(ds.uid) && t.expr !== undefined) {
          out.push({ where: `${file} panel ${p.id} "${p.title}" ${t.refId}`, expr: degrafana(t.expr), kind: 'dashboard' });
        }
      }
    }
    for (const a of json.annotations?.list ?? []) {
      if (a.expr && a.datasource && prom.has(a.datasource.uid)) out.push({ where: `${file} annotation "${a.name}"`, expr: degrafana(a.expr), kind: 'dashboard' });
    }
    for (const v of json.templating?.list ?? []) {
      if (v.type !== 'query' || !v.datasource || !prom.has(v.datasource.uid)) continue;
      const q = typeof v.query === 'string' ? v.query : v.query?.query;
      const e = q && varQueryToPromql(q);
      if (e) out.push({ where: `${file} variable ${v.name}`, expr: degrafana(e), kind: 'dashboard' });
    }
  }
  return out;
}

function textOf(src, n) { return src.slice(n.from, n.to); }
function unquote(s) { return s.replace(/^["'`]|["'`]$/g, '').replace(/\\(.)/g, '$1'); }

// Parses one expression: {error, selectors: [{name, labels: [names]}], grouping: [label names]}.
function analyse(expr) {
  const tree = parser.parse(expr);
  const selectors = [];
  const grouping = [];
  let error = null;
  tree.iterate({
    enter(n) {
      if (n.type.isError && !error) error = `syntax error at offset ${n.from}: ...${expr.slice(Math.max(0, n.from - 20), n.from + 20)}...`;
      if (n.name === 'GroupingLabels') {
        for (let c = n.node.firstChild; c; c = c.nextSibling) if (c.name === 'LabelName') grouping.push(textOf(expr, c));
      }
      if (n.name === 'VectorSelector') {
        let name = null; const labels = [];
        const walk = (node) => {
          for (let c = node.firstChild; c; c = c.nextSibling) {
            if (c.name === 'Identifier' && node.name === 'VectorSelector') name = textOf(expr, c);
            else if (c.name === 'UnquotedLabelMatcher' || c.name === 'QuotedLabelMatcher') {
              const ln = c.getChild('LabelName') ?? c.getChild('QuotedLabelName');
              const lv = c.getChild('StringLiteral');
              const label = ln ? unquote(textOf(expr, ln)) : null;
              if (label === '__name__' && lv) name = unquote(textOf(expr, lv));
              else if (label) labels.push(label);
            } else if (c.name === 'QuotedLabelName') name = unquote(textOf(expr, c));
            else walk(c);
          }
        };
        walk(n.node);
        selectors.push({ name, labels });
      }
    },
  });
  return { error, selectors, grouping };
}

// Names a service exports, from the contract (histograms expand to their series).
function exportedNames(contract) {
  const m = new Map();
  for (const c of contract) {
    const labels = new Set([...c.labels, 'job', 'instance']);
    if (c.type === 'histogram') {
      m.set(`${c.name}_bucket`, new Set([...labels, 'le']));
      m.set(`${c.name}_sum`, labels);
      m.set(`${c.name}_count`, labels);
    } else m.set(c.name, labels);
  }
  return m;
}

// Recorded series and the labels they can carry: the level part of the name
// (job_route:... -> job, route), the rule's static labels and every label the
// expression groups or matches on. A heuristic, but one that catches typos.
function recordedNames(rules) {
  const m = new Map();
  for (const r of rules.filter((x) => x.record)) {
    const set = m.get(r.record) ?? new Set();
    for (const t of r.record.split(':')[0].split('_')) set.add(t);
    for (const l of Object.keys(r.labels ?? {})) set.add(l);
    for (const l of analyse(String(r.expr)).grouping) set.add(l);
    m.set(r.record, set);
  }
  return m;
}

// Metric name -> where it is read, for every series a service must export.
function usedRawMetrics() {
  const recorded = recordedNames(loadRules());
  const used = new Map();
  for (const e of allExprs()) {
    for (const s of analyse(e.expr).selectors) {
      if (!s.name || recorded.has(s.name) || SYNTHETIC.includes(s.name)) continue;
      if (!used.has(s.name)) used.set(s.name, []);
      used.get(s.name).push(e.where);
    }
  }
  return new Map([...used].sort(([a], [b]) => a.localeCompare(b)));
}

// Reads a text-format scrape: metric name -> array of label-name sets.
function parseScrape(text) {
  const out = new Map();
  for (const line of text.split('\n')) {
    if (!line.trim() || line.startsWith('#')) continue;
    const m = /^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{(.*)\})?\s/.exec(line);
    if (!m) continue;
    const labels = [...(m[3] ?? '').matchAll(/([a-zA-Z_][a-zA-Z0-9_]*)="/g)].map((x) => x[1]).sort();
    if (!out.has(m[1])) out.set(m[1], []);
    out.get(m[1]).push(labels);
  }
  return out;
}

// live [--strict] FILE...: FILE is one service's /metrics dump, named
// <service>.<anything> (the service name picks its contract metrics).
// Fails when a metric read by rules or dashboards is exported by no file.
// Contract gaps of a service and label-set mismatches are warnings, or
// failures with --strict.
function live(args) {
  const strict = args.includes('--strict');
  const files = args.filter((a) => a !== '--strict');
  if (!files.length) { console.log('no scrape dumps given'); return 2; }
  const exported = new Map();
  const bySvc = new Map();
  for (const f of files) {
    const svc = basename(f).replace(/\..*$/, '');
    const text = readFileSync(f, 'utf8');
    const parsed = parseScrape(text);
    if (!parsed.size) fail(`${basename(f)}: no samples (is ${svc} up?)`);
    bySvc.set(svc, parsed);
    for (const [n, sets] of parsed) exported.set(n, [...(exported.get(n) ?? []), ...sets]);
  }
  for (const [name, all] of usedRawMetrics()) {
    const where = [...new Set(all)];
    if (!exported.has(name)) fail(`missing: ${name} (read by ${where.slice(0, 3).join('; ')}${where.length > 3 ? `; +${where.length - 3} more` : ''})`);
  }
  const warn = [];
  const contract = loadContract();
  for (const [svc, parsed] of bySvc) {
    if (!SERVICES.includes(svc)) continue;
    for (const m of contract.filter((x) => x.service === svc)) {
      const series = m.type === 'histogram' ? `${m.name}_count` : m.name;
      if (!parsed.has(series)) warn.push(`${svc} does not export ${m.name} (contract)`);
    }
  }
  for (const m of contract) {
    const want = [...m.labels].sort().join(',');
    const series = m.type === 'histogram' ? `${m.name}_count` : m.name;
    for (const [svc, parsed] of bySvc) {
      for (const set of parsed.get(series) ?? []) {
        const got = set.filter((l) => l !== 'job' && l !== 'instance').join(',');
        if (got !== want) { warn.push(`${svc}: ${m.name} has labels {${got}}, the contract says {${want}}`); break; }
      }
    }
  }
  for (const w of warn) (strict ? fail : (x) => console.log(`warning: ${x}`))(w);
  const used = usedRawMetrics().size;
  if (!problems.length) console.log(`all ${used} metrics read by rules and dashboards are exported (${files.length} dumps)`);
  return problems.length ? 1 : 0;
}

// ------------------------------------------------------------------ checks

const kebab = (s) => s.replace(/([a-z0-9])([A-Z])/g, '$1-$2').replace(/([A-Z])([A-Z][a-z])/g, '$1-$2').toLowerCase();

const CHECKS = {
  // The contract is well-formed and its labels bounded.
  contract() {
    const c = loadContract();
    const seen = new Set();
    for (const m of c) {
      const keys = Object.keys(m).sort().join(',');
      if (keys !== 'help,labels,name,service,type') fail(`${m.name}: fields must be name,type,labels,service,help (got ${keys})`);
      if (!/^[a-z_][a-z0-9_]*$/.test(m.name)) fail(`${m.name}: not a valid metric name`);
      if (seen.has(m.name)) fail(`${m.name}: listed twice`);
      seen.add(m.name);
      if (!['counter', 'gauge', 'histogram'].includes(m.type)) fail(`${m.name}: type ${m.type}`);
      if (m.type === 'counter' && !m.name.endsWith('_total')) fail(`${m.name}: counters end in _total`);
      if (m.type !== 'counter' && m.name.endsWith('_total')) fail(`${m.name}: only counters end in _total`);
      if (m.type === 'histogram' && !/_(seconds|bytes)$/.test(m.name)) fail(`${m.name}: histograms carry a base unit suffix`);
      if (!Array.isArray(m.labels)) fail(`${m.name}: labels must be an array`);
      for (const l of m.labels ?? []) {
        if (UNBOUNDED_LABELS.test(l)) fail(`${m.name}: label ${l} is unbounded`);
        if (['job', 'instance', 'le'].includes(l)) fail(`${m.name}: label ${l} is reserved`);
      }
      if (m.service !== '*' && !SERVICES.includes(m.service)) fail(`${m.name}: unknown service ${m.service}`);
      if (!m.help || m.help.length < 10) fail(`${m.name}: help missing`);
    }
    for (const need of ['gateway', 'trading-api', 'matching', 'wallet', 'risk', 'catalog', 'order']) {
      if (!c.some((m) => m.service === need)) fail(`no domain metric for ${need}`);
    }
  },

  // The human contract (README) names every metric of the machine one.
  readme() {
    const text = readFileSync(join(OBS, 'README.md'), 'utf8');
    for (const m of loadContract()) if (!text.includes(`\`${m.name}\``)) fail(`observability/README.md does not document ${m.name}`);
  },

  // Alerts carry severity, summary, description and a runbook_url of the form docs/runbooks/<kebab>.md.
  'rules-meta'() {
    const rules = loadRules();
    if (!rules.some((r) => r.alert)) fail('no alerts found');
    for (const r of rules.filter((x) => x.alert)) {
      const where = `${r.file} ${r.alert}`;
      if (!SEVERITIES.includes(r.labels?.severity)) fail(`${where}: labels.severity must be one of ${SEVERITIES} (got ${r.labels?.severity})`);
      for (const a of ['summary', 'description', 'runbook_url']) if (!r.annotations?.[a]) fail(`${where}: annotation ${a} missing`);
      const want = `docs/runbooks/${kebab(r.alert)}.md`;
      if (r.annotations?.runbook_url !== want) fail(`${where}: runbook_url must be ${want} (got ${r.annotations?.runbook_url})`);
    }
    for (const r of rules.filter((x) => x.record)) {
      if (!/^[a-z_]+:[a-z0-9_]+:[a-z0-9_]+$/.test(r.record)) fail(`${r.file} ${r.record}: recorded names follow level:metric:operations`);
    }
  },

  // Every runbook exists and says what the alert means, how to check, how to mitigate.
  runbooks() {
    const alerts = [...new Set(loadRules().filter((r) => r.alert).map((r) => r.alert))];
    const files = new Set();
    for (const a of alerts) {
      const f = join(ROOT, 'docs', 'runbooks', `${kebab(a)}.md`);
      files.add(basename(f));
      if (!existsSync(f)) { fail(`runbook missing: ${rel(f)}`); continue; }
      const t = readFileSync(f, 'utf8');
      if (!t.includes(a)) fail(`${rel(f)}: does not name the alert ${a}`);
      for (const h of ['## Meaning', '## Check', '## Mitigate']) if (!t.includes(h)) fail(`${rel(f)}: section "${h}" missing`);
    }
    for (const f of ls(join(ROOT, 'docs', 'runbooks'), '.md')) {
      if (basename(f) !== 'README.md' && !files.has(basename(f))) fail(`${rel(f)}: no alert points here`);
    }
  },

  // Every alert rule (each severity/window variant) has a promtool test that
  // expects it to fire, and every alert name a test that expects silence.
  'tests-cover'() {
    const fired = []; const silent = new Set();
    for (const f of ls(RULE_TESTS_DIR, '.yml')) {
      for (const t of readYaml(f).tests ?? []) {
        for (const a of t.alert_rule_test ?? []) {
          if ((a.exp_alerts ?? []).length === 0) silent.add(a.alertname);
          for (const e of a.exp_alerts ?? []) fired.push({ name: a.alertname, labels: e.exp_labels ?? {} });
        }
      }
    }
    for (const r of loadRules().filter((x) => x.alert)) {
      const ok = fired.some((f) => f.name === r.alert && Object.entries(r.labels ?? {}).every(([k, v]) => String(f.labels[k]) === String(v)));
      if (!ok) fail(`no promtool test expects ${r.alert} ${JSON.stringify(r.labels)} to fire`);
      if (!silent.has(r.alert)) fail(`no promtool test expects ${r.alert} to stay silent`);
    }
  },

  // promtool evaluates groups in no fixed order unless told: each test file
  // must order every group of the rule files it loads (recording first).
  'eval-order'() {
    for (const f of ls(RULE_TESTS_DIR, '.yml')) {
      const t = readYaml(f);
      const groups = [];
      for (const rf of t.rule_files ?? []) for (const g of readYaml(join(dirname(f), rf)).groups ?? []) groups.push(g.name);
      const order = t.group_eval_order ?? [];
      const missing = groups.filter((g) => !order.includes(g));
      if (missing.length) fail(`${rel(f)}: group_eval_order lacks ${missing.join(', ')}`);
    }
  },

  // Every metric read by a rule or a panel is in the contract, recorded by a rule, or made by Prometheus.
  'metrics-known'() {
    const rules = loadRules();
    const known = new Set([...exportedNames(loadContract()).keys(), ...recordedNames(rules).keys(), ...SYNTHETIC]);
    for (const e of allExprs()) {
      const a = analyse(e.expr);
      if (a.error) fail(`${e.where}: ${a.error}`);
      for (const s of a.selectors) {
        if (!s.name) fail(`${e.where}: selector without a metric name`);
        else if (!known.has(s.name)) fail(`${e.where}: metric ${s.name} is neither in observability/metrics-contract.json nor recorded`);
      }
    }
  },

  // Label matchers name labels the metric has.
  'labels-known'() {
    const rules = loadRules();
    const exported = exportedNames(loadContract());
    const recorded = recordedNames(rules);
    const allow = new Map([...exported, ...recorded, ['up', new Set(['job', 'instance'])]]);
    for (const e of allExprs()) {
      for (const s of analyse(e.expr).selectors) {
        const ok = allow.get(s.name);
        if (!ok) continue;
        for (const l of s.labels) if (!ok.has(l)) fail(`${e.where}: ${s.name} has no label ${l}`);
      }
    }
  },

  // Dashboards: unique uids and panel ids, layout, targets present.
  dashboards() {
    const ds = loadDashboards();
    if (ds.length < 8) fail(`expected at least 8 dashboards, found ${ds.length}`);
    const uids = new Set();
    for (const { file, json } of ds) {
      if (!json.uid || !json.title) fail(`${file}: uid and title required`);
      if (uids.has(json.uid)) fail(`${file}: uid ${json.uid} used twice`);
      uids.add(json.uid);
      const ids = new Set();
      for (const p of allPanels(json)) {
        if (typeof p.id !== 'number') fail(`${file}: panel "${p.title}" has no numeric id`);
        if (ids.has(p.id)) fail(`${file}: panel id ${p.id} used twice`);
        ids.add(p.id);
        const g = p.gridPos;
        if (!g || g.w < 1 || g.x + g.w > 24 || g.h < 1) fail(`${file}: panel ${p.id} has a bad gridPos`);
        if (p.type !== 'row' && p.type !== 'text' && !(p.targets ?? []).length) fail(`${file}: panel ${p.id} "${p.title}" has no query`);
        for (const t of p.targets ?? []) if (!t.expr) fail(`${file}: panel ${p.id} target ${t.refId} has no expr`);
      }
    }
    const names = ['exchange-overview', 'golden-signals', 'slo-error-budget', 'kafka-lag', 'matching-engine', 'wallet-withdrawals', 'risk', 'shop-demo'];
    for (const n of names) if (!uids.has(n)) fail(`dashboard ${n} missing`);
    if (!ds.some(({ json }) => allPanels(json).some((p) => p.type === 'logs'))) fail('no Loki logs panel');
    const golden = ds.find(({ json }) => json.uid === 'golden-signals');
    if (golden && !(golden.json.templating?.list ?? []).some((v) => v.name === 'job')) fail('golden-signals is not templated by job');
  },

  // Every $var used is defined in the dashboard (or is Grafana's own).
  'dashboard-vars'() {
    for (const { file, json } of loadDashboards()) {
      const defined = new Set((json.templating?.list ?? []).map((v) => v.name));
      const used = new Set();
      const scan = (s) => {
        for (const m of String(s).matchAll(/\$\{([A-Za-z0-9_]+)(?::[^}]*)?\}|\$([A-Za-z_][A-Za-z0-9_]*)|\[\[([A-Za-z0-9_]+)\]\]/g)) used.add(m[1] ?? m[2] ?? m[3]);
      };
      const walk = (o) => {
        if (typeof o === 'string') scan(o);
        else if (Array.isArray(o)) o.forEach(walk);
        else if (o && typeof o === 'object') Object.values(o).forEach(walk);
      };
      walk(json.panels);
      walk((json.templating?.list ?? []).map((v) => v.query));
      walk(json.annotations);
      for (const u of used) if (!defined.has(u) && !GRAFANA_BUILTINS.has(u)) fail(`${file}: variable $${u} is used but not defined`);
      for (const d of defined) if (!used.has(d)) fail(`${file}: variable $${d} is defined but never used`);
    }
  },

  // Every datasource reference resolves to a provisioned datasource of the same type,
  // and the Helm values provision the same uids.
  datasources() {
    const prov = provisionedDatasources();
    const byUid = new Map(prov.map((d) => [d.uid, d]));
    for (const need of ['prometheus', 'loki', 'tempo']) if (!byUid.has(need)) fail(`datasource ${need} not provisioned`);
    const loki = byUid.get('loki');
    const derived = loki?.jsonData?.derivedFields ?? [];
    if (!derived.some((f) => f.datasourceUid === 'tempo' && /trace_id/.test(f.matcherRegex))) fail('Loki has no trace_id derived field to Tempo');
    if (!derived.some((f) => /request_id/.test(f.matcherRegex))) fail('Loki has no request_id derived field');
    if (byUid.get('tempo')?.jsonData?.tracesToLogsV2?.datasourceUid !== 'loki') fail('Tempo does not link traces to Loki logs');
    const refs = [];
    for (const { file, json } of loadDashboards()) {
      for (const p of allPanels(json)) {
        if (p.datasource) refs.push([`${file} panel ${p.id}`, p.datasource]);
        for (const t of p.targets ?? []) if (t.datasource) refs.push([`${file} panel ${p.id} ${t.refId}`, t.datasource]);
      }
      for (const v of json.templating?.list ?? []) if (v.datasource) refs.push([`${file} variable ${v.name}`, v.datasource]);
      for (const a of json.annotations?.list ?? []) if (a.datasource) refs.push([`${file} annotation ${a.name}`, a.datasource]);
    }
    for (const [where, ref] of refs) {
      const d = typeof ref === 'string' ? prov.find((x) => x.name === ref || x.uid === ref) : byUid.get(ref.uid);
      if (!d) fail(`${where}: datasource ${JSON.stringify(ref)} is not provisioned`);
      else if (typeof ref === 'object' && ref.type && ref.type !== d.type) fail(`${where}: datasource ${ref.uid} is ${d.type}, not ${ref.type}`);
    }
    const g = readYaml(join(OBS, 'helm', 'grafana-values.yaml'));
    const helmDs = g?.datasources?.['datasources.yaml']?.datasources ?? [];
    for (const d of prov) {
      const h = helmDs.find((x) => x.uid === d.uid);
      if (!h) fail(`grafana-values.yaml: datasource ${d.uid} missing`);
      else if (h.type !== d.type) fail(`grafana-values.yaml: datasource ${d.uid} has type ${h.type}`);
      else if (JSON.stringify(h.jsonData?.derivedFields ?? null) !== JSON.stringify(d.jsonData?.derivedFields ?? null)) fail(`grafana-values.yaml: ${d.uid} derivedFields differ from provisioning`);
    }
  },

  // Loki stream selectors only use labels Alloy attaches.
  'loki-labels'() {
    const alloy = readYaml(join(OBS, 'helm', 'alloy-values.yaml'))?.alloy?.configMap?.content ?? '';
    if (!alloy) { fail('alloy-values.yaml: alloy.configMap.content missing'); return; }
    const labels = new Set();
    for (const m of alloy.matchAll(/target_label\s*=\s*"([A-Za-z_][A-Za-z0-9_]*)"/g)) labels.add(m[1]);
    const sl = /stage\.labels\s*\{\s*values\s*=\s*\{([^}]*)\}/.exec(alloy);
    if (sl) for (const m of sl[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*=/g)) labels.add(m[1]);
    for (const need of ['service', 'level']) if (!labels.has(need)) fail(`Alloy does not set the Loki label ${need}`);
    for (const bad of ['request_id', 'trace_id']) if (labels.has(bad)) fail(`Alloy makes ${bad} a label (unbounded); keep it in the line or structured metadata`);
    for (const f of ['ts', 'level', 'service', 'msg', 'request_id', 'trace_id']) if (!new RegExp(`\\b${f}\\b`).test(alloy)) fail(`Alloy does not extract the JSON field ${f}`);
    for (const { file, json } of loadDashboards()) {
      for (const p of allPanels(json)) {
        for (const t of p.targets ?? []) {
          if ((t.datasource ?? p.datasource)?.type !== 'loki') continue;
          const m = /^\s*\{([^}]*)\}/.exec(t.expr);
          if (!m) { fail(`${file} panel ${p.id}: LogQL must start with a stream selector`); continue; }
          for (const l of m[1].matchAll(/([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!=|!~|=)\s*"/g)) {
            if (!labels.has(l[1])) fail(`${file} panel ${p.id}: Loki label ${l[1]} is not set by Alloy`);
          }
          if (!/\|\s*json\b/.test(t.expr)) fail(`${file} panel ${p.id}: logs are JSON; parse them with | json`);
        }
      }
    }
  },

  // Alertmanager structure (amtool checks syntax and routes separately).
  alertmanager() {
    const am = readYaml(join(OBS, 'alertmanager', 'alertmanager.yml'));
    const rules = loadRules().filter((r) => r.alert);
    const alertNames = new Set(rules.map((r) => r.alert));
    const receivers = new Set((am.receivers ?? []).map((r) => r.name));
    const routes = am.route?.routes ?? [];
    if (!receivers.has(am.route?.receiver)) fail(`default receiver ${am.route?.receiver} undefined`);
    for (const r of routes) if (!receivers.has(r.receiver)) fail(`route to undefined receiver ${r.receiver}`);
    for (const s of new Set(rules.map((r) => r.labels?.severity))) {
      if (!routes.some((r) => (r.matchers ?? []).some((m) => m.replace(/\s/g, '') === `severity="${s}"`))) fail(`no route for severity=${s}`);
    }
    for (const r of am.receivers ?? []) {
      const hooks = [...(r.slack_configs ?? []), ...(r.webhook_configs ?? [])];
      if (!hooks.length) fail(`receiver ${r.name} has no Slack-shaped webhook`);
    }
    for (const ir of am.inhibit_rules ?? []) {
      for (const m of [...(ir.source_matchers ?? []), ...(ir.target_matchers ?? [])]) {
        const a = /^alertname\s*(=~|=)\s*"([^"]*)"$/.exec(m.trim());
        if (!a) continue;
        const names = a[1] === '=' ? [a[2]] : a[2].split('|');
        for (const n of names) if (!alertNames.has(n)) fail(`inhibit rule names unknown alert ${n}`);
      }
    }
    const td = (am.inhibit_rules ?? []).find((ir) => (ir.source_matchers ?? []).some((m) => /alertname\s*=\s*"TargetDown"/.test(m))
      && (ir.target_matchers ?? []).some((m) => /SLOErrorBudgetBurn/.test(m)));
    if (!td || !(td.equal ?? []).includes('job')) fail('TargetDown must inhibit SLOErrorBudgetBurn of the same job');
    // Labels alerts can carry: static rule labels (recording rules' too, they
    // flow into alerts) and whatever alert expressions group by.
    const alertLabels = new Set(['alertname']);
    for (const r of loadRules()) {
      for (const l of Object.keys(r.labels ?? {})) alertLabels.add(l);
      if (r.alert) for (const l of analyse(String(r.expr)).grouping) alertLabels.add(l);
    }
    const routesAll = [am.route ?? {}, ...routes];
    for (const rt of routesAll) {
      for (const l of rt.group_by ?? []) if (l !== '...' && !alertLabels.has(l)) fail(`group_by ${l} matches no alert label`);
    }
    for (const ir of am.inhibit_rules ?? []) {
      for (const l of ir.equal ?? []) if (!alertLabels.has(l) && l !== 'instance') fail(`inhibit equal: ${l} matches no alert label`);
    }
  },

  // The C sources register contract metrics with the contract's type and
  // labels (literal cm_metric_* calls in libcommon/src and services/).
  // Names outside the contract and contract metrics no source registers yet
  // are listed as notes: services are still being written.
  sources() {
    const contract = new Map(loadContract().map((m) => [m.name, m]));
    const files = [];
    const walk = (d) => {
      if (!existsSync(d)) return;
      for (const e of readdirSync(d, { withFileTypes: true })) {
        const p = join(d, e.name);
        if (e.isDirectory()) { if (e.name !== 'tests') walk(p); } else if (e.name.endsWith('.c')) files.push(p);
      }
    };
    walk(join(ROOT, 'libcommon', 'src')); walk(join(ROOT, 'services'));
    const re = /cm_metric_(counter|gauge|histogram)\(\s*"([a-zA-Z_:][a-zA-Z0-9_:]*)"\s*,\s*((?:"(?:[^"\\]|\\.)*"\s*)+),\s*("([^"]*)"|NULL)/g;
    const seen = new Set(), extra = [];
    for (const f of files) {
      const text = readFileSync(f, 'utf8');
      for (const m of text.matchAll(re)) {
        const [, type, name, , , labels = ''] = m;
        seen.add(name);
        const c = contract.get(name);
        if (!c) { extra.push(`${name} (${rel(f)})`); continue; }
        if (c.type !== type) fail(`${rel(f)}: ${name} registered as ${type}, the contract says ${c.type}`);
        const got = labels.split(',').map((x) => x.trim()).filter(Boolean).join(',');
        if (got !== c.labels.join(',')) fail(`${rel(f)}: ${name} has labels "${got}", the contract says "${c.labels.join(',')}"`);
      }
    }
    if (extra.length) console.log(`note: registered but not in the contract (add them): ${extra.join(', ')}`);
    const missing = [...contract.values()].filter((m) => m.service !== '*' && !seen.has(m.name)
      && existsSync(join(ROOT, 'services', m.service))).map((m) => m.name);
    if (missing.length) console.log(`note: contract metrics no source registers yet: ${missing.join(', ')}`);
  },

  // The lab's Prometheus scrapes the seven services under their names on
  // 127.0.0.1:8080-8086 (scripts/lab.sh rewrites exactly that form) and
  // loads rules/ relative to itself.
  'prom-config'() {
    const cfg = readYaml(join(OBS, 'prometheus', 'prometheus-local.yml'));
    const jobs = (cfg.scrape_configs ?? []).map((s) => [s.job_name, (s.static_configs ?? []).flatMap((x) => x.targets ?? [])]);
    SERVICES.forEach((svc, i) => {
      const j = jobs.find(([n]) => n === svc);
      if (!j) fail(`no scrape job ${svc}`);
      else if (JSON.stringify(j[1]) !== JSON.stringify([`127.0.0.1:${8080 + i}`])) fail(`job ${svc} must scrape 127.0.0.1:${8080 + i}, not ${j[1]}`);
    });
    for (const [n] of jobs) if (!SERVICES.includes(n)) fail(`unexpected scrape job ${n} (the lab offsets only the services' ports)`);
    if (JSON.stringify(cfg.rule_files) !== JSON.stringify(['rules/*.yml'])) fail('rule_files must be [rules/*.yml] (relative to the config file)');
  },

  // Helm values parse and carry what the platform expects.
  helm() {
    const dir = join(OBS, 'helm');
    for (const n of ['loki', 'tempo', 'grafana', 'alloy']) {
      const f = join(dir, `${n}-values.yaml`);
      if (!existsSync(f)) { fail(`${rel(f)} missing`); continue; }
      try {
        const docs = YAML.parseAllDocuments(readFileSync(f, 'utf8'));
        for (const d of docs) if (d.errors.length) fail(`${rel(f)}: ${d.errors[0].message}`);
        if (!docs.length || typeof docs[0].toJS() !== 'object') fail(`${rel(f)}: not a mapping`);
      } catch (e) { fail(`${rel(f)}: ${e.message}`); }
    }
    const g = readYaml(join(dir, 'grafana-values.yaml'));
    if (!g?.sidecar?.dashboards?.enabled) fail('grafana-values.yaml: dashboards sidecar disabled');
    const label = g?.sidecar?.dashboards?.label;
    const kust = readYaml(join(OBS, 'grafana', 'kustomization.yaml'));
    const gens = kust?.configMapGenerator ?? [];
    const files = gens.flatMap((x) => x.files ?? []).map((x) => x.replace(/^.*=/, ''));
    for (const f of ls(DASH_DIR, '.json')) if (!files.includes(`dashboards/${basename(f)}`)) fail(`kustomization.yaml: ${basename(f)} not in a ConfigMap`);
    const labels = { ...(kust?.generatorOptions?.labels ?? {}) };
    if (!label || labels[label] === undefined) fail(`kustomization.yaml: ConfigMaps lack the sidecar label ${label}`);
    const loki = readYaml(join(dir, 'loki-values.yaml'));
    if (!loki?.loki) fail('loki-values.yaml: no loki section');
    const tempo = readYaml(join(dir, 'tempo-values.yaml'));
    if (!tempo?.tempo) fail('tempo-values.yaml: no tempo section');
  },
};

// -------------------------------------------------------------------- main

const [cmd, arg] = process.argv.slice(2);
if (cmd === 'exprs') {
  // One rule file per expression source, so promtool's errors name it.
  mkdirSync(arg, { recursive: true });
  const exprs = allExprs().filter((e) => e.kind === 'dashboard');
  const groups = exprs.map((e, i) => ({ name: e.where, rules: [{ record: `check:expr:${i}`, expr: e.expr }] }));
  writeFileSync(join(arg, 'dashboard-exprs.yml'), YAML.stringify({ groups }));
  console.log(`${exprs.length} dashboard expressions`);
} else if (cmd === 'prometheusrule') {
  // observability/prometheus/k8s/prometheusrules.yaml: the same rule files
  // as PrometheusRule objects for the Prometheus Operator (kube-prometheus-stack
  // selects every PrometheusRule). Written to stdout; the suite checks the
  // committed file is current.
  const docs = ls(RULES_DIR, '.yml').map((f) => ({
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: {
      name: `exchange-${basename(f, '.yml')}`,
      labels: { 'app.kubernetes.io/part-of': 'exchange-lab', 'app.kubernetes.io/component': 'observability' },
    },
    spec: readYaml(f),
  }));
  process.stdout.write('# Generated from observability/prometheus/rules/*.yml by\n'
    + '#   node tests/observability/check.mjs prometheusrule > observability/prometheus/k8s/prometheusrules.yaml\n'
    + '# Do not edit: edit the rule files and regenerate (the observability suite checks it).\n'
    + docs.map((d) => '---\n' + YAML.stringify(d, { lineWidth: 0 })).join(''));
} else if (cmd === 'used-metrics') {
  console.log([...usedRawMetrics().keys()].join('\n'));
} else if (cmd === 'live') {
  const rc = live(process.argv.slice(3));
  for (const p of problems) console.log(p);
  process.exit(rc);
} else if (cmd === 'tap') {
  // tap CHECK:DESCRIPTION...: runs several checks in one process, one TAP result each.
  let i = 0, bad = 0;
  for (const spec of process.argv.slice(3)) {
    const [c, ...d] = spec.split(':');
    problems.length = 0;
    if (!CHECKS[c]) fail(`unknown check ${c}`);
    else { try { CHECKS[c](); } catch (e) { fail(`${c}: ${e.stack}`); } }
    i++; if (problems.length) bad++;
    console.log(`${problems.length ? 'not ok' : 'ok'} ${i} - ${d.join(':') || c}`);
    for (const p of problems.slice(0, 20)) console.log(`#   ${p}`);
    if (problems.length > 20) console.log(`#   ... ${problems.length - 20} more`);
  }
  console.log(`1..${i}`);
  process.exit(bad ? 1 : 0);
} else if (CHECKS[cmd]) {
  try { CHECKS[cmd](); } catch (e) { fail(`${cmd}: ${e.stack}`); }
  for (const p of problems) console.log(p);
  process.exit(problems.length ? 1 : 0);
} else {
  console.error(`usage: check.mjs ${Object.keys(CHECKS).join('|')}|exprs DIR|used-metrics`);
  process.exit(2);
}
