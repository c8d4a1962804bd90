#!/usr/bin/env node
// Posts alerts to a running Alertmanager (observability/alertmanager/alertmanager.yml)
// and checks which ones its inhibit rules suppress. Prints TAP.
//   node inhibition.mjs http://127.0.0.1:PORT
const base = process.argv[2];

// [labels, expected state, why]
const CASES = [
  [{ alertname: 'TargetDown', job: 'catalog', instance: 'c1', severity: 'page' }, 'active', 'TargetDown itself stays active'],
  [{ alertname: 'SLOErrorBudgetBurn', job: 'catalog', slo: 'availability', severity: 'page', window: '1h' }, 'suppressed', 'TargetDown inhibits the SLO alert of the same job'],
  [{ alertname: 'SLOErrorBudgetBurn', job: 'gateway', slo: 'availability', severity: 'page', window: '1h' }, 'active', '... but not the SLO alert of another job'],
  [{ alertname: 'SLOErrorBudgetBurn', job: 'gateway', slo: 'availability', severity: 'ticket', window: '1d' }, 'suppressed', 'a page inhibits the ticket of the same alert, job and SLO'],
  [{ alertname: 'SLOErrorBudgetBurn', job: 'trading-api', slo: 'order-latency', severity: 'ticket', window: '3d' }, 'active', '... but not a ticket without a page'],
  [{ alertname: 'RedisDown', job: 'gateway', instance: 'g1', severity: 'ticket' }, 'active', 'RedisDown stays active'],
  [{ alertname: 'GatewayRateLimitFallback', job: 'gateway', instance: 'g1', severity: 'ticket' }, 'suppressed', 'RedisDown inhibits the rate-limit fallback of the same instance'],
  [{ alertname: 'GatewayRateLimitFallback', job: 'gateway', instance: 'g2', severity: 'ticket' }, 'active', '... but not of another instance'],
  [{ alertname: 'WalletSignerUnreachable', job: 'wallet', instance: 'w2', severity: 'page' }, 'active', 'WalletSignerUnreachable stays active'],
  [{ alertname: 'WalletWithdrawalQueueStuck', job: 'wallet', severity: 'page' }, 'suppressed', 'a signer outage inhibits the stuck-queue alert'],
  [{ alertname: 'SLOErrorBudgetBurn', job: 'wallet', slo: 'withdrawal-delay', severity: 'page', window: '6h' }, 'suppressed', '... and the withdrawal-delay SLO alert'],
  [{ alertname: 'SLOErrorBudgetBurn', job: 'wallet', slo: 'availability', severity: 'page', window: '1h' }, 'active', '... but not wallet availability'],
  [{ alertname: 'MatchingSnapshotTooOld', job: 'matching', market: 'BTC-USDT', severity: 'page' }, 'active', 'unrelated alerts are not inhibited'],
];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
let n = 0, failed = 0;
const tap = (okay, name) => { n++; if (!okay) failed++; console.log(`${okay ? 'ok' : 'not ok'} ${n} - ${name}`); };

try {
  const post = await fetch(`${base}/api/v2/alerts`, {
    method: 'POST', headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(CASES.map(([labels]) => ({ labels, annotations: { summary: 'test' } }))),
  });
  if (!post.ok) throw new Error(`POST /api/v2/alerts: ${post.status} ${await post.text()}`);
  // Alerts are ingested asynchronously: poll until all are listed (deadline 10 s).
  let alerts = [];
  for (const deadline = Date.now() + 10000; Date.now() < deadline; await sleep(100)) {
    alerts = await (await fetch(`${base}/api/v2/alerts`)).json();
    if (alerts.length >= CASES.length) break;
  }
  const key = (l) => JSON.stringify(Object.entries(l).sort());
  const got = new Map(alerts.map((a) => [key(a.labels), a.status.state]));
  for (const [labels, want, why] of CASES) {
    const state = got.get(key(labels));
    tap(state === want, `${why} (${labels.alertname} ${labels.job}${labels.instance ? ' ' + labels.instance : ''}: ${state ?? 'missing'}, want ${want})`);
  }
} catch (e) {
  tap(false, `talk to Alertmanager at ${base}: ${e.message}`);
}
console.log(`1..${n}`);
process.exit(failed ? 1 : 0);
