// The validate-event CLI that integration tests pipe consumed Kafka events through.
import test from 'node:test';
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { spawnSync } from 'node:child_process';
import { EVENTS_DIR, readJson } from './lib.mjs';

const CLI = path.join(path.dirname(new URL(import.meta.url).pathname), 'validate-event.mjs');
const tmp = fs.mkdtempSync(path.join(os.tmpdir(), 'contract-cli-'));
process.on('exit', () => fs.rmSync(tmp, { recursive: true, force: true }));

const ex = (name) => readJson(path.join(EVENTS_DIR, 'examples', `${name}.json`));
const jsonl = (...evs) => evs.map((e) => (typeof e === 'string' ? e : JSON.stringify(e))).join('\n') + '\n';
let n = 0;
function run(content, ...args) {
  const file = path.join(tmp, `in${n++}.jsonl`);
  fs.writeFileSync(file, content);
  return spawnSync(process.execPath, [CLI, ...args, file], { encoding: 'utf8' });
}

test('cli: every valid example, one per line, exits 0', () => {
  const dir = path.join(EVENTS_DIR, 'examples');
  const evs = fs.readdirSync(dir).filter((f) => f.endsWith('.json')).map((f) => readJson(path.join(dir, f)));
  const r = run(jsonl(...evs));
  assert.equal(r.status, 0, r.stderr);
  assert.equal(r.stdout.trim(), `ok: ${evs.length} events`);
});

test('cli: blank lines are skipped; stdin via "-"', () => {
  const r = spawnSync(process.execPath, [CLI, '-'], { input: `\n${JSON.stringify(ex('trade'))}\n\n`, encoding: 'utf8' });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /ok: 1 events/);
});

test('cli: an invalid event exits 1 and names the line, type and field', () => {
  const bad = { ...ex('trade'), price: 30000.5 };
  const r = run(jsonl(ex('order.accepted'), bad));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /^line 2: trade: \/price must be string/m);
});

test('cli: every invalid example is reported', () => {
  const dir = path.join(EVENTS_DIR, 'examples', 'invalid');
  const files = fs.readdirSync(dir).filter((f) => f.endsWith('.json'));
  for (const f of files) {
    const r = run(jsonl(readJson(path.join(dir, f))));
    assert.equal(r.status, 1, `${f} accepted`);
    assert.match(r.stderr, /^line 1: /m, f);
  }
});

test('cli: unknown type, missing type and non-JSON lines fail', () => {
  const r = run(jsonl({ ...ex('trade'), type: 'trade.v2' }, { version: 1 }, 'not json', '[1,2]'));
  assert.equal(r.status, 1);
  assert.match(r.stderr, /line 1: trade\.v2: unknown event type "trade\.v2"/);
  assert.match(r.stderr, /line 2: \?: missing string field "type"/);
  assert.match(r.stderr, /line 3: not JSON/);
  assert.match(r.stderr, /line 4: \?: event is not a JSON object/);
  assert.match(r.stderr, /FAIL: 4 problem\(s\) in 4 event\(s\)/);
});

test('cli: --topic refuses an event type from another topic', () => {
  const ok = run(jsonl(ex('trade')), '--topic', 'exchange.trades');
  assert.equal(ok.status, 0, ok.stderr);
  const r = run(jsonl(ex('order.accepted')), '--topic', 'exchange.trades');
  assert.equal(r.status, 1);
  assert.match(r.stderr, /does not belong on topic exchange\.trades/);
  assert.equal(run(jsonl(ex('trade')), '--topic', 'no.such.topic').status, 2);
});

test('cli: --seq accepts re-deliveries, refuses gaps and two events with one seq', () => {
  const at = (seq, extra = {}) => ({ ...ex('order.accepted'), id: `BTC-USDT:${seq}`, seq, ...extra });
  const good = run(jsonl(at(5), at(6), at(6), at(7)), '--seq');
  assert.equal(good.status, 0, good.stderr);
  const gap = run(jsonl(at(5), at(7)), '--seq');
  assert.equal(gap.status, 1);
  assert.match(gap.stderr, /BTC-USDT: seq gap after 5 \(next is 7\)/);
  const dup = run(jsonl(at(5), at(6), { ...at(6), id: 'BTC-USDT:60' }), '--seq');
  assert.equal(dup.status, 1);
  assert.match(dup.stderr, /seq 6 used by two events/);
});

test('cli: at most 20 failures are printed', () => {
  const bad = { ...ex('trade'), extra: 1 };
  const r = run(jsonl(...Array(30).fill(bad)));
  assert.equal(r.status, 1);
  assert.equal(r.stderr.split('\n').filter((l) => l.startsWith('line ')).length, 20);
  assert.match(r.stderr, /\.\.\. and 10 more/);
});

test('cli: usage errors exit 2', () => {
  assert.equal(spawnSync(process.execPath, [CLI], { encoding: 'utf8' }).status, 2);
  assert.equal(spawnSync(process.execPath, [CLI, '--bogus', 'x'], { encoding: 'utf8' }).status, 2);
  assert.equal(spawnSync(process.execPath, [CLI, path.join(tmp, 'missing.jsonl')], { encoding: 'utf8' }).status, 2);
});
