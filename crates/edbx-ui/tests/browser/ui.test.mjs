// `edbx ui` in a real browser (Debian's chromium, driven by playwright-core) against a real
// EventDBX server: navigate, filter and page, open an aggregate and step through its versions,
// the Merkle check, a live event arriving, the charts, values from the store shown as text
// (never run), refused requests, and the write checks. Every wait is on something the page
// shows; none is a sleep. Run by scripts/test.sh (`node --test` in this folder).
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import http from 'node:http';
import { launch, newPage, startServer, startUi } from './harness.mjs';

const WAIT = { timeout: 30_000 };
// Markup that would run if a page ever inserted store values as HTML.
const IMG = '<img src=x onerror=window.__pwned=1>';
const SCRIPT = '<script>window.__pwned=1</script>';

let server, ro, rw, browser, context;

before(async () => {
  server = await startServer();
  // 60 orders (more than one page of 50), every third one paid.
  server.importEvents(Array.from({ length: 60 }, (_, i) => ({
    aggregate_type: 'orders',
    aggregate_id: 'o-' + String(i).padStart(2, '0'),
    event_type: 'order.placed',
    payload: { total: i, status: i % 3 === 0 ? 'paid' : 'open' },
  })));
  server.edbx(['create', 'people', 'p-1', 'joined', '{"name": "Ada"}']);
  server.edbx(['create', 'ledger', 'l-1', 'opened', '{"balance": 0, "owner": "ada"}', '--note', 'first']);
  server.edbx(['apply', 'ledger', 'l-1', 'money.in', '{"balance": 10, "last": "in"}']);
  server.edbx(['apply', 'ledger', 'l-1', 'money.out', '{"balance": 4, "last": "out"}', '--metadata', '{"@trace": {"id": "t-9"}}']);
  server.edbx(['apply', 'ledger', 'l-1', 'renamed', '{"owner": "Ada L."}']);
  server.edbx(['create', 'evil', 'x-1', 'planted', JSON.stringify({ [IMG]: SCRIPT, text: IMG, nested: { deep: [SCRIPT] } }),
    '--note', IMG, '--metadata', JSON.stringify({ '@html': SCRIPT })]);
  server.edbx(['create', 'vault', 'v-1', 'opened', '{"n": 1}']);
  server.edbx(['archive', 'vault', 'v-1']);
  ro = await startUi(server);
  rw = await startUi(server, ['--allow-writes']);
  browser = await launch();
  // One browser profile logged into both UIs (each link works once; cookies are per port).
  context = await browser.newContext({ viewport: { width: 1300, height: 900 } });
  for (const ui of [ro, rw]) {
    const page = await newPage(context);
    const response = await page.goto(ui.url);
    assert.equal(response.status(), 200);
    assert.equal(page.url(), ui.base, 'the token leaves the address bar');
    await page.close();
  }
});

after(async () => {
  if (browser) await browser.close();
  for (const ui of [ro, rw]) if (ui) assert.equal(await ui.stop(), 130);
  if (server) await server.stop();
});

// A logged-in page of `ui` at `route`, failing the test on any CSP violation or script error.
async function open(ui, route, painted) {
  const page = await newPage(context);
  await page.goto(ui.base + '#' + route);
  if (painted) await page.waitForSelector(`body[data-painted="${painted}"]`, WAIT);
  return page;
}
async function clean(page) {
  assert.deepEqual(await page.evaluate(() => window.__violations), [], 'no CSP violation, no script error');
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no store value ran as script');
  await page.close();
}

