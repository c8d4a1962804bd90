#!/usr/bin/env node
// Validates Kafka event values against proto/events schemas.
//
//   node tests/contract/validate-event.mjs [--topic NAME] [--seq] <file.jsonl | ->
//
// Reads one JSON event per line (blank lines are skipped; "-" is stdin),
// picks the schema by the event's `type`, and checks it. With --topic, each
// event's type must also belong to that topic (proto/events/topics.json).
// With --seq, events that carry market+seq must, per market and after
// dropping exact re-deliveries (same id), have contiguous seqs: no
// gap and no two different events with one seq (the first seq seen per
// market may be above 1 when reading from the middle of a log).
//
// Exit 0: every event is valid ("ok: N events" on stdout). Exit 1: prints
// up to 20 failures ("line N: type: message") on stderr. Exit 2: usage or
// I/O error.
import fs from 'node:fs';

// lib.mjs needs ajv from tests/contract/node_modules: say how to get it.
let lib;
try {
  lib = await import('./lib.mjs');
} catch (e) {
  process.stderr.write(`validate-event: cannot load the validator (${e.message.split('\n')[0]});\n` +
    'install its dependencies once with: npm ci --prefix tests/contract (or run bash tests/contract/suite.sh)\n');
  process.exit(2);
}
const { loadEvents, checkEvent } = lib;

const MAX_REPORTED = 20;

function usage(msg) {
  if (msg) process.stderr.write(`validate-event: ${msg}\n`);
  process.stderr.write('usage: node tests/contract/validate-event.mjs [--topic NAME] [--seq] <file.jsonl | ->\n');
  process.exit(2);
}

const args = process.argv.slice(2);
let topic = null;
let checkSeq = false;
let file = null;
for (let i = 0; i < args.length; i++) {
  const a = args[i];
  if (a === '--topic') { topic = args[++i]; if (!topic) usage('--topic needs a name'); }
  else if (a === '--seq') checkSeq = true;
  else if (a === '-h' || a === '--help') usage();
  else if (a.startsWith('--')) usage(`unknown option ${a}`);
  else if (file === null) file = a;
  else usage('one input file only');
}
if (file === null) usage('no input file');

let text;
try {
  text = fs.readFileSync(file === '-' ? 0 : file, 'utf8');
} catch (e) {
  usage(`cannot read ${file}: ${e.message}`);
}

const { byType, topics } = loadEvents();
let allowed = null;
if (topic) {
  const t = topics.find((x) => x.name === topic);
  if (!t) usage(`unknown topic ${topic} (known: ${topics.map((x) => x.name).join(', ')})`);
  allowed = new Set(Object.entries(byType).filter(([, v]) => v.topic === topic).map(([k]) => k));
}

const failures = [];
const seqs = new Map(); // market -> Map(seq -> id)
let count = 0;
const lines = text.split('\n');
for (let i = 0; i < lines.length; i++) {
  const line = lines[i].trim();
  if (line === '') continue;
  count++;
  const where = `line ${i + 1}`;
  let ev;
  try {
    ev = JSON.parse(line);
  } catch (e) {
    failures.push(`${where}: not JSON: ${e.message}`);
    continue;
  }
  const errs = checkEvent(ev, byType);
  const label = typeof ev?.type === 'string' ? ev.type : '?';
  for (const m of errs) failures.push(`${where}: ${label}: ${m}`);
  if (errs.length === 0 && allowed && !allowed.has(ev.type)) failures.push(`${where}: ${label}: type does not belong on topic ${topic}`);
  if (errs.length === 0 && checkSeq && typeof ev.seq === 'number' && typeof ev.market === 'string') {
    if (!seqs.has(ev.market)) seqs.set(ev.market, new Map());
    const per = seqs.get(ev.market);
    const prev = per.get(ev.seq);
    if (prev !== undefined && prev !== ev.id) failures.push(`${where}: ${label}: ${ev.market} seq ${ev.seq} used by two events (${prev}, ${ev.id})`);
    per.set(ev.seq, ev.id);
  }
}
if (checkSeq) {
  for (const [market, per] of seqs) {
    const s = [...per.keys()].sort((a, b) => a - b);
    for (let k = 1; k < s.length; k++) {
      if (s[k] !== s[k - 1] + 1) failures.push(`${market}: seq gap after ${s[k - 1]} (next is ${s[k]})`);
    }
  }
}

if (failures.length) {
  for (const f of failures.slice(0, MAX_REPORTED)) process.stderr.write(`${f}\n`);
  if (failures.length > MAX_REPORTED) process.stderr.write(`... and ${failures.length - MAX_REPORTED} more\n`);
  process.stderr.write(`FAIL: ${failures.length} problem(s) in ${count} event(s)\n`);
  process.exit(1);
}
process.stdout.write(`ok: ${count} events\n`);
