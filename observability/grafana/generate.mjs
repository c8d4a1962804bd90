#!/usr/bin/env node
// Generates the Grafana dashboards in dashboards/*.json.
//
// The JSON files are committed (Grafana, the sidecar and the provisioning
// provider read them as they are); this script is their source. Edit here,
// then run `node observability/grafana/generate.mjs` and commit both.
// tests/observability/suite.sh fails when the committed JSON differs from
// what this script writes.
//
//   node generate.mjs            write dashboards/ next to this script
//   node generate.mjs --out DIR  write into DIR instead (the suite uses this)
//
// Datasource uids must match provisioning/datasources/datasources.yml and
// the Grafana Helm values: prometheus, loki, tempo.
import { mkdirSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const PROM = { type: 'prometheus', uid: 'prometheus' };
const LOKI = { type: 'loki', uid: 'loki' };

const SERVICES = ['gateway', 'trading-api', 'matching', 'wallet', 'risk', 'catalog', 'order'];
// Probes and scrapes are not traffic.
const NOT_PROBES = 'route!~"/healthz|/readyz|/metrics|/admin/.*"';

// ---------------------------------------------------------------- builders

function target(expr, legend, extra = {}) {
  return { expr, legendFormat: legend ?? '__auto', ...extra };
}

function timeseries(title, targets, { unit = 'short', w = 12, h = 8, description, stack = false, min } = {}) {
  return {
    type: 'timeseries', title, description, datasource: PROM, w, h, targets,
    fieldConfig: {
      defaults: {
        unit,
        ...(min !== undefined ? { min } : {}),
        custom: { drawStyle: 'line', lineWidth: 1, fillOpacity: stack ? 30 : 10, showPoints: 'never',
          stacking: { mode: stack ? 'normal' : 'none', group: 'A' } },
      },
      overrides: [],
    },
    options: { legend: { displayMode: 'list', placement: 'bottom', showLegend: true }, tooltip: { mode: 'multi', sort: 'desc' } },
  };
}

function stat(title, expr, { unit = 'short', w = 4, h = 4, thresholds, description, decimals, legend = '', textMode = 'auto' } = {}) {
  return {
    type: 'stat', title, description, datasource: PROM, w, h,
    targets: [target(expr, legend, { instant: true })],
    fieldConfig: {
      defaults: {
        unit,
        ...(decimals !== undefined ? { decimals } : {}),
        thresholds: { mode: 'absolute', steps: thresholds ?? [{ color: 'green', value: null }] },
      },
      overrides: [],
    },
    options: { reduceOptions: { calcs: ['lastNotNull'], fields: '', values: false }, colorMode: 'value', graphMode: 'area', textMode },
  };
}

function table(title, targets, { w = 24, h = 8, description, unit = 'short' } = {}) {
  return {
    type: 'table', title, description, datasource: PROM, w, h,
    targets: targets.map((t) => ({ ...t, instant: true, format: 'table' })),
    fieldConfig: { defaults: { unit }, overrides: [] },
    options: { showHeader: true },
    transformations: [{ id: 'merge', options: {} }],
  };
}

// A Loki logs panel. The Loki datasource turns trace_id into a Tempo link and
// request_id into a search of every service's logs (derived fields).
function logs(title, expr, { w = 24, h = 10, description } = {}) {
  return {
    type: 'logs', title, description, datasource: LOKI, w, h,
    targets: [{ expr, queryType: 'range' }],
    options: { showTime: true, wrapLogMessage: true, prettifyLogMessage: false, enableLogDetails: true, sortOrder: 'Descending', dedupStrategy: 'none' },
  };
}

// Latency distribution from histogram buckets (Grafana's heatmap, buckets as given).
function heatmap(title, expr, { w = 12, h = 8, unit = 's', description } = {}) {
  return {
    type: 'heatmap', title, description, datasource: PROM, w, h,
    targets: [target(expr, '{{le}}', { format: 'heatmap' })],
    fieldConfig: { defaults: { custom: { scaleDistribution: { type: 'linear' } } }, overrides: [] },
    options: {
      calculate: false, cellGap: 1, yAxis: { unit, axisPlacement: 'left' },
      color: { mode: 'scheme', scheme: 'Oranges', exponent: 0.5, steps: 64, fill: 'dark', scale: 'exponential', reverse: false },
      rowsFrame: { layout: 'auto' }, tooltip: { mode: 'single', yHistogram: true }, legend: { show: true },
      filterValues: { le: 1e-9 },
    },
  };
}

function row(title) {
  return { type: 'row', title, collapsed: false, w: 24, h: 1, panels: [] };
}

function queryVar(name, query, { label, multi = false, includeAll = false, allValue } = {}) {
  return {
    name, label: label ?? name, type: 'query', datasource: PROM,
    query: { query, refId: `${name}-var` }, definition: query,
    refresh: 2, sort: 1, multi, includeAll, ...(allValue ? { allValue } : {}),
    current: {}, options: [], hide: 0,
  };
}

function customVar(name, values, { label, includeAll = true, allValue = '.*' } = {}) {
  return {
    name, label: label ?? name, type: 'custom', query: values.join(','),
    multi: true, includeAll, allValue, hide: 0,
    current: { selected: true, text: ['All'], value: ['$__all'] },
    options: [],
  };
}

function textVar(name, label) {
  return { name, label, type: 'textbox', query: '', current: { text: '', value: '' }, hide: 0 };
}

// Lays panels out left to right, wrapping at 24 columns, and numbers them.
function layout(panels) {
  let x = 0, y = 0, rowH = 0, id = 1;
  return panels.map((p) => {
    const { w, h, ...rest } = p;
    if (x + w > 24 || p.type === 'row') { x = 0; y += rowH; rowH = 0; }
    const out = { id: id++, ...rest, gridPos: { h, w, x, y } };
    if (out.targets) out.targets = out.targets.map((t, i) => ({ refId: String.fromCharCode(65 + i), datasource: out.datasource, ...t }));
    if (out.description === undefined) delete out.description;
    x += w; rowH = Math.max(rowH, h);
    if (p.type === 'row') { x = 0; y += h; rowH = 0; }
    return out;
  });
}

function dashboard({ uid, title, description, tags, vars = [], panels, time = 'now-3h' }) {
  return {
    uid, title, description, tags: ['exchange-lab', ...tags],
    editable: true, graphTooltip: 1, refresh: '30s', schemaVersion: 39, version: 1,
    time: { from: time, to: 'now' }, timezone: 'utc',
    annotations: { list: [{
      name: 'Firing alerts', datasource: PROM, enable: true, iconColor: 'red',
      expr: 'ALERTS{alertstate="firing",severity="page"}', titleFormat: '{{alertname}}', textFormat: '{{job}} {{slo}}',
      step: '60s', useValueForTime: false,
    }] },
    links: [{ title: 'Exchange Lab', type: 'dashboards', tags: ['exchange-lab'], asDropdown: true, includeVars: false, keepTime: true }],
    templating: { list: vars },
    panels: layout(panels),
  };
}

const RED = (v) => [{ color: 'green', value: null }, { color: 'red', value: v }];
const GOOD_ABOVE = (red, amber) => [{ color: 'red', value: null }, { color: 'orange', value: red }, { color: 'green', value: amber }];

// -------------------------------------------------------------- dashboards

const overview = dashboard({
  uid: 'exchange-overview', title: 'Exchange overview', tags: ['overview'],
  description: 'The whole exchange at a glance: traffic, errors, latency, SLO budgets, flow of orders, trades and withdrawals, firing alerts.',
  panels: [
    stat('Requests/s', 'sum(job:http_requests:rate5m)', { unit: 'reqps' }),
    stat('5xx ratio', 'sum(job:http_requests_errors:rate5m) / sum(job:http_requests:rate5m)', { unit: 'percentunit', thresholds: RED(0.001), decimals: 3 }),
    stat('Services up', `count(up{job=~"${SERVICES.join('|')}"} == 1) or vector(0)`, { thresholds: GOOD_ABOVE(6, 7), description: 'Of 7 services' }),
    stat('Alerts firing', 'count(ALERTS{alertstate="firing"}) or vector(0)', { thresholds: RED(1) }),
    stat('Orders accepted/s', 'sum(rate(trading_orders_total{result="accepted"}[$__rate_interval]))', { unit: 'reqps' }),
    stat('Trades/s', 'sum(rate(matching_trades_total[$__rate_interval]))', { unit: 'reqps' }),
    timeseries('Request rate by service', [target('job:http_requests:rate5m', '{{job}}')], { unit: 'reqps', w: 8 }),
    timeseries('5xx ratio by service', [target('job:http_requests_error:ratio_rate5m', '{{job}}')], { unit: 'percentunit', w: 8 }),
    timeseries('p99 latency by service', [target('job:http_request_duration_seconds:p99_5m', '{{job}}')], { unit: 's', w: 8 }),
    table('SLOs', [
      target('slo:objective:ratio', 'objective'),
      target('slo:sli_error:ratio_rate1h', 'bad 1h'),
      target('slo:error_budget_remaining:ratio30d', 'budget left'),
    ], { w: 12, unit: 'percentunit', description: 'Objective, share of bad events over the last hour and 30-day error budget left, per SLO.' }),
    table('Firing alerts', [target('ALERTS{alertstate="firing"}', '')], { w: 12 }),
    timeseries('Kafka consumer lag', [target('job_topic:kafka_consumer_lag:sum', '{{job}} {{topic}}')], { w: 8 }),
    timeseries('Withdrawal queue', [target('sum(wallet_withdrawal_queue_depth)', 'queued')], { w: 8 }),
    timeseries('Orders by result', [target('sum by (result) (rate(trading_orders_total[$__rate_interval]))', '{{result}}')], { unit: 'reqps', w: 8, stack: true }),
    timeseries('Order outbox', [
      target('sum(trading_outbox_pending)', 'rows pending'),
      target('max(trading_outbox_oldest_age_seconds)', 'oldest row age (s)'),
    ], { w: 8 }),
    timeseries('Gateway rejections', [
      target('sum by (scope) (rate(gateway_ratelimit_rejections_total[$__rate_interval]))', 'rate limited ({{scope}})'),
      target('sum by (reason) (rate(gateway_auth_failures_total[$__rate_interval]))', 'auth failed ({{reason}})'),
    ], { unit: 'reqps', w: 8 }),
    timeseries('Rate limiter on local fallback', [target('max(gateway_ratelimit_fallback)', 'fallback')], { w: 8, min: 0 }),
  ],
});

const golden = dashboard({
  uid: 'golden-signals', title: 'Golden signals', tags: ['services'],
  description: 'Traffic, errors, latency and saturation of one service, its dependencies and its logs.',
  vars: [
    queryVar('job', `label_values(up{job=~"${SERVICES.join('|')}"}, job)`, { label: 'service' }),
    queryVar('route', 'label_values(http_requests_total{job="$job"}, route)', { multi: true, includeAll: true, allValue: '.*' }),
    customVar('level', ['debug', 'info', 'warn', 'error'], { label: 'log level' }),
    textVar('request_id', 'request id'),
  ],
  panels: [
    row('Traffic and errors'),
    stat('Requests/s', 'job:http_requests:rate5m{job="$job"}', { unit: 'reqps' }),
    stat('5xx ratio', 'job:http_requests_error:ratio_rate5m{job="$job"}', { unit: 'percentunit', thresholds: RED(0.001), decimals: 3 }),
    stat('p99 latency', 'job:http_request_duration_seconds:p99_5m{job="$job"}', { unit: 's', thresholds: RED(0.25) }),
    stat('In flight', 'sum(http_requests_in_flight{job="$job"})'),
    stat('Up', 'min(up{job="$job"})', { thresholds: GOOD_ABOVE(0.5, 1) }),
    stat('Version', 'count by (version) (service_info{job="$job"})', { legend: '{{version}}', textMode: 'name', description: 'Build versions running (several during a canary).' }),
    timeseries('Requests by route and code', [target(`sum by (route, method, code) (rate(http_requests_total{job="$job",route=~"$route",${NOT_PROBES}}[$__rate_interval]))`, '{{method}} {{route}} {{code}}')], { unit: 'reqps' }),
    timeseries('5xx ratio (5m, 30m, 1h)', [
      target('job:http_requests_error:ratio_rate5m{job="$job"}', '5m'),
      target('job:http_requests_error:ratio_rate30m{job="$job"}', '30m'),
      target('job:http_requests_error:ratio_rate1h{job="$job"}', '1h'),
    ], { unit: 'percentunit' }),
    row('Latency'),
    timeseries('Latency quantiles', [
      target('job:http_request_duration_seconds:p50_5m{job="$job"}', 'p50'),
      target('job:http_request_duration_seconds:p90_5m{job="$job"}', 'p90'),
      target('job:http_request_duration_seconds:p99_5m{job="$job"}', 'p99'),
      target('job:http_request_duration_seconds:p99_1h{job="$job"}', 'p99 1h'),
    ], { unit: 's' }),
    heatmap('Latency distribution', `sum by (le) (increase(http_request_duration_seconds_bucket{job="$job",route=~"$route",${NOT_PROBES}}[$__rate_interval]))`, { w: 24 }),
    timeseries('p99 by route', [target('job_route_method:http_request_duration_seconds:p99_5m{job="$job",route=~"$route"}', '{{method}} {{route}}')], { unit: 's' }),
    row('Saturation'),
    timeseries('DB pool', [target('sum by (state) (db_pool_connections{job="$job"})', '{{state}}')], { w: 6, stack: true }),
    timeseries('DB p99 and errors', [
      target('job:db_query_duration_seconds:p99_5m{job="$job"}', 'p99 query'),
      target('sum by (kind) (rate(db_errors_total{job="$job"}[$__rate_interval]))', 'errors {{kind}}'),
      target('sum(rate(db_tx_retries_total{job="$job"}[$__rate_interval]))', 'tx retries'),
    ], { w: 6 }),
    timeseries('Redis', [
      target('job:redis_command_duration_seconds:p99_5m{job="$job"}', 'p99 command'),
      target('sum(rate(redis_errors_total{job="$job"}[$__rate_interval]))', 'errors/s'),
      target('min(redis_up{job="$job"})', 'up'),
    ], { w: 6 }),
    timeseries('Process', [
      target('sum(rate(process_cpu_seconds_total{job="$job"}[$__rate_interval]))', 'cpu cores'),
      target('sum(process_open_fds{job="$job"})', 'open fds'),
    ], { w: 6 }),
    timeseries('Resident memory', [target('process_resident_memory_bytes{job="$job"}', '{{instance}}')], { unit: 'bytes', w: 6 }),
    timeseries('Uptime', [target('time() - process_start_time_seconds{job="$job"}', '{{instance}}')], { unit: 's', w: 6 }),
    timeseries('Faults injected (count per type)', [target('fault_injection_active{job="$job"} > 0', '{{fault}}')], { w: 12 }),
    row('Dependencies'),
    timeseries('Upstream calls', [
      target('job_upstream:http_client_requests:rate5m{job="$job"}', '{{upstream}}'),
      target('job_upstream:http_client_requests_errors:rate5m{job="$job"}', '{{upstream}} failed'),
    ], { unit: 'reqps', w: 8 }),
    timeseries('Upstream p99', [target('job_upstream:http_client_request_duration_seconds:p99_5m{job="$job"}', '{{upstream}}')], { unit: 's', w: 8 }),
    timeseries('Circuit breakers (0 closed, 1 open, 2 half-open)', [target('circuit_breaker_state{job="$job"}', '{{upstream}}')], { w: 8, min: 0 }),
    timeseries('Kafka produced / consumed', [
      target('job_topic:kafka_produced:rate5m{job="$job"}', 'produced {{topic}}'),
      target('job_topic:kafka_consumed:rate5m{job="$job"}', 'consumed {{topic}}'),
      target('sum by (topic) (rate(kafka_produce_errors_total{job="$job"}[$__rate_interval]))', 'produce errors {{topic}}'),
    ], { unit: 'reqps' }),
    timeseries('Kafka consumer lag', [
      target('job_topic:kafka_consumer_lag:sum{job="$job"}', '{{topic}}'),
      target('max(kafka_consumer_paused{job="$job"})', 'paused'),
    ]),
    row('Logs'),
    logs('Logs (filter by level and request id)', '{service="$job", level=~"$level"} |= "$request_id" | json',
      { description: 'JSON logs of the service. Open a line: trace_id links to Tempo, request_id searches all services.' }),
  ],
});

const sloBoard = dashboard({
  uid: 'slo-error-budget', title: 'SLOs and error budgets', tags: ['slo'], time: 'now-7d',
  description: 'Every SLO (slo:objective:ratio): bad-event ratio per window, burn rate and the 30-day budget left. Alerts: SLOErrorBudgetBurn.',
  vars: [
    queryVar('slo', 'label_values(slo:objective:ratio, slo)', { multi: true, includeAll: true, allValue: '.*' }),
    queryVar('job', 'label_values(slo:objective:ratio{slo=~"$slo"}, job)', { label: 'service', multi: true, includeAll: true, allValue: '.*' }),
  ],
  panels: [
    table('Objectives and budgets', [
      target('slo:objective:ratio{slo=~"$slo",job=~"$job"}', 'objective'),
      target('1 - slo:sli_error:ratio_rate30d{slo=~"$slo",job=~"$job"}', 'good 30d'),
      target('slo:error_budget_remaining:ratio30d{slo=~"$slo",job=~"$job"}', 'budget left'),
    ], { unit: 'percentunit', h: 7 }),
    timeseries('Error budget left (30d)', [target('slo:error_budget_remaining:ratio30d{slo=~"$slo",job=~"$job"}', '{{job}} {{slo}}')], { unit: 'percentunit' }),
    timeseries('Burn rate, 1h window (page at 14.4)', [
      target('slo:sli_error:ratio_rate1h{slo=~"$slo",job=~"$job"} / on (slo, job) (1 - slo:objective:ratio)', '{{job}} {{slo}}'),
    ], { description: '1 = spending the budget exactly over 30 days.' }),
    timeseries('Burn rate, 6h window (page at 6)', [
      target('slo:sli_error:ratio_rate6h{slo=~"$slo",job=~"$job"} / on (slo, job) (1 - slo:objective:ratio)', '{{job}} {{slo}}'),
    ], { w: 8 }),
    timeseries('Burn rate, 1d window (ticket at 3)', [
      target('slo:sli_error:ratio_rate1d{slo=~"$slo",job=~"$job"} / on (slo, job) (1 - slo:objective:ratio)', '{{job}} {{slo}}'),
    ], { w: 8 }),
    timeseries('Burn rate, 3d window (ticket at 1)', [
      target('slo:sli_error:ratio_rate3d{slo=~"$slo",job=~"$job"} / on (slo, job) (1 - slo:objective:ratio)', '{{job}} {{slo}}'),
    ], { w: 8 }),
    timeseries('Bad-event ratio by window', [
      target('slo:sli_error:ratio_rate5m{slo=~"$slo",job=~"$job"}', '5m {{job}} {{slo}}'),
      target('slo:sli_error:ratio_rate1h{slo=~"$slo",job=~"$job"}', '1h {{job}} {{slo}}'),
      target('slo:sli_error:ratio_rate1d{slo=~"$slo",job=~"$job"}', '1d {{job}} {{slo}}'),
    ], { unit: 'percentunit' }),
    table('SLO alerts firing', [target('ALERTS{alertname="SLOErrorBudgetBurn",alertstate="firing"}', '')], { w: 12 }),
  ],
});

const kafka = dashboard({
  uid: 'kafka-lag', title: 'Kafka consumers and lag', tags: ['kafka'],
  description: 'Consumer lag per service, topic and partition; produce and consume rates. The local broker trims each partition at about 5 MiB.',
  vars: [
    queryVar('job', 'label_values(kafka_consumer_lag, job)', { label: 'service', multi: true, includeAll: true, allValue: '.*' }),
    queryVar('topic', 'label_values(kafka_consumer_lag{job=~"$job"}, topic)', { multi: true, includeAll: true, allValue: '.*' }),
  ],
  panels: [
    stat('Total lag', 'sum(kafka_consumer_lag{job=~"$job",topic=~"$topic"})', { thresholds: RED(1000), w: 6 }),
    stat('Paused consumers', 'sum(kafka_consumer_paused{job=~"$job"})', { thresholds: RED(1), w: 6 }),
    stat('Produce errors/s', 'sum(rate(kafka_produce_errors_total{job=~"$job"}[$__rate_interval]))', { thresholds: RED(0.001), w: 6 }),
    stat('Consumed/s', 'sum(rate(kafka_consumed_total{job=~"$job",topic=~"$topic"}[$__rate_interval]))', { unit: 'reqps', w: 6 }),
    timeseries('Lag by service and topic', [target('job_topic:kafka_consumer_lag:sum{job=~"$job",topic=~"$topic"}', '{{job}} {{topic}}')]),
    timeseries('Lag by partition', [target('kafka_consumer_lag{job=~"$job",topic=~"$topic"}', '{{job}} {{topic}}/{{partition}}')]),
    timeseries('Lag growth (per minute)', [target('sum by (job, topic) (deriv(kafka_consumer_lag{job=~"$job",topic=~"$topic"}[10m])) * 60', '{{job}} {{topic}}')], { description: 'Positive and steady: the consumer cannot keep up (KafkaConsumerLagGrowing).' }),
    timeseries('Consumed vs produced', [
      target('job_topic:kafka_consumed:rate5m{job=~"$job",topic=~"$topic"}', 'consumed {{job}} {{topic}}'),
      target('sum by (topic) (job_topic:kafka_produced:rate5m{topic=~"$topic"})', 'produced {{topic}}'),
    ], { unit: 'reqps' }),
    timeseries('Produce errors', [target('sum by (job, topic) (rate(kafka_produce_errors_total{job=~"$job"}[$__rate_interval]))', '{{job}} {{topic}}')], { unit: 'reqps' }),
    timeseries('Paused', [target('kafka_consumer_paused{job=~"$job"}', '{{job}} {{instance}}')]),
  ],
});

const matching = dashboard({
  uid: 'matching-engine', title: 'Matching engine', tags: ['matching'],
  description: 'Commands, match latency, books, trades and snapshots per market.',
  vars: [queryVar('market', 'label_values(matching_commands_total, market)', { multi: true, includeAll: true, allValue: '.*' })],
  panels: [
    stat('Commands/s', 'sum(rate(matching_commands_total{market=~"$market"}[$__rate_interval]))', { unit: 'reqps', w: 6 }),
    stat('Trades/s', 'sum(rate(matching_trades_total{market=~"$market"}[$__rate_interval]))', { unit: 'reqps', w: 6 }),
    stat('Worst p99 match latency', 'max(market:matching_match_latency_seconds:p99_5m{market=~"$market"})', { unit: 's', thresholds: RED(0.05), w: 6 }),
    stat('Oldest snapshot', 'max(matching_snapshot_age_seconds{market=~"$market"})', { unit: 's', thresholds: RED(600), w: 6 }),
    timeseries('Commands by result', [target('market_result:matching_commands:rate5m{market=~"$market"}', '{{market}} {{result}}')], { unit: 'reqps' }),
    timeseries('Commands by type', [target('sum by (market, type) (rate(matching_commands_total{market=~"$market"}[$__rate_interval]))', '{{market}} {{type}}')], { unit: 'reqps' }),
    timeseries('Match latency p50 / p99', [
      target('market:matching_match_latency_seconds:p50_5m{market=~"$market"}', 'p50 {{market}}'),
      target('market:matching_match_latency_seconds:p99_5m{market=~"$market"}', 'p99 {{market}}'),
    ], { unit: 's' }),
    heatmap('Match latency distribution', 'sum by (le) (increase(matching_match_latency_seconds_bucket{market=~"$market"}[$__rate_interval]))'),
    timeseries('Book depth (resting orders)', [target('matching_book_depth{market=~"$market"}', '{{market}} {{side}}')]),
    timeseries('Trades', [target('sum by (market) (rate(matching_trades_total{market=~"$market"}[$__rate_interval]))', '{{market}}')], { unit: 'reqps' }),
    timeseries('Events produced by type', [target('sum by (type) (rate(matching_events_produced_total{market=~"$market"}[$__rate_interval]))', '{{type}}')], { unit: 'reqps' }),
    timeseries('Snapshot age', [target('matching_snapshot_age_seconds{market=~"$market"}', '{{market}}')], { unit: 's' }),
    timeseries('Snapshot duration p99 and failures', [
      target('histogram_quantile(0.99, sum by (le) (rate(matching_snapshot_duration_seconds_bucket[$__rate_interval])))', 'p99 duration (s)'),
      target('sum(increase(matching_snapshot_failures_total[$__rate_interval]))', 'failures'),
    ]),
    timeseries('Command backlog (lag)', [target('sum by (partition) (kafka_consumer_lag{job="matching",topic="exchange.orders.commands"})', 'partition {{partition}}')]),
    logs('matching logs', '{service="matching"} | json | level=~"warn|error"'),
  ],
});

const wallet = dashboard({
  uid: 'wallet-withdrawals', title: 'Wallet and withdrawals', tags: ['wallet'],
  description: 'Holds, settlement, withdrawals (queue, delay SLO), the signer.',
  panels: [
    stat('Signer', 'min(wallet_signer_up)', { thresholds: GOOD_ABOVE(0.5, 1), w: 4 }),
    stat('Withdrawals queued', 'sum(wallet_withdrawal_queue_depth)', { w: 4 }),
    stat('Withdrawal delay p95 (1h)', 'job:wallet_withdrawal_queue_delay_seconds:p95_1h', { unit: 's', thresholds: RED(300), w: 4 }),
    stat('Settlement lag', 'max(wallet_settlement_lag_seconds)', { unit: 's', thresholds: RED(60), w: 4 }),
    stat('Withdrawal SLO budget left', 'slo:error_budget_remaining:ratio30d{slo="withdrawal-delay"}', { unit: 'percentunit', thresholds: GOOD_ABOVE(0, 0.25), w: 4 }),
    stat('Holds/s', 'sum(rate(wallet_holds_total[$__rate_interval]))', { unit: 'reqps', w: 4 }),
    timeseries('Holds by result', [target('sum by (result) (rate(wallet_holds_total[$__rate_interval]))', '{{result}}')], { unit: 'reqps', stack: true }),
    timeseries('Settlements by result', [target('sum by (result) (rate(wallet_settlements_total[$__rate_interval]))', '{{result}}')], { unit: 'reqps', stack: true }),
    timeseries('Settlement lag', [target('max(wallet_settlement_lag_seconds)', 'oldest unsettled trade')], { unit: 's' }),
    timeseries('Withdrawal queue depth', [target('sum(wallet_withdrawal_queue_depth)', 'queued')]),
    timeseries('Withdrawal delay (request to broadcast)', [
      target('histogram_quantile(0.50, sum by (le) (rate(wallet_withdrawal_queue_delay_seconds_bucket[$__rate_interval])))', 'p50'),
      target('histogram_quantile(0.95, sum by (le) (rate(wallet_withdrawal_queue_delay_seconds_bucket[$__rate_interval])))', 'p95'),
      target('histogram_quantile(0.99, sum by (le) (rate(wallet_withdrawal_queue_delay_seconds_bucket[$__rate_interval])))', 'p99'),
    ], { unit: 's', description: 'SLO: 95 % within 300 s.' }),
    timeseries('Withdrawals by result', [target('sum by (result) (rate(wallet_withdrawals_total[$__rate_interval]))', '{{result}}')], { unit: 'reqps', stack: true }),
    timeseries('Signer up and latency', [
      target('min(wallet_signer_up)', 'up'),
      target('histogram_quantile(0.99, sum by (le) (rate(wallet_signer_request_duration_seconds_bucket[$__rate_interval])))', 'p99 request (s)'),
    ]),
    timeseries('Consumer lag (trades, order events)', [target('job_topic:kafka_consumer_lag:sum{job="wallet"}', '{{topic}}')]),
    logs('wallet logs (withdrawals, signer)', '{service="wallet"} | json | level=~"warn|error"'),
  ],
});

const risk = dashboard({
  uid: 'risk', title: 'Risk', tags: ['risk'],
  description: 'Rule hits, pre-trade decisions, blocks and alert delivery.',
  vars: [customVar('rule', ['max_notional', 'max_open_orders', 'order_rate', 'price_band', 'wash_trading', 'withdraw_velocity'])],
  panels: [
    stat('Users blocked now', 'sum(risk_blocked_users)', { w: 6 }),
    stat('Blocks (last hour)', 'sum(increase(risk_users_blocked_total[1h]))', { thresholds: RED(10), w: 6 }),
    stat('Decision p99', 'histogram_quantile(0.99, sum by (le) (rate(risk_decision_duration_seconds_bucket[5m])))', { unit: 's', thresholds: RED(0.05), w: 6 }),
    stat('Webhook failures (1h)', 'sum(increase(risk_webhook_failures_total[1h]))', { thresholds: RED(1), w: 6 }),
    timeseries('Rule hits by rule and action', [target('rule_action:risk_rule_hits:rate5m{rule=~"$rule"}', '{{rule}} {{action}}')], { unit: 'reqps' }),
    timeseries('Decisions', [target('sum by (decision) (rate(risk_decisions_total[$__rate_interval]))', '{{decision}}')], { unit: 'reqps', stack: true }),
    timeseries('Blocks', [
      target('sum(increase(risk_users_blocked_total[10m]))', 'blocked in 10m (alert above 10)'),
      target('sum(rate(risk_rule_hits_total{action="would_block"}[$__rate_interval])) * 600', 'would block in 10m (simulation)'),
    ]),
    timeseries('Decision latency', [
      target('histogram_quantile(0.50, sum by (le) (rate(risk_decision_duration_seconds_bucket[$__rate_interval])))', 'p50'),
      target('histogram_quantile(0.99, sum by (le) (rate(risk_decision_duration_seconds_bucket[$__rate_interval])))', 'p99'),
    ], { unit: 's' }),
    timeseries('Callers: breaker to risk', [target('circuit_breaker_state{upstream="risk"}', '{{job}}')], { w: 8 }),
    timeseries('Webhook failures', [target('sum(rate(risk_webhook_failures_total[$__rate_interval]))', 'failures/s')], { unit: 'reqps', w: 8 }),
    timeseries('Consumer lag', [target('job_topic:kafka_consumer_lag:sum{job="risk"}', '{{topic}}')], { w: 8 }),
    logs('risk logs', '{service="risk"} | json | level=~"warn|error"'),
  ],
});

const shop = dashboard({
  uid: 'shop-demo', title: 'Shop demo', tags: ['shop'],
  description: 'Catalog and order services: traffic, cache, orders by status.',
  panels: [
    stat('Cache hit ratio', 'sum(rate(catalog_cache_requests_total{result="hit"}[$__rate_interval])) / sum(rate(catalog_cache_requests_total[$__rate_interval]))', { unit: 'percentunit', thresholds: GOOD_ABOVE(0.5, 0.8), w: 6 }),
    stat('New shop orders (1h)', 'sum(increase(shop_orders_total{status="pending"}[1h]))', { w: 6, description: 'A new order starts in status pending.' }),
    stat('catalog 5xx ratio', 'job:http_requests_error:ratio_rate5m{job="catalog"}', { unit: 'percentunit', thresholds: RED(0.005), w: 6 }),
    stat('order 5xx ratio', 'job:http_requests_error:ratio_rate5m{job="order"}', { unit: 'percentunit', thresholds: RED(0.005), w: 6 }),
    timeseries('Requests', [target('job:http_requests:rate5m{job=~"catalog|order"}', '{{job}}')], { unit: 'reqps', w: 8 }),
    timeseries('p99 latency', [target('job:http_request_duration_seconds:p99_5m{job=~"catalog|order"}', '{{job}}')], { unit: 's', w: 8 }),
    timeseries('Cache lookups', [
      target('sum by (result) (rate(catalog_cache_requests_total[$__rate_interval]))', '{{result}}'),
      target('sum(rate(catalog_cache_invalidations_total[$__rate_interval]))', 'invalidations'),
      target('sum(rate(catalog_product_loads_total[$__rate_interval]))', 'loads from PostgreSQL'),
    ], { unit: 'reqps', w: 8 }),
    timeseries('Shop orders by status', [target('sum by (status) (rate(shop_orders_total[$__rate_interval]))', '{{status}}')], { unit: 'reqps', stack: true }),
    timeseries('Order events published by sink', [
      target('sum by (sink) (rate(shop_order_events_published_total[$__rate_interval]))', 'published {{sink}}'),
      target('sum by (sink) (rate(shop_order_events_publish_errors_total[$__rate_interval]))', 'failed {{sink}}'),
    ], { unit: 'reqps' }),
    timeseries('order → catalog calls', [
      target('job_upstream:http_client_requests:rate5m{job="order"}', '{{upstream}}'),
      target('job_upstream:http_client_requests_errors:rate5m{job="order"}', '{{upstream}} failed'),
    ], { unit: 'reqps' }),
    logs('catalog and order logs', '{service=~"catalog|order"} | json | level=~"warn|error"'),
  ],
});

const DASHBOARDS = {
  'exchange-overview.json': overview,
  'golden-signals.json': golden,
  'slo-error-budget.json': sloBoard,
  'kafka-lag.json': kafka,
  'matching-engine.json': matching,
  'wallet-withdrawals.json': wallet,
  'risk.json': risk,
  'shop-demo.json': shop,
};

const here = dirname(fileURLToPath(import.meta.url));
const i = process.argv.indexOf('--out');
const out = i > 0 ? process.argv[i + 1] : join(here, 'dashboards');
mkdirSync(out, { recursive: true });
for (const [file, d] of Object.entries(DASHBOARDS)) {
  writeFileSync(join(out, file), JSON.stringify(d, null, 2) + '\n');
}
