// Shared loaders for the contract tests and the validate-event CLI.
// Event schemas live in proto/events/<topic>/<type>.schema.json and are
// listed per topic in proto/events/topics.json.
import fs from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import Ajv2020 from 'ajv/dist/2020.js';
import addFormats from 'ajv-formats';

export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const EVENTS_DIR = path.join(ROOT, 'proto/events');
export const OPENAPI_DIR = path.join(ROOT, 'proto/openapi');

// The one decimal syntax of the wire (docs/money.md), signed and unsigned.
export const DECIMAL_PATTERN = '^-?(0|[1-9][0-9]*)(\\.[0-9]+)?$';
export const UDECIMAL_PATTERN = '^(0|[1-9][0-9]*)(\\.[0-9]+)?$';

// Field names that carry money or quantities and so must be decimal strings:
// the name's last word is a money word ("quote" only as the last word of a
// longer name: filled_quote yes, quote = an asset symbol no). open_time,
// price_band_bps, open_orders, quote_scale... are therefore not money.
const MONEY_WORDS = new Set(['amount', 'price', 'quantity', 'qty', 'fee', 'total', 'balance', 'available',
  'held', 'notional', 'volume', 'open', 'high', 'low', 'close', 'budget', 'filled', 'remaining', 'subtotal',
  'size', 'position', 'exposure', 'cost']);
export function isMoneyName(name) {
  const words = name.split('_');
  const last = words[words.length - 1];
  return MONEY_WORDS.has(last) || (last === 'quote' && words.length > 1);
}

export function readJson(file) {
  return JSON.parse(fs.readFileSync(file, 'utf8'));
}

// Every *.schema.json under proto/events, relative paths, sorted.
export function listSchemaFiles() {
  const out = [];
  const walk = (dir) => {
    for (const e of fs.readdirSync(dir, { withFileTypes: true })) {
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (e.name.endsWith('.schema.json')) out.push(path.relative(EVENTS_DIR, p));
    }
  };
  walk(EVENTS_DIR);
  return out.sort();
}

export function newAjv() {
  const ajv = new Ajv2020({ strict: true, allErrors: true });
  addFormats(ajv);
  return ajv;
}

// Loads every schema into one strict Ajv. Returns { ajv, byType, topicOf, schemas }
// where byType maps an event type to { file, validate, topic }.
export function loadEvents() {
  const ajv = newAjv();
  const schemas = {};
  for (const rel of listSchemaFiles()) {
    const s = readJson(path.join(EVENTS_DIR, rel));
    schemas[rel] = s;
    ajv.addSchema(s);
  }
  const topics = readJson(path.join(EVENTS_DIR, 'topics.json')).topics;
  const topicOf = {};
  for (const t of topics) for (const rel of t.schemas) topicOf[rel] = t.name;
  const byType = {};
  for (const [rel, s] of Object.entries(schemas)) {
    if (rel === 'common.schema.json') continue;
    const type = s.properties?.type?.const;
    if (typeof type !== 'string') throw new Error(`${rel}: properties.type.const missing`);
    if (byType[type]) throw new Error(`event type ${type} defined twice (${byType[type].file}, ${rel})`);
    byType[type] = { file: rel, topic: topicOf[rel], validate: ajv.getSchema(s.$id) };
  }
  return { ajv, byType, topics, schemas };
}

export function formatErrors(errors) {
  return (errors || []).map((e) => {
    const where = e.instancePath || '/';
    let msg = `${where} ${e.message}`;
    if (e.keyword === 'additionalProperties') msg += `: ${e.params.additionalProperty}`;
    if (e.keyword === 'enum') msg += `: ${e.params.allowedValues.join(', ')}`;
    return msg;
  });
}

// Validates one parsed event; returns [] or a list of messages.
export function checkEvent(ev, byType) {
  if (ev === null || typeof ev !== 'object' || Array.isArray(ev)) return ['event is not a JSON object'];
  if (typeof ev.type !== 'string') return ['missing string field "type"'];
  const entry = byType[ev.type];
  if (!entry) return [`unknown event type "${ev.type}"`];
  if (entry.validate(ev)) return [];
  return formatErrors(entry.validate.errors);
}
