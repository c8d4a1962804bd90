#!/usr/bin/env node
// Runs the real Prometheus on loopback with observability/prometheus/prometheus-local.yml
// (targets pointed at a fixture server, intervals shortened) and checks what
// only live evaluation shows: every service scraped, every rule evaluates
// without error on realistic scrapes (no many-to-many matches, no type
// errors), every recorded series exists, no alert on a healthy system, and
// TargetDown pending for a service that stops answering. Prints TAP.
//   node live-prometheus.mjs FIXTURE_DIR TMP_DIR
import { spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { readFileSync, writeFileSync, existsSync } from 'node:fs';
import { join, dirname, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import YAML from 'yaml';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');
const PROM_DIR = join(ROOT, 'observability', 'prometheus');
const [fixtures, tmp] = process.argv.slice(2);
const DOWN = 'risk'; // this service's scrapes fail after the first checks

let n = 0, failed = 0;
const tap = (okay, name, diag = []) => {
  n++; if (!okay) failed++;
  console.log(`${okay ? 'ok' : 'not ok'} ${n} - ${name}`);
  if (!okay) for (const d of diag.slice(0, 15)) console.log(`#   ${d}`);
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// Fixture server: /<service>/metrics -> fixtures/<service>.prom, with every
// counter and histogram sample growing on each scrape so rates are not zero.
let scrapes = 0, downNow = false;
const server = createServer((req, res) => {
  const svc = req.url.replace(/^\/|\/metrics$/g, '');
  const file = join(fixtures, `${svc}.prom`);
  if ((downNow && svc === DOWN) || !existsSync(file)) { res.statusCode = 503; res.end(); return; }
  scrapes++;
  const grow = 1 + scrapes / 10;
  const text = readFileSync(file, 'utf8').split('\n').map((l) => {
    if (l.startsWith('#') || !l) return l;
    return /(_total|_bucket|_count|_sum)[{ ]/.test(l) ? l.replace(/ ([0-9.e+-]+)$/, (_, v) => ` ${(Number(v) * grow).toFixed(3)}`) : l;
  }).join('\n');
  res.setHeader('Content-Type', 'text/plain; version=0.0.4');
  res.end(text);
});
await new Promise((r) => server.listen(0, '127.0.0.1', r));
const fport = server.address().port;

// The lab's config, as scripts/lab.sh uses it, with test targets and intervals.
const cfg = YAML.parse(readFileSync(join(PROM_DIR, 'prometheus-local.yml'), 'utf8'));
cfg.global.scrape_interval = '1s';
cfg.global.scrape_timeout = '1s';
cfg.global.evaluation_interval = '1s';
cfg.rule_files = cfg.rule_files.map((f) => join(PROM_DIR, f));
for (const sc of cfg.scrape_configs) {
  sc.static_configs = [{ targets: [`127.0.0.1:${fport}`] }];
  sc.metrics_path = `/${sc.job_name}/metrics`;
}
writeFileSync(join(tmp, 'prometheus.yml'), YAML.stringify(cfg));

let prom, pport, base;
const stopAll = () => { try { prom?.kill('SIGTERM'); } catch {} server.close(); };
process.on('exit', stopAll);

async function query(q) {
  const r = await fetch(`${base}/api/v1/query?query=${encodeURIComponent(q)}`);
  const j = await r.json();
  if (j.status !== 'success') throw new Error(`${q}: ${j.error}`);
  return j.data.result;
}
async function until(fn, ms) {
  const deadline = Date.now() + ms;
  for (;;) {
    try { const v = await fn(); if (v) return v; } catch {}
    if (Date.now() > deadline) return null;
    await sleep(250);
  }
}

try {
  for (let attempt = 0; attempt < 5 && !base; attempt++) {
    pport = 20000 + Math.floor(Math.random() * 20000);
    prom = spawn('prometheus', [`--config.file=${join(tmp, 'prometheus.yml')}`, `--storage.tsdb.path=${join(tmp, `data${attempt}`)}`,
      `--web.listen-address=127.0.0.1:${pport}`, '--log.level=warn'], { stdio: ['ignore', 'ignore', 'pipe'] });
    let log = '', exited = false;
    prom.stderr.on('data', (d) => { log += d; });
    prom.on('exit', () => { exited = true; });
    // A taken port makes Prometheus exit at once: try another.
    const ready = await until(async () => {
      if (exited) return 'exited';
      return (await fetch(`http://127.0.0.1:${pport}/-/ready`)).ok;
    }, 15000);
    if (ready === true) base = `http://127.0.0.1:${pport}`;
    else { prom.kill('SIGKILL'); if (attempt === 4) tap(false, 'Prometheus starts with prometheus-local.yml', log.split('\n').slice(-5)); }
  }
  if (!base) throw new Error('no Prometheus');
  tap(true, 'Prometheus starts with prometheus-local.yml and its rule files');

  const jobs = cfg.scrape_configs.map((s) => s.job_name);
  const up = await until(async () => { const r = await query('up == 1'); return r.length === jobs.length ? r : null; }, 15000);
  tap(!!up, `all ${jobs.length} services are scraped (up == 1)`, [`up: ${JSON.stringify(await query('up'))}`]);

  // Every rule evaluated at least twice (rates need two scrapes) without error.
  const rulesOk = await until(async () => {
    const g = (await (await fetch(`${base}/api/v1/rules`)).json()).data.groups;
    const all = g.flatMap((x) => x.rules);
    return scrapes >= 3 * jobs.length && all.every((r) => r.lastEvaluation && !r.lastEvaluation.startsWith('0001')) ? all : null;
  }, 20000);
  const bad = (rulesOk ?? []).filter((r) => r.health !== 'ok');
  tap(!!rulesOk && bad.length === 0, 'every rule evaluates without error on live scrapes',
    bad.map((r) => `${r.name}: ${r.health} ${r.lastError ?? ''}`));

  // Every recorded series exists (scrapes of all services feed every rule).
  const records = [...new Set((rulesOk ?? []).filter((r) => r.type === 'recording').map((r) => r.name))];
  await sleep(2000);
  const empty = [];
  for (const name of records) if ((await query(`count(${name})`)).length === 0) empty.push(name);
  tap(records.length > 0 && empty.length === 0, `all ${records.length} recorded series have data`, empty.map((e) => `no series: ${e}`));

  const firing = await query('ALERTS');
  tap(firing.length === 0, 'no alert is pending or firing on a healthy system',
    firing.map((a) => `${a.metric.alertname} ${a.metric.alertstate} ${JSON.stringify(a.metric)}`));

  downNow = true;
  const pending = await until(async () => (await query(`ALERTS{alertname="TargetDown",job="${DOWN}"}`)).length > 0, 15000);
  tap(!!pending, `TargetDown goes pending when ${DOWN} stops answering`);
  const others = (await query('ALERTS')).filter((a) => a.metric.job !== DOWN);
  tap(others.length === 0, 'and no other service alerts', others.map((a) => `${a.metric.alertname} ${a.metric.job}`));
} catch (e) {
  tap(false, `live Prometheus check: ${e.message}`);
}
console.log(`1..${n}`);
stopAll();
process.exit(failed ? 1 : 0);