describe('reading', () => {
  test('the overview counts the types and charts the activity', async () => {
    const page = await open(ro, '/', 'overview');
    await page.waitForSelector('#types-status:has-text("Counted")', WAIT);
    const count = async type => (await page.locator(`#types-table tr[data-type="${type}"] td`).allTextContents()).slice(1, 3);
    assert.deepEqual(await count('orders'), ['60', '0']);
    assert.deepEqual(await count('ledger'), ['1', '0']);
    assert.deepEqual(await count('vault'), ['0', '1']);
    const summary = page.locator('#activity-summary[data-total]');
    await summary.waitFor(WAIT);
    assert.ok(Number(await summary.getAttribute('data-total')) >= 65, await summary.textContent());
    assert.equal(await page.locator('#activity-chart canvas').count(), 1, 'the chart is drawn');
    assert.ok(await page.locator('#top-active a', { hasText: 'ledger / l-1' }).count() === 1);
    await clean(page);
  });

  test('a type page filters, and pages without skipping or repeating rows', async () => {
    const page = await open(ro, '/t/orders', 'type');
    const ids = () => page.locator('#aggregates tbody tr').evaluateAll(rows => rows.map(r => r.dataset.id));
    const first = await ids();
    assert.equal(first.length, 50);
    await page.click('#next-page');
    await page.waitForSelector('body[data-painted="type"] #results:has-text("10 rows")', WAIT);
    const second = await ids();
    const all = [...first, ...second];
    assert.deepEqual(all, Array.from({ length: 60 }, (_, i) => 'o-' + String(i).padStart(2, '0')));

    await page.fill('#filter', "status = 'paid' AND total > 10");
    await page.click('#list-form button[type=submit]');
    await page.waitForFunction(() => location.hash.includes('filter='), null, WAIT);
    await page.waitForSelector('body[data-painted="type"]', WAIT);
    const paid = await ids();
    assert.deepEqual(paid, [12, 15, 18, 21, 24, 27, 30, 33, 36, 39, 42, 45, 48, 51, 54, 57].map(i => 'o-' + i));
    // The filter is in the address: a deep link shows the same page.
    const again = await open(ro, (await page.evaluate(() => location.hash)).slice(1), 'type');
    assert.deepEqual(await again.locator('#aggregates tbody tr').count(), paid.length);
    await clean(again);
    // A filter the server refuses is explained, not swallowed.
    await page.fill('#filter', 'total >= 3');
    await page.click('#list-form button[type=submit]');
    await page.waitForSelector('#results .error', WAIT);
    assert.match(await page.locator('#results .error').textContent(), /filter/);
    await clean(page);
  });

  test('an aggregate page steps through the versions and shows what each event changed', async () => {
    const page = await open(ro, '/a/ledger/l-1', 'aggregate');
    await page.waitForSelector('#shown-version:has-text("4")', WAIT);
    assert.equal(await page.locator('#timeline tbody tr').count(), 4);
    assert.deepEqual(await page.locator('#timeline tbody tr[data-version="3"] td').allTextContents().then(t => [t[1], t[3], t[5]]),
      ['money.out', 'cli/root', '{"@trace":{"id":"t-9"}}']);
    await page.click('#prev-version');
    await page.waitForSelector('#shown-version:has-text("3")', WAIT);
    const changes = await page.locator('#changes tbody tr').evaluateAll(rows => rows.map(r => [...r.cells].map(c => c.textContent)));
    assert.deepEqual(changes, [['balance', 'changed', '10', '4'], ['last', 'changed', 'in', 'out']]);
    await page.click('#timeline tbody tr[data-version="1"]');
    await page.waitForSelector('#shown-version:has-text("1")', WAIT);
    assert.match(await page.locator('#at-version').textContent(), /opened/);
    assert.equal(await page.locator('#prev-version').isDisabled(), true);
    assert.match(await page.evaluate(() => location.hash), /v=1$/);
    // Deep link to a version.
    const linked = await open(ro, '/a/ledger/l-1?v=2', 'aggregate');
    await linked.waitForSelector('#shown-version:has-text("2")', WAIT);
    assert.deepEqual(await linked.locator('#changes tbody tr td:first-child').allTextContents(), ['balance', 'last']);
    await clean(linked);
    // The Merkle check, with its true outcome.
    await page.click('#verify');
    await page.waitForSelector('#verify-outcome', WAIT);
    assert.equal(await page.locator('#verify-outcome').getAttribute('data-outcome'), 'intact');
    await clean(page);
  });

  test('an archived aggregate cannot be checked, and says so', async () => {
    const page = await open(ro, '/a/vault/v-1', 'aggregate');
    await page.click('#verify');
    await page.waitForSelector('#verify-outcome', WAIT);
    assert.equal(await page.locator('#verify-outcome').getAttribute('data-outcome'), 'unverifiable');
    assert.match(await page.locator('#verify-result').textContent(), /archived/);
    await clean(page);
  });

  test('jump to an aggregate by type and id', async () => {
    const page = await open(ro, '/', 'overview');
    await page.fill('#jump-type', 'people');
    await page.fill('#jump-id', 'p-1');
    await page.click('#jump button');
    await page.waitForSelector('body[data-painted="aggregate"] #facts', WAIT);
    assert.equal(await page.locator('#agg-id').textContent(), 'p-1');
    assert.match(await page.locator('#current-state').textContent(), /Ada/);
    await clean(page);
  });
});

