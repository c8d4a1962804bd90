// HTTP contracts: proto/openapi/*.yaml (OpenAPI 3.1).
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { validate, compileErrors, dereference } from '@readme/openapi-parser';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';
import { OPENAPI_DIR, EVENTS_DIR, DECIMAL_PATTERN, UDECIMAL_PATTERN, isMoneyName, readJson } from './lib.mjs';

const files = fs.readdirSync(OPENAPI_DIR).filter((f) => f.endsWith('.yaml')).sort();
const docs = Object.fromEntries(files.map((f) => [f, YAML.parse(fs.readFileSync(path.join(OPENAPI_DIR, f), 'utf8'), { uniqueKeys: true })]));
const SERVICES = ['gateway.yaml', 'trading-api.yaml', 'matching.yaml', 'wallet.yaml', 'risk.yaml', 'catalog.yaml', 'order.yaml'];
const METHODS = ['get', 'put', 'post', 'delete', 'patch', 'head', 'options', 'trace'];
const ERROR_CODES = ['invalid_json', 'invalid_request', 'validation_failed', 'unauthorized', 'forbidden', 'account_blocked',
  'not_found', 'method_not_allowed', 'conflict', 'idempotency_conflict', 'out_of_stock', 'payload_too_large', 'insufficient_funds',
  'unprocessable', 'rate_limited', 'upstream_error', 'service_unavailable', 'upstream_timeout', 'internal'];
// Status -> the codes an error response with that status may carry.
const CODES_BY_STATUS = {
  400: ['invalid_json', 'invalid_request'], 401: ['unauthorized'], 403: ['forbidden', 'account_blocked'],
  404: ['not_found'], 405: ['method_not_allowed'], 409: ['conflict', 'idempotency_conflict', 'out_of_stock'], 413: ['payload_too_large'],
  422: ['validation_failed', 'insufficient_funds', 'unprocessable'], 429: ['rate_limited'], 500: ['internal'],
  502: ['upstream_error'], 503: ['service_unavailable'], 504: ['upstream_timeout'],
};
// Shop item quantities are integer counts, not amounts: allowed when the
// schema says so in its description ("... (an integer count)").
const isDeclaredCount = (name, s) => name === 'quantity' && s?.type === 'integer' && /\(an integer count\)/.test(s.description || '');
const NUMBER_ALLOWED = new Set([
  'common.yaml#/components/schemas/FaultSpec/oneOf/2/properties/rate',
  'common.yaml#/components/schemas/Fault/properties/rate',
  'common.yaml#/components/schemas/Readiness/properties/checks/items/properties/duration_ms',
]);
// /readyz answers 503 with its Readiness document (libcommon health.c): a probe, not an error.
const ENVELOPE_EXEMPT = new Set(['common.yaml GET /readyz 503']);

