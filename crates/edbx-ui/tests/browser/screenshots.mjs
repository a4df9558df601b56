// Takes the README's screenshots of `edbx ui` (docs/images/ui-*.png) against a throwaway
// server filled with a small order book whose writes are spread over a few minutes, so that
// the activity chart has something to show. Run through scripts/ui-screenshots.sh.
//
// Environment: EDBX_UI_SHOTS_MINUTES (default 4): how long the writes are spread over.
import path from 'node:path';
import { launch, newPage, repo, startServer, startUi } from './harness.mjs';

const minutes = Number(process.env.EDBX_UI_SHOTS_MINUTES || 4);
const out = path.join(repo, 'docs', 'images');
const WAIT = { timeout: 60_000 };
const log = text => process.stderr.write(`ui-screenshots: ${text}\n`);
const sleep = ms => new Promise(resolve => setTimeout(resolve, ms));

const server = await startServer();
const statuses = ['placed', 'paid', 'packed', 'shipped'];
const orders = Array.from({ length: 24 }, (_, i) => 'ord-' + String(1001 + i));
server.importEvents(orders.map((id, i) => ({
  aggregate_type: 'orders', aggregate_id: id, event_type: 'order.placed',
  payload: { total: 20 + (i * 37) % 180 + 0.99, currency: 'EUR', status: 'placed', customer: 'cus-' + (300 + (i % 9)) },
  note: i % 5 === 0 ? 'phone order' : undefined,
})));
server.importEvents(Array.from({ length: 9 }, (_, i) => ({
  aggregate_type: 'customers', aggregate_id: 'cus-' + (300 + i), event_type: 'customer.registered',
  payload: { name: ['Ada', 'Grace', 'Edsger', 'Barbara', 'Donald', 'Frances', 'Niklaus', 'Radia', 'Tony'][i], tier: i % 3 ? 'standard' : 'gold' },
})));
server.edbx(['create', 'payments', 'pay-77', 'payment.authorized', '{"amount": 57.99, "order": "ord-1002"}']);

// Orders move on, in bursts, over the next minutes (written in the past of the screenshots).
log(`writing order updates over ${minutes} minutes, for the activity chart`);
const progress = new Map(orders.map(id => [id, 0]));
const started = Date.now();
let round = 0;
while (Date.now() - started < minutes * 60_000) {
  const burst = 3 + (round * 7) % 11;
  for (let k = 0; k < burst; k++) {
    const id = orders[(round * 5 + k * 3) % orders.length];
    const step = Math.min(progress.get(id) + 1, statuses.length - 1);
    progress.set(id, step);
    const args = ['apply', 'orders', id, 'order.' + statuses[step], JSON.stringify({ status: statuses[step] })];
    if (statuses[step] === 'shipped') args.push('--metadata', JSON.stringify({ '@carrier': { name: 'DHL', tracking: 'JD0146' + round + k } }));
    if (statuses[step] === 'paid') args.push('--note', 'card ending 4242');
    server.edbx(args);
  }
  round++;
  await sleep(12_000);
}
server.edbx(['patch', 'orders', 'ord-1002', 'order.corrected', '[{"op": "replace", "path": "/total", "value": 54.5}]', '--note', 'price match']);
server.edbx(['snapshots', 'create', 'orders', 'ord-1002', '--comment', 'before refund']);

const ui = await startUi(server, ['--allow-writes']);
const browser = await launch();
const context = await browser.newContext({ viewport: { width: 1360, height: 900 }, deviceScaleFactor: 1, colorScheme: 'light' });
const login = await context.newPage();
await login.goto(ui.url);
await login.close();

log('overview');
const overview = await newPage(context);
await overview.goto(ui.base + '#/');
await overview.waitForSelector('#types-status:has-text("Counted")', WAIT);
await overview.waitForSelector('#activity-summary[data-total]', WAIT);
await overview.waitForSelector('#live[data-state="ready"]', WAIT);
server.edbx(['apply', 'orders', 'ord-1010', 'order.paid', '{"status": "paid"}', '--note', 'card ending 1881']);
server.edbx(['apply', 'customers', 'cus-304', 'customer.upgraded', '{"tier": "gold"}']);
await overview.waitForSelector('#feed tbody tr:nth-child(2)', WAIT);
await overview.screenshot({ path: path.join(out, 'ui-overview.png') });

log('type page');
const type = await newPage(context);
await type.goto(ui.base + '#/t/orders?filter=' + encodeURIComponent("status = 'shipped' OR total > 150") + '&sort=updated_at%3Adesc');
await type.waitForSelector('body[data-painted="type"]', WAIT);
await type.waitForSelector('#activity-summary[data-total]', WAIT);
await type.screenshot({ path: path.join(out, 'ui-type.png') });

log('aggregate page');
const aggregate = await newPage(context);
await aggregate.setViewportSize({ width: 1360, height: 1500 });
await aggregate.goto(ui.base + '#/a/orders/ord-1002?v=' + 2);
await aggregate.waitForSelector('#at-version[data-version="2"]', WAIT);
await aggregate.waitForSelector('#timeline tbody tr', WAIT);
await aggregate.click('#verify');
await aggregate.waitForSelector('#verify-outcome', WAIT);
await aggregate.screenshot({ path: path.join(out, 'ui-aggregate.png') });

await browser.close();
await ui.stop();
await server.stop();
log(`wrote ${['ui-overview.png', 'ui-type.png', 'ui-aggregate.png'].map(f => path.join('docs/images', f)).join(', ')}`);
