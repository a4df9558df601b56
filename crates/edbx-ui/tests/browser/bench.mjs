// How fast `edbx ui`'s pages are on a big store: a type with 100,000 aggregates and an
// aggregate with 1,000 events (BENCHMARKS.md, "edbx ui"). Run through scripts/bench-ui.sh,
// which builds the release binaries first.
//
// Each page is opened in a fresh tab of a logged-in chromium; "first paint" is the time from
// the start of the navigation to the moment the page's own content is in the document (the
// `edbx:painted:*` performance mark the page sets once its main table or panel is filled),
// read from the browser's performance timeline. Every measurement is repeated; the table gives
// the median and the slowest run.
//
// Environment: EDBX_UI_BENCH_AGGREGATES (default 100000), EDBX_UI_BENCH_EVENTS (default
// 1000), EDBX_UI_BENCH_RUNS (default 7), plus harness.mjs's.
import { performance as clock } from 'node:perf_hooks';
import { launch, startServer, startUi } from './harness.mjs';

const aggregates = Number(process.env.EDBX_UI_BENCH_AGGREGATES || 100_000);
const events = Number(process.env.EDBX_UI_BENCH_EVENTS || 1000);
const runs = Number(process.env.EDBX_UI_BENCH_RUNS || 7);
const WAIT = { timeout: 120_000 };

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}
const ms = v => Math.round(v) + ' ms';
const log = text => process.stderr.write(`bench-ui: ${text}\n`);

const server = await startServer();
let seeded = clock.now();
log(`writing ${aggregates.toLocaleString('en-US')} aggregates of type bulk (edbx import)`);
const BATCH = 20_000;
for (let start = 0; start < aggregates; start += BATCH) {
  const lines = [];
  for (let i = start; i < Math.min(aggregates, start + BATCH); i++) {
    lines.push({
      aggregate_type: 'bulk',
      aggregate_id: 'b-' + String(i).padStart(6, '0'),
      event_type: 'created',
      payload: { n: i, status: i % 10 === 0 ? 'flagged' : 'ok', owner: 'user-' + (i % 97) },
    });
  }
  server.importEvents(lines, 32);
}
const bulkSeconds = (clock.now() - seeded) / 1000;
seeded = clock.now();
log(`writing ${events.toLocaleString('en-US')} events to history/long`);
server.importEvents(Array.from({ length: events }, (_, i) => ({
  aggregate_type: 'history',
  aggregate_id: 'long',
  event_type: i % 2 ? 'item.added' : 'item.counted',
  payload: { ['k' + (i % 20)]: i, last: i, note: 'event ' + i },
  note: 'step ' + i,
  version: i + 1,
})));
const historySeconds = (clock.now() - seeded) / 1000;

const ui = await startUi(server);
const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
const login = await context.newPage();
await login.goto(ui.url);
await login.close();

// Opens `route` in a fresh tab; the time to the page's own paint mark, and the tab. Also keeps
// when the page's main data had arrived, in `arrivals`.
const arrivals = new Map();
async function paint(route, name) {
  const page = await context.newPage();
  await page.goto(ui.base + '#' + route);
  await page.waitForSelector(`body[data-painted="${name}"]`, WAIT);
  const [at, data] = await page.evaluate(n => [
    performance.getEntriesByName('edbx:painted:' + n)[0].startTime,
    (performance.getEntriesByName('edbx:data:' + n)[0] || { startTime: NaN }).startTime,
  ], name);
  arrivals.set(route, [...(arrivals.get(route) || []), data]);
  return [at, page];
}

// Time, measured in the page, from an action (a click, or a value typed into a field and
// committed) to the moment `selector` matches (a MutationObserver sees it).
function timed(page, action, selector) {
  return page.evaluate(([action, selector]) => new Promise(resolve => {
    let t0 = 0;
    const observer = new MutationObserver(() => {
      if (document.querySelector(selector)) {
        observer.disconnect();
        resolve(performance.now() - t0);
      }
    });
    observer.observe(document.body, { subtree: true, childList: true, characterData: true, attributes: true });
    t0 = performance.now();
    if (action.click) document.querySelector(action.click).click();
    else {
      const field = document.querySelector(action.field);
      field.value = action.value;
      field.dispatchEvent(new Event('change'));
    }
  }), [action, selector]);
}

