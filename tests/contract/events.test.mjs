// Kafka event contracts: proto/events schemas, topics.json and examples.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import {
  EVENTS_DIR, DECIMAL_PATTERN, UDECIMAL_PATTERN, isMoneyName,
  readJson, listSchemaFiles, newAjv, loadEvents, checkEvent,
} from './lib.mjs';

const files = listSchemaFiles();
const eventFiles = files.filter((f) => f !== 'common.schema.json');
const common = readJson(path.join(EVENTS_DIR, 'common.schema.json'));
const topicsDoc = readJson(path.join(EVENTS_DIR, 'topics.json'));
const EXPECTED_PARTITIONS = {
  'exchange.orders.commands': 8, 'exchange.orders.events': 8, 'exchange.trades': 8,
  'wallet.events': 4, 'risk.alerts': 2, 'shop.orders.events': 4,
};
const MATCHING_TOPICS = new Set(['exchange.orders.events', 'exchange.trades']);
// Shop item quantities are integer counts, not amounts: allowed when the
// schema says so in its description ("... (an integer count ...)").
const isDeclaredCount = (name, s) => name === 'quantity' && s?.type === 'integer' && /\(an integer count/.test(s.description || '');

// Resolves a local or ../common.schema.json $ref chain to the final schema.
function resolve(schema, file) {
  let s = schema;
  let base = file;
  for (let i = 0; i < 10 && s && s.$ref; i++) {
    const [doc, frag] = s.$ref.split('#');
    let root;
    if (doc === '') root = base === 'common.schema.json' ? common : readJson(path.join(EVENTS_DIR, base));
    else { base = path.normalize(path.join(path.dirname(base), doc)); root = readJson(path.join(EVENTS_DIR, base)); }
    s = frag.split('/').slice(1).reduce((o, k) => o?.[k.replace(/~1/g, '/').replace(/~0/g, '~')], root);
  }
  return s;
}

// Calls fn(name, schema, pointer) for every named property, at any depth.
function eachProperty(schema, ptr, fn) {
  if (!schema || typeof schema !== 'object') return;
  if (schema.properties) {
    for (const [k, v] of Object.entries(schema.properties)) {
      fn(k, v, `${ptr}/properties/${k}`);
      eachProperty(v, `${ptr}/properties/${k}`, fn);
    }
  }
  for (const key of ['items', 'not', 'if', 'then', 'else']) if (schema[key]) eachProperty(schema[key], `${ptr}/${key}`, fn);
  for (const key of ['oneOf', 'anyOf', 'allOf']) (schema[key] || []).forEach((s, i) => eachProperty(s, `${ptr}/${key}/${i}`, fn));
  if (schema.$defs) for (const [k, v] of Object.entries(schema.$defs)) eachProperty(v, `${ptr}/$defs/${k}`, fn);
}

// Calls fn(schema, pointer) for every object-typed schema.
function eachObject(schema, ptr, fn) {
  if (!schema || typeof schema !== 'object') return;
  if (schema.type === 'object') fn(schema, ptr);
  for (const [k, v] of Object.entries(schema.properties || {})) eachObject(v, `${ptr}/properties/${k}`, fn);
  if (schema.items) eachObject(schema.items, `${ptr}/items`, fn);
  for (const [k, v] of Object.entries(schema.$defs || {})) eachObject(v, `${ptr}/$defs/${k}`, fn);
}

test('events: common.schema.json compiles in strict mode', () => {
  const ajv = newAjv();
  ajv.addSchema(common);
  for (const name of Object.keys(common.$defs)) assert.ok(ajv.getSchema(`${common.$id}#/$defs/${name}`), name);
});

for (const rel of eventFiles) {
  test(`events: ${rel} compiles in strict mode and follows the house rules`, () => {
    const s = readJson(path.join(EVENTS_DIR, rel));
    const ajv = newAjv();
    ajv.addSchema(common);
    ajv.compile(s); // throws on any strict-mode violation or unresolved $ref
    assert.equal(s.$schema, 'https://json-schema.org/draft/2020-12/schema');
    assert.equal(s.$id, `https://exchange-lab.dev/proto/events/${rel}`, '$id mirrors the file path');
    const [topic, base] = rel.split('/');
    const type = base.replace(/\.schema\.json$/, '');
    assert.equal(s.properties.type.const, type, 'type const equals the file name');
    assert.equal(s.properties.version.type, 'integer');
    assert.ok(Number.isInteger(s.properties.version.const) && s.properties.version.const >= 1, 'version is an integer const');
    const req = new Set(s.required);
    for (const f of ['type', 'version', 'id', 'ts']) assert.ok(req.has(f), `envelope field ${f} required`);
    assert.equal(resolve(s.properties.ts, rel).pattern, common.$defs.ts.pattern, 'ts is the UTC RFC 3339 string');
    if (MATCHING_TOPICS.has(topic)) {
      assert.ok(req.has('market') && req.has('seq'), 'matching events carry market and seq');
      assert.deepEqual(resolve(s.properties.seq, rel), common.$defs.seq);
      assert.equal(s.properties.id.$ref, '../common.schema.json#/$defs/matching_event_id', 'matching ids are <market>:<seq>');
    }
    eachObject(s, '#', (o, ptr) => assert.equal(o.additionalProperties, false, `${ptr}: additionalProperties must be false`));
  });
}

test('events: every money-like field is a decimal string, never a number', () => {
  const problems = [];
  let checked = 0;
  for (const rel of files) {
    const s = readJson(path.join(EVENTS_DIR, rel));
    eachProperty(s, '#', (name, sub, ptr) => {
      if (!isMoneyName(name)) return;
      if (isDeclaredCount(name, sub)) return;
      if (sub === true || sub === false) return; // presence switches inside oneOf
      checked++;
      const r = resolve(sub, rel);
      if (r?.type !== 'string' || ![DECIMAL_PATTERN, UDECIMAL_PATTERN].includes(r.pattern)) problems.push(`${rel}${ptr} (${name})`);
    });
  }
  assert.ok(checked > 40, `only ${checked} money fields found: is the name list right?`);
  assert.deepEqual(problems, []);
});

test('events: the decimal patterns accept canonical decimals and refuse the rest', () => {
  const d = new RegExp(DECIMAL_PATTERN);
  const u = new RegExp(UDECIMAL_PATTERN);
  for (const ok of ['0', '1', '0.00150000', '30000.000000', '-1.5']) assert.ok(d.test(ok), ok);
  for (const bad of ['', '01', '1.', '.5', '+1', '1e3', '1,5', ' 1', 'NaN', '-']) assert.ok(!d.test(bad), bad);
  assert.ok(!u.test('-1') && u.test('0.1'));
});

test('events: user and order ids are strings of digits', () => {
  const problems = [];
  for (const rel of eventFiles) {
    const s = readJson(path.join(EVENTS_DIR, rel));
    eachProperty(s, '#', (name, sub, ptr) => {
      if (!/^((taker|maker)_)?(user_id|order_id)$/.test(name) || typeof sub !== 'object') return;
      const r = resolve(sub, rel);
      if (r?.type !== 'string' || r.pattern !== common.$defs.uint_id.pattern) problems.push(`${rel}${ptr}`);
    });
  }
  assert.deepEqual(problems, []);
});

test('events: topics.json lists the six topics with their partitions, keys and existing schemas', () => {
  const seen = new Map();
  assert.deepEqual(topicsDoc.topics.map((t) => t.name).sort(), Object.keys(EXPECTED_PARTITIONS).sort());
  for (const t of topicsDoc.topics) {
    assert.equal(t.partitions, EXPECTED_PARTITIONS[t.name], `${t.name} partitions`);
    assert.ok(t.producers.length > 0 && t.consumers.length > 0, `${t.name} producers/consumers`);
    assert.ok(t.schemas.length > 0, `${t.name} carries schemas`);
    for (const rel of t.schemas) {
      assert.ok(fs.existsSync(path.join(EVENTS_DIR, rel)), `${t.name}: ${rel} exists`);
      assert.ok(rel.startsWith(`${t.name}/`), `${rel} lives in the folder of its topic`);
      assert.ok(!seen.has(rel), `${rel} listed twice`);
      seen.set(rel, t.name);
      const s = readJson(path.join(EVENTS_DIR, rel));
      assert.ok(s.required.includes(t.key_field), `${rel}: key field ${t.key_field} is required`);
    }
  }
  assert.deepEqual(eventFiles.filter((f) => !seen.has(f)), [], 'every schema belongs to a topic');
});

test('events: the design\'s event types all exist', () => {
  const { byType } = loadEvents();
  const want = ['order.place', 'order.cancel', 'order.cancel_all', 'order.accepted', 'order.rejected',
    'order.partially_filled', 'order.filled', 'order.cancelled', 'order.expired', 'trade',
    'deposit.pending', 'deposit.confirmed', 'deposit.credited', 'withdrawal.requested', 'withdrawal.approved',
    'withdrawal.queued', 'withdrawal.signed', 'withdrawal.broadcast', 'withdrawal.completed', 'withdrawal.failed',
    'hold.placed', 'hold.released', 'risk.alert', 'user.blocked', 'user.unblocked', 'shop_order.status_changed'];
  assert.deepEqual(want.filter((t) => !byType[t]), []);
});

test('events: order.rejected reasons match the matching core reason names (services/matching/core/events.c) when present', (t) => {
  const coreNames = path.join(EVENTS_DIR, '../../services/matching/core/events.c');
  const { byType } = loadEvents();
  const s = readJson(path.join(EVENTS_DIR, byType['order.rejected'].file));
  const reasons = new Set(s.properties.reason.enum);
  const cancelled = readJson(path.join(EVENTS_DIR, byType['order.cancelled'].file)).properties.reason.enum;
  const expired = readJson(path.join(EVENTS_DIR, byType['order.expired'].file)).properties.reason.enum;
  if (!fs.existsSync(coreNames)) { t.skip('services/matching/core/events.c not present'); return; }
  const names = [...fs.readFileSync(coreNames, 'utf8').matchAll(/\[ME_R_[A-Z_]+\] = "([a-z_]+)"/g)].map((m) => m[1]).filter((n) => n !== 'none');
  assert.ok(names.length >= 10, 'reason names found in the core');
  const covered = new Set([...reasons, ...cancelled, ...expired]);
  assert.deepEqual(names.filter((n) => !covered.has(n)), [], 'every core reason is on the wire');
});

const exDir = path.join(EVENTS_DIR, 'examples');
const validExamples = fs.readdirSync(exDir).filter((f) => f.endsWith('.json')).sort();
const invalidExamples = fs.readdirSync(path.join(exDir, 'invalid')).filter((f) => f.endsWith('.json')).sort();

test('events: every event type has at least one valid example', () => {
  const { byType } = loadEvents();
  const typed = new Set(validExamples.map((f) => readJson(path.join(exDir, f)).type));
  assert.deepEqual(Object.keys(byType).filter((t) => !typed.has(t)), []);
});

for (const f of validExamples) {
  test(`events: example ${f} is valid`, () => {
    const { byType } = loadEvents.cached ??= loadEvents();
    const ev = readJson(path.join(exDir, f));
    assert.ok(f === `${ev.type}.json` || f.startsWith(`${ev.type}.`), `file name starts with its type ${ev.type}`);
    assert.deepEqual(checkEvent(ev, byType), []);
  });
}

for (const f of invalidExamples) {
  test(`events: invalid example ${f} is rejected`, () => {
    const { byType } = loadEvents.cached ??= loadEvents();
    const ev = readJson(path.join(exDir, 'invalid', f));
    const m = f.match(/^(.+?)--([a-z0-9-]+)\.json$/);
    assert.ok(m, 'name is <type>--<why>.json');
    assert.equal(ev.type, m[1], 'validated against the schema its name names');
    assert.ok(byType[ev.type], 'its type exists, so it is the rule that fails');
    assert.notDeepEqual(checkEvent(ev, byType), []);
  });
}

test('events: topics.json agrees with the topics devkafka creates (tools/devkafka/devkafka.c)', (t) => {
  const src = path.join(EVENTS_DIR, '../../tools/devkafka/devkafka.c');
  if (!fs.existsSync(src)) { t.skip('tools/devkafka/devkafka.c not present'); return; }
  const text = fs.readFileSync(src, 'utf8');
  const block = text.slice(text.indexOf('default_topics[]'), text.indexOf('};', text.indexOf('default_topics[]')));
  const created = Object.fromEntries([...block.matchAll(/\{"([a-z.]+)", *([0-9]+)\}/g)].map((m) => [m[1], Number(m[2])]));
  const declared = Object.fromEntries(topicsDoc.topics.map((x) => [x.name, x.partitions]));
  assert.deepEqual(created, declared);
});