const unescape = (k) => k.replace(/~1/g, '/').replace(/~0/g, '~');
const escape = (k) => String(k).replace(/~/g, '~0').replace(/\//g, '~1');

// Resolves a $ref relative to file; returns { node, file, ptr } or null.
function resolveRef(ref, file) {
  const [target, frag = ''] = ref.split('#');
  const f = target === '' ? file : path.normalize(target);
  const doc = docs[f];
  if (!doc) return null;
  let node = doc;
  for (const k of frag.split('/').slice(1)) {
    if (node === null || typeof node !== 'object' || !(unescape(k) in node)) return null;
    node = node[unescape(k)];
  }
  return { node, file: f, ptr: frag };
}
// Follows a chain of $refs.
function deref(node, file) {
  let cur = { node, file };
  for (let i = 0; i < 20 && cur.node && typeof cur.node === 'object' && cur.node.$ref; i++) {
    const r = resolveRef(cur.node.$ref, cur.file);
    if (!r) return null;
    cur = r;
  }
  return cur;
}
// Visits every object node of a parsed document: fn(node, pointer).
function walk(node, ptr, fn) {
  if (node === null || typeof node !== 'object') return;
  fn(node, ptr);
  for (const [k, v] of Object.entries(node)) walk(v, `${ptr}/${escape(k)}`, fn);
}
// Every operation of a document, path items followed through $refs.
function operations(file) {
  const out = [];
  for (const [p, item] of Object.entries(docs[file].paths || {})) {
    const r = deref(item, file);
    for (const m of METHODS) if (r.node[m]) out.push({ path: p, method: m, op: r.node[m], file: r.file, item: r.node });
  }
  return out;
}

test('openapi: the expected documents exist', () => {
  assert.deepEqual(files, [...SERVICES, 'common.yaml'].sort());
});

for (const f of files) {
  test(`openapi: ${f} is valid OpenAPI 3.1 and its $refs resolve`, async () => {
    assert.equal(docs[f].openapi, '3.1.0');
    const result = await validate(path.join(OPENAPI_DIR, f));
    assert.ok(result.valid, compileErrors(result));
    assert.deepEqual(result.warnings, []);
    const broken = [];
    walk(docs[f], '#', (n, ptr) => { if (typeof n.$ref === 'string' && !resolveRef(n.$ref, f)) broken.push(`${ptr}: ${n.$ref}`); });
    assert.deepEqual(broken, []);
  });
}

test('openapi: operation ids are unique per document and across services', () => {
  const seen = new Map();
  for (const f of SERVICES.filter((x) => x !== 'gateway.yaml')) {
    for (const o of operations(f)) {
      assert.ok(o.op.operationId, `${f} ${o.method} ${o.path} has an operationId`);
      const key = `${o.file}:${o.op.operationId}`;
      const where = `${o.method.toUpperCase()} ${o.path}`;
      if (o.file === 'common.yaml') continue;
      assert.ok(!seen.has(o.op.operationId) || seen.get(o.op.operationId) === key, `${o.op.operationId} defined twice`);
      seen.set(o.op.operationId, key);
      void where;
    }
  }
});

test('openapi: the common error envelope and its code enum', () => {
  const c = docs['common.yaml'].components;
  assert.deepEqual(c.schemas.ErrorCode.enum, ERROR_CODES);
  const e = c.schemas.Error;
  assert.equal(e.additionalProperties, false);
  assert.deepEqual(e.required, ['error']);
  assert.deepEqual(e.properties.error.required, ['code', 'message', 'request_id']);
  assert.equal(e.properties.error.properties.code.$ref, '#/components/schemas/ErrorCode');
  const statuses = new Set();
  for (const o of operations('gateway.yaml').concat(...SERVICES.map(operations))) {
    for (const s of Object.keys(o.op.responses || {})) if (Number(s) >= 400) statuses.add(Number(s));
  }
  // 405 comes from the router for any path (common.yaml MethodNotAllowed), not from operations.
  for (const s of Object.keys(CODES_BY_STATUS).map(Number).filter((x) => x !== 405)) assert.ok(statuses.has(s), `some operation documents status ${s}`);
});

test('openapi: every error response (4xx/5xx) uses the common envelope with a code that fits its status', () => {
  const problems = [];
  let checked = 0;
  for (const f of files) {
    for (const o of operations(f)) {
      for (const [status, resp] of Object.entries(o.op.responses || {})) {
        if (!/^[45]/.test(status)) continue;
        if (ENVELOPE_EXEMPT.has(`${o.file} ${o.method.toUpperCase()} ${o.path} ${status}`)) continue;
        checked++;
        const where = `${f}: ${o.method.toUpperCase()} ${o.path} ${status}`;
        const r = deref(resp, o.file);
        const content = r?.node?.content;
        if (!content || Object.keys(content).join() !== 'application/json') { problems.push(`${where}: content must be only application/json`); continue; }
        const schema = content['application/json'].schema;
        const target = schema?.$ref && resolveRef(schema.$ref, r.file);
        if (!target || target.file !== 'common.yaml' || target.ptr !== '/components/schemas/Error') { problems.push(`${where}: schema is not common.yaml Error`); continue; }
        const examples = [content['application/json'].example, ...Object.values(content['application/json'].examples || {}).map((x) => x.value)].filter(Boolean);
        if (examples.length === 0) problems.push(`${where}: no example`);
        for (const ex of examples) {
          const code = ex?.error?.code;
          if (!(CODES_BY_STATUS[status] || []).includes(code)) problems.push(`${where}: example code ${code} does not fit status ${status}`);
        }
      }
    }
  }
  assert.ok(checked > 200, `only ${checked} error responses found`);
  assert.deepEqual(problems, []);
});

test('openapi: common responses cover 400 401 403 404 405 409 413 422 429 500 502 503 504', () => {
  const r = docs['common.yaml'].components.responses;
  const statusOf = { BadRequest: 400, Unauthorized: 401, Forbidden: 403, NotFound: 404, MethodNotAllowed: 405, Conflict: 409,
    PayloadTooLarge: 413, Unprocessable: 422, TooManyRequests: 429, Internal: 500, BadGateway: 502, ServiceUnavailable: 503, GatewayTimeout: 504 };
  assert.deepEqual(Object.keys(r).sort(), Object.keys(statusOf).sort());
  for (const h of ['Retry-After', 'X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset']) assert.ok(r.TooManyRequests.headers[h], `429 has ${h}`);
  assert.ok(r.Unauthorized.headers['WWW-Authenticate'], '401 has WWW-Authenticate');
  assert.ok(r.MethodNotAllowed.headers.Allow, '405 has Allow');
});

test('openapi: every money-like field is a decimal string, and no JSON numbers carry values', () => {
  const problems = [];
  let checked = 0;
  for (const f of files) {
    walk(docs[f], `${f}#`, (node, ptr) => {
      const t = node.type;
      if ((t === 'number' || (Array.isArray(t) && t.includes('number'))) && !NUMBER_ALLOWED.has(ptr)) problems.push(`${ptr}: type number`);
      if (!node.properties || typeof node.properties !== 'object' || ptr.endsWith('/properties')) return;
      for (const [name, sub] of Object.entries(node.properties)) {
        if (!isMoneyName(name) || typeof sub !== 'object') continue;
        const p = `${ptr}/properties/${name}`;
        if (isDeclaredCount(name, sub)) continue;
        checked++;
        const r = deref(sub, f);
        const s = r?.node;
        if (s?.type !== 'string' || ![DECIMAL_PATTERN, UDECIMAL_PATTERN].includes(s.pattern)) problems.push(`${p}: not a decimal string`);
      }
    });
  }
  assert.ok(checked > 50, `only ${checked} money fields found`);
  assert.deepEqual(problems, []);
});

test('openapi: decimal, timestamp and id formats are the same as in proto/events', () => {
  const s = docs['common.yaml'].components.schemas;
  const e = readJson(path.join(EVENTS_DIR, 'common.schema.json')).$defs;
  assert.equal(s.Decimal.pattern, e.decimal.pattern);
  assert.equal(s.UDecimal.pattern, e.udecimal.pattern);
  assert.equal(s.Timestamp.pattern, e.ts.pattern);
  assert.equal(s.UintId.pattern, e.uint_id.pattern);
  assert.equal(s.Market.pattern, e.market.pattern);
  assert.equal(s.Asset.pattern, e.asset.pattern);
  assert.equal(s.ClientOrderId.pattern, e.client_order_id.pattern);
});

test('openapi: every service serves the operational routes', () => {
  for (const f of SERVICES) {
    const have = new Set(operations(f).map((o) => `${o.method.toUpperCase()} ${o.path}`));
    for (const r of ['GET /healthz', 'GET /readyz', 'GET /metrics', 'GET /admin/faults', 'POST /admin/faults', 'DELETE /admin/faults',
      'DELETE /admin/faults/{type}', 'GET /admin/loglevel', 'PUT /admin/loglevel']) assert.ok(have.has(r), `${f}: ${r}`);
  }
  const fault = docs['common.yaml'].components.schemas.FaultType.enum;
  assert.deepEqual(fault, ['latency', 'error', 'cpu_burn', 'memory_growth', 'kafka_pause', 'readiness_fail', 'drop_dependency']);
});

test('openapi: /admin routes need the admin token; security names exist in each document', () => {
  for (const f of SERVICES) {
    const schemes = docs[f].components?.securitySchemes || {};
    const names = (sec) => (sec || []).flatMap((req) => Object.keys(req));
    for (const n of names(docs[f].security)) assert.ok(schemes[n], `${f}: root security ${n} defined`);
    for (const o of operations(f)) {
      for (const n of names(o.op.security)) assert.ok(schemes[n], `${f}: ${o.method} ${o.path} uses undefined scheme ${n}`);
      if (o.path.startsWith('/admin/')) {
        const sec = o.op.security;
        assert.ok(sec && sec.length > 0 && names(sec).every((n) => n === 'adminBearer' || n === 'adminToken'), `${f}: ${o.method} ${o.path} is admin-only`);
      }
    }
  }
  assert.equal(deref(docs['gateway.yaml'].components.securitySchemes.identity, 'gateway.yaml').node.bearerFormat, 'JWT');
});

test('openapi: the gateway documents the whole public API', () => {
  const have = new Set(operations('gateway.yaml').map((o) => `${o.method.toUpperCase()} ${o.path}`));
  const want = ['POST /v1/auth/register', 'POST /v1/auth/login', 'POST /v1/auth/refresh', 'POST /v1/auth/logout', 'GET /.well-known/jwks.json',
    'POST /v1/orders', 'GET /v1/orders', 'DELETE /v1/orders', 'GET /v1/orders/{id}', 'DELETE /v1/orders/{id}', 'GET /v1/markets',
    'GET /v1/markets/{market}/trades', 'GET /v1/markets/{market}/candles', 'GET /v1/markets/{market}/book',
    'GET /v1/markets/{market}/ticker', 'GET /v1/markets/{market}/stream', 'GET /v1/balances', 'GET /v1/ledger',
    'POST /v1/deposits', 'GET /v1/deposits', 'POST /v1/withdrawals', 'GET /v1/withdrawals/{id}',
    'GET /api/products', 'GET /api/products/{id}', 'POST /api/orders', 'GET /api/orders/{id}'];
  assert.deepEqual(want.filter((w) => !have.has(w)), []);
  for (const o of operations('gateway.yaml')) {
    if (!o.path.startsWith('/v1/') || o.path.startsWith('/v1/auth/')) continue;
    assert.ok(o.op.security === undefined, `${o.method} ${o.path} inherits the bearer requirement`);
    assert.ok(o.op.responses['401'] && o.op.responses['429'], `${o.method} ${o.path} documents 401 and 429`);
  }
  const candles = operations('gateway.yaml').find((o) => o.path.endsWith('/candles'));
  assert.deepEqual(candles.op.parameters.find((p) => p.name === 'interval').schema.enum, ['1m', '5m', '1h', '1d']);
});

test('openapi: the internal routes are in the internal documents, not the gateway', () => {
  const ops = (f) => new Set(operations(f).map((o) => `${o.method.toUpperCase()} ${o.path}`));
  const gw = ops('gateway.yaml');
  const internal = {
    'matching.yaml': ['GET /v1/books/{market}'],
    'wallet.yaml': ['POST /internal/holds', 'DELETE /internal/holds/{id}', 'POST /admin/withdrawals/{id}/approve'],
    'risk.yaml': ['POST /v1/pretrade', 'GET /admin/rules', 'GET /admin/users/{id}/risk', 'POST /admin/users/{id}/unblock'],
    'catalog.yaml': ['GET /catalog/products', 'POST /catalog/products', 'GET /catalog/products/{id}', 'PUT /catalog/products/{id}', 'DELETE /catalog/products/{id}', 'GET /catalog/categories', 'POST /catalog/categories'],
    'order.yaml': ['POST /orders', 'GET /orders/{id}', 'PUT /orders/{id}/status', 'GET /orders/user/{userId}'],
  };
  for (const [f, routes] of Object.entries(internal)) {
    const have = ops(f);
    assert.deepEqual(routes.filter((r) => !have.has(r)), [], f);
    for (const r of routes) assert.ok(!gw.has(r) || f === 'catalog.yaml' || f === 'order.yaml', `${r} must not be public`);
  }
});

// Examples must validate against their schemas (non-strict Ajv on the dereferenced documents).
const exAjv = new Ajv2020({ strict: false, allErrors: true, validateFormats: true });
addFormats(exAjv);
for (const f of files) {
  test(`openapi: ${f} examples validate against their schemas`, async () => {
    const api = await dereference(path.join(OPENAPI_DIR, f));
    const problems = [];
    let n = 0;
    const check = (schema, value, where) => {
      n++;
      const v = exAjv.compile(schema);
      if (!v(value)) problems.push(`${where}: ${exAjv.errorsText(v.errors)}`);
    };
    walk(api, '#', (node, ptr) => {
      if (ptr.includes('/examples/') && !ptr.endsWith('/examples')) return;
      if (node.schema && typeof node.schema === 'object' && !Array.isArray(node.schema)) {
        if (node.example !== undefined && !ptr.includes('/text~1')) check(node.schema, node.example, `${ptr}/example`);
        for (const [k, ex] of Object.entries(node.examples || {})) check(node.schema, ex.value, `${ptr}/examples/${k}`);
      }
      if (ptr.includes('/schemas/') && node.type === 'object' && node.example !== undefined) {
        const { example, ...schema } = node;
        check(schema, example, `${ptr}/example`);
      }
    });
    assert.ok(n > 0, 'the document has examples');
    assert.deepEqual(problems, []);
  });
}

test('openapi: money helper classifies names as documented', () => {
  for (const y of ['amount', 'quote_amount', 'price', 'filled_quote', 'remaining_quote', 'open', 'tick_size', 'total', 'available']) assert.ok(isMoneyName(y), y);
  for (const n of ['quote', 'base', 'open_time', 'open_orders', 'price_band_bps', 'quote_scale', 'trades', 'stock', 'confirmations']) assert.ok(!isMoneyName(n), n);
});

test('openapi: docs/api.md covers every error code, status and header of the contract', () => {
  const guide = fs.readFileSync(path.join(OPENAPI_DIR, '../../docs/api.md'), 'utf8');
  for (const c of ERROR_CODES) assert.ok(guide.includes(`\`${c}\``), `docs/api.md mentions ${c}`);
  for (const s of Object.keys(CODES_BY_STATUS)) assert.match(guide, new RegExp(`^\\| ${s} \\|`, 'm'), `status ${s} in the table`);
  for (const h of ['X-RateLimit-Limit', 'X-RateLimit-Remaining', 'X-RateLimit-Reset', 'Retry-After', 'Idempotency-Key', 'X-Request-Id', 'traceparent', 'WWW-Authenticate'])
    assert.ok(guide.includes(h), `docs/api.md mentions ${h}`);
  assert.ok(guide.includes(DECIMAL_PATTERN.replace(/\\\\/g, '\\')), 'docs/api.md shows the decimal pattern');
  for (const o of operations('gateway.yaml')) {
    const base = o.path.replace(/\{[^}]+\}.*$/, '').replace(/\/$/, '');
    if (['/healthz', '/readyz', '/metrics'].includes(base) || base.startsWith('/admin')) continue;
    assert.ok(guide.includes(base), `docs/api.md mentions ${base}`);
  }
});