const rows = [];
async function measure(what, once, route) {
  const times = [];
  for (let i = 0; i < runs; i++) times.push(await once(i));
  const data = route && arrivals.has(route) ? median(arrivals.get(route)) : null;
  rows.push([what, median(times), Math.max(...times), data]);
  log(`${what}: median ${ms(median(times))}, slowest ${ms(Math.max(...times))}`);
}

// The overview: the types (found with one listing each) before they are counted.
let countSeconds = null;
await measure('overview: the types, named (counts follow)', async i => {
  const [at, page] = await paint('/', 'overview');
  if (i === 0) {
    const started = clock.now();
    await page.waitForSelector('#types-status:has-text("Counted")', { timeout: 600_000 });
    countSeconds = (clock.now() - started) / 1000 + at / 1000;
  }
  await page.close();
  return at;
}, '/');
// The paint of a page opened afresh, `runs` times.
const paints = (what, route, name) => measure(what, async () => {
  const [at, page] = await paint(route, name);
  await page.close();
  return at;
}, route);
await paints(`type page: first 50 of ${aggregates.toLocaleString('en-US')} aggregates`, '/t/bulk', 'type');
await paints('type page: page 11 (deep link with a cursor)', '/t/bulk?cursor=' + encodeURIComponent('a:bulk:b-000499'), 'type');
await paints('type page: newest first (sort updated_at:desc)', '/t/bulk?sort=updated_at%3Adesc', 'type');
await paints("type page: filter status = 'flagged' (1 in 10 match)", '/t/bulk?filter=' + encodeURIComponent("status = 'flagged'"), 'type');
await paints(`aggregate with ${events.toLocaleString('en-US')} events: first paint`, '/a/history/long', 'aggregate');
await measure(`aggregate with ${events.toLocaleString('en-US')} events: timeline and state at the latest version shown`, async () => {
  // A fresh UI would not have the history cached; this one has from the second run on, but
  // the latest version is shown from the end of the history either way.
  const page = await context.newPage();
  await page.goto(ui.base + '#/a/history/long');
  await page.waitForSelector(`#shown-version:has-text("${events}")`, WAIT);
  await page.waitForSelector('#timeline tbody tr', WAIT);
  const at = await page.evaluate(() => Math.max(...['edbx:shown:state', 'edbx:shown:timeline']
    .map(name => performance.getEntriesByName(name)[0].startTime)));
  await page.close();
  return at;
});
const stepper = await context.newPage();
await stepper.goto(ui.base + '#/a/history/long');
await stepper.waitForSelector(`#shown-version:has-text("${events}")`, WAIT);
let shown = events;
// The first step folds the whole history (in parallel slices); later ones use the cached events.
await measure('step to the previous version', async () => {
  shown -= 1;
  return timed(stepper, { click: '#prev-version' }, `#at-version[data-version="${shown}"]`);
});
await measure('type a version far away (1, then the last but one)', async i => {
  const target = i % 2 ? events - 1 : 1;
  return timed(stepper, { field: '#version-number', value: String(target) }, `#at-version[data-version="${target}"]`);
});
await measure('older events (next 50 of the timeline)', async i => {
  const expected = 50 * (i + 2);
  return timed(stepper, { click: '#older' }, `#timeline tbody tr:nth-child(${expected})`);
});
await stepper.close();

await browser.close();
await ui.stop();
await server.stop();

const commit = process.env.EDBX_UI_BENCH_COMMIT || 'uncommitted';
console.log(`edbx ui, commit ${commit}: ${aggregates.toLocaleString('en-US')} aggregates of one type, one aggregate of ${events.toLocaleString('en-US')} events; ${runs} runs each.\n`);
console.log('| page or action | median | slowest | its data had arrived at (median) |');
console.log('| --- | --: | --: | --: |');
for (const [what, mid, max, data] of rows) console.log(`| ${what} | ${ms(mid)} | ${ms(max)} | ${data === null || Number.isNaN(data) ? '' : ms(data)} |`);
console.log(`\nSet-up: ${aggregates.toLocaleString('en-US')} creates in ${bulkSeconds.toFixed(0)} s, ${events} appends in ${historySeconds.toFixed(0)} s (edbx import); ` +
  `the overview's background count of every aggregate took ${countSeconds === null ? '?' : countSeconds.toFixed(1) + ' s'}.`);