describe('live', () => {
  test('a new event appears on the aggregate page and in the store feed without a reload', async () => {
    const page = await open(ro, '/a/people/p-1', 'aggregate');
    const overview = await open(ro, '/', 'overview');
    await page.waitForSelector('#live[data-state="ready"]', WAIT);
    await overview.waitForSelector('#live[data-state="ready"]', WAIT);
    server.edbx(['apply', 'people', 'p-1', 'renamed', '{"name": "Ada Lovelace"}', '--note', 'live one']);
    await page.waitForSelector('#timeline tbody tr[data-version="2"]', WAIT);
    await page.waitForSelector('#version:has-text("2")', WAIT);
    assert.match(await page.locator('#current-state').textContent(), /Ada Lovelace/);
    assert.equal(await page.locator('#timeline tbody tr[data-version="2"] td.note').textContent(), 'live one');
    await overview.waitForSelector('#feed tbody tr:has-text("people / p-1")', WAIT);
    await clean(page);
    await clean(overview);
  });
});

describe('values from the store are text', () => {
  test('payloads, state keys, notes and metadata holding markup show literally and never run', async () => {
    const page = await open(ro, '/a/evil/x-1', 'aggregate');
    await page.waitForSelector('#shown-version:has-text("1")', WAIT);
    await page.waitForSelector('#timeline tbody tr', WAIT);
    const text = await page.locator('main').textContent();
    assert.ok(text.includes(IMG), 'the markup shows as text');
    assert.ok(text.includes(SCRIPT));
    assert.equal(await page.locator('main img, main script').count(), 0, 'no element made from a value');
    assert.equal(await page.locator('#timeline td.note').textContent(), IMG);
    const type = await open(ro, '/t/evil', 'type');
    assert.ok((await type.locator('#aggregates').textContent()).includes(IMG));
    await clean(type);
    await clean(page);
  });

  test('markup in the address (type, id, filter) is shown as text in the errors', async () => {
    const id = encodeURIComponent(SCRIPT);
    const page = await open(ro, '/a/' + encodeURIComponent(IMG) + '/' + id, 'aggregate');
    const error = await page.locator('main .error').textContent();
    assert.ok(error.includes('aggregate_type'), error);
    const filtered = await open(ro, '/t/orders?filter=' + encodeURIComponent('<b>x</b> = 1'), 'type');
    const refused = await filtered.locator('#results .error').textContent();
    assert.ok(refused.includes('<b>'), refused);
    assert.equal(await filtered.locator('main img, main b').count(), 0);
    await clean(filtered);
    await clean(page);
  });
});

// A request from outside the browser, with any Host header.
function raw(port, path, headers) {
  return new Promise((resolve, reject) => {
    const request = http.request({ host: '127.0.0.1', port, path, headers }, response => {
      let body = '';
      response.on('data', d => { body += d; });
      response.on('end', () => resolve({ status: response.statusCode, body }));
    });
    request.on('error', reject);
    request.end();
  });
}

describe('who may look', () => {
  test('a browser without the cookie is refused, and the login link works only once', async () => {
    const stranger = await browser.newContext();
    const page = await stranger.newPage();
    const response = await page.goto(ro.base);
    assert.equal(response.status(), 401);
    assert.match(await page.textContent('body'), /Not logged in/);
    const reused = await page.goto(ro.url);
    assert.equal(reused.status(), 403, 'the link was used by the test browser already');
    assert.equal((await stranger.cookies()).length, 0);
    const api = await page.goto(ro.base + 'api/types');
    assert.equal(api.status(), 401);
    await stranger.close();
  });

  test('a foreign Host header is refused (DNS rebinding)', async () => {
    const cookies = await context.cookies(ro.base);
    const cookie = cookies.map(c => c.name + '=' + c.value).join('; ');
    const ok = await raw(ro.port, '/api/session', { Host: `127.0.0.1:${ro.port}`, Cookie: cookie });
    assert.equal(ok.status, 200);
    const rebound = await raw(ro.port, '/api/session', { Host: `attacker.example:${ro.port}`, Cookie: cookie });
    assert.equal(rebound.status, 403);
    assert.match(rebound.body, /DNS rebinding/);
  });
});

describe('writes', () => {
  test('a read-only UI offers no writes and refuses them', async () => {
    const page = await open(ro, '/a/people/p-1', 'aggregate');
    assert.equal(await page.locator('#writes').count(), 0);
    assert.equal(await page.locator('#mode').textContent(), 'read-only');
    const status = await page.evaluate(async () => (await fetch('/api/write/apply', {
      method: 'POST', headers: { 'content-type': 'application/json', 'x-edbx-csrf': 'x' },
      body: JSON.stringify({ type: 'people', id: 'p-1', event_type: 'hacked', payload: { x: 1 } }),
    })).status);
    assert.equal(status, 403);
    await clean(page);
  });

  test('with --allow-writes, a write is reviewed, confirmed and sent once', async () => {
    const before = JSON.parse(server.edbx(['get', 'ledger', 'l-1', '-o', 'json'])).version;
    const page = await open(rw, '/a/ledger/l-1', 'aggregate');
    await page.waitForSelector('#live[data-state="ready"]', WAIT);
    await page.fill('#apply-event_type', 'money.in');
    await page.fill('#apply-payload', '{"balance": 99}');
    await page.fill('#apply-note', 'from the browser');
    await page.click('#write-apply button[type=submit]');
    await page.waitForSelector('#confirm-apply', WAIT);
    assert.equal(JSON.parse(server.edbx(['get', 'ledger', 'l-1', '-o', 'json'])).version, before, 'nothing sent before confirming');
    await page.click('#confirm-apply');
    await page.waitForSelector('#write-done', WAIT);
    await page.waitForSelector(`#timeline tbody tr[data-version="${before + 1}"]`, WAIT);
    const after = JSON.parse(server.edbx(['get', 'ledger', 'l-1', '-o', 'json']));
    assert.equal(after.version, before + 1);
    assert.equal(after.state.balance, '99');
    await clean(page);
  });

  test('a write without the CSRF token, or from another origin, is refused', async () => {
    const before = JSON.parse(server.edbx(['get', 'people', 'p-1', '-o', 'json'])).version;
    const page = await open(rw, '/a/people/p-1', 'aggregate');
    const body = JSON.stringify({ type: 'people', id: 'p-1', event_type: 'hacked', payload: { x: 1 } });
    const noCsrf = await page.evaluate(async body => {
      const r = await fetch('/api/write/apply', { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      return [r.status, await r.text()];
    }, body);
    assert.equal(noCsrf[0], 403);
    assert.match(noCsrf[1], /CSRF/);
    // A page of another local web server (same site: the browser sends the writable UI's
    // cookie along), posting as a form would. (The browser withholds the answer: the fetch
    // fails.)
    const attacker = http.createServer((_, response) => {
      response.writeHead(200, { 'content-type': 'text/html' });
      response.end('<!doctype html><title>elsewhere</title>');
    });
    await new Promise(resolve => attacker.listen(0, '127.0.0.1', resolve));
    const other = await newPage(context);
    await other.goto(`http://127.0.0.1:${attacker.address().port}/`);
    const sent = await other.evaluate(async ([url, body]) => {
      try {
        await fetch(url, { method: 'POST', mode: 'no-cors', credentials: 'include', headers: { 'content-type': 'text/plain' }, body });
        return 'answered';
      } catch (e) { return 'withheld'; }
    }, [rw.base + 'api/write/apply', body]);
    assert.ok(['answered', 'withheld'].includes(sent));
    attacker.close();
    const cookies = await context.cookies(rw.base);
    const cookie = cookies.map(c => c.name + '=' + c.value).join('; ');
    const session = JSON.parse((await raw(rw.port, '/api/session', { Host: `127.0.0.1:${rw.port}`, Cookie: cookie })).body);
    assert.equal(session.allow_writes, true);
    assert.equal(JSON.parse(server.edbx(['get', 'people', 'p-1', '-o', 'json'])).version, before, 'nothing written');
    await other.close();
    await clean(page);
  });
});
