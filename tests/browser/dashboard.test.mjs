// punctual-cron's dashboard in a real browser: Debian's chromium (/usr/bin/chromium) driven by
// playwright-core (pinned in package.json; `npm ci` here installs it), against real daemons on
// loopback with a real crontab and SQLite store.
//
//   node tests/browser/dashboard.test.mjs PATH/TO/punctual-cron [SCREENSHOT.png]
//
// Checks: the page lists the schedules; a run that ends appears without a reload; read-only
// mode shows no buttons and refuses POSTs (403); with --http-admin, "run now" creates a run
// that `punctual-cron history` shows and "pause" shows in `punctual-cron status`; a cross-site
// POST (a form on another origin) is refused. Takes a screenshot of the page (the second
// argument, else one in the test's temporary directory).
//
// Exit status: 0 passed, 1 failed, 77 skipped (no chromium or no node_modules: said why).
import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { createServer } from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const chromiumPath = process.env.PUNCTUAL_CHROMIUM || '/usr/bin/chromium';
const binary = process.argv[2] && resolve(process.argv[2]);
const screenshot = process.argv[3] && resolve(process.argv[3]);

function skip(why) {
  console.log(`SKIPPED: ${why}`);
  process.exit(77);
}
if (!binary || !existsSync(binary)) {
  console.error('usage: node dashboard.test.mjs PATH/TO/punctual-cron [SCREENSHOT.png]');
  process.exit(1);
}
if (!existsSync(chromiumPath)) skip(`no chromium at ${chromiumPath} (Debian: apt-get install chromium; scripts/install-deps does)`);
let chromium;
try {
  ({ chromium } = createRequire(join(here, 'package.json'))('playwright-core'));
} catch {
  skip(`playwright-core is not installed in ${here} (run: npm ci --prefix ${here}; scripts/install-deps does)`);
}

const work = mkdtempSync(join(tmpdir(), 'punctual-dashboard-'));
const daemons = [];
let failures = 0;
function check(ok, what) {
  console.log(`${ok ? 'ok  ' : 'FAIL'} ${what}`);
  if (!ok) failures++;
}
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
async function eventually(pred, ms = 15000) {
  const end = Date.now() + ms;
  for (;;) {
    const v = await pred();
    if (v) return v;
    if (Date.now() > end) return v;
    await sleep(100);
  }
}

/// Starts `punctual-cron run` in its own directory; resolves with its base URL.
async function startDaemon(name, crontab, extra = []) {
  const dir = join(work, name);
  execFileSync('mkdir', ['-p', dir]);
  writeFileSync(join(dir, 'crontab'), crontab);
  const store = `sqlite:${join(dir, 'store.db')}`;
  const child = spawn(binary, ['run', join(dir, 'crontab'), '--store', store, '--node', name, '--http', '127.0.0.1:0', ...extra],
    { cwd: dir, stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  child.on('error', (e) => { err += `cannot start ${binary}: ${e.message}\n`; });
  daemons.push(child);
  const port = await eventually(() => (err.match(/http: serving \/metrics and \/healthz on 127\.0\.0\.1:(\d+)/) || [])[1]);
  if (!port) throw new Error(`${name}: no http port in the log:\n${err}`);
  const cli = (...args) => execFileSync(binary, [...args, '--store', store], { cwd: dir, encoding: 'utf8' });
  return { url: `http://127.0.0.1:${port}`, dir, store, cli, log: () => err };
}

const crontab = [
  '#@ id=backup', 'CRON_TZ=Europe/Berlin', '30 2 * * * echo backing up; sleep 3',
  '#@ id=flaky', '@every 1s echo checking; exit $(( $(date +%s) % 3 / 2 ))',
  '#@ id=heartbeat', '@every 1s echo beat',
  '#@ id=report', 'CRON_TZ=UTC', '0 9 * * MON-FRI echo report',
  '#@ id=yearly', '@yearly echo yearly >> yearly.txt', ''].join('\n');
const ids = ['backup', 'flaky', 'heartbeat', 'report', 'yearly'];

const context = await chromium.launchPersistentContext(mkdtempSync(join(work, 'profile-')), {
  executablePath: chromiumPath,
  headless: true,
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking', '--disable-component-update',
    '--disable-sync', '--no-first-run'],
  viewport: { width: 1280, height: 860 },
});
let evil;
try {
  // ---- read-only ----
  const ro = await startDaemon('readonly', crontab);
  const page = await context.newPage();
  const consoleErrors = [];  // e.g. a Content-Security-Policy violation
  page.on('console', (m) => { if (m.type() === 'error') consoleErrors.push(m.text()); });
  page.on('pageerror', (e) => consoleErrors.push(String(e)));
  await page.goto(ro.url + '/');
  await page.waitForSelector('#schedules tr[data-id="heartbeat"]');
  const listed = await page.$$eval('#schedules tbody tr', (rows) => rows.map((r) => r.dataset.id));
  check(JSON.stringify(listed) === JSON.stringify(ids), `the page lists the schedules (${listed})`);
  const words = await page.textContent('#schedules tr[data-id="backup"]');
  check(words.includes('at 02:30 every day, Europe/Berlin'), 'backup is described in plain words');
  check(await page.$$eval('button[data-action]', (b) => b.length) === 0, 'read-only: no action buttons');
  check(await page.isHidden('#login'), 'read-only: no token form');
  await page.waitForSelector('#live.on', { timeout: 5000 });
  // A run that ends appears without a reload: a strip cell for a newer run of heartbeat.
  await page.evaluate(() => { window.notReloaded = true; });
  const before = await page.$$eval('#schedules tr[data-id="heartbeat"] .strip a', (a) => Math.max(0, ...a.map((x) => +x.title.match(/run (\d+)/)[1])));
  const appeared = await page.waitForFunction((n) => [...document.querySelectorAll('#schedules tr[data-id="heartbeat"] .strip a')]
    .some((a) => { const m = a.title.match(/run (\d+): succeeded/); return m && +m[1] > n; }), before, { timeout: 8000 }).then(() => true, () => false);
  check(appeared && await page.evaluate(() => window.notReloaded === true), 'a run that ends appears without a reload');
  const refused = await page.evaluate(async () => (await fetch('/api/schedules/heartbeat/pause', { method: 'POST', headers: { Authorization: 'Bearer whatever-whatever-1' } })).status);
  check(refused === 403, `read-only: POST answers 403 (${refused})`);
  check(!JSON.parse(ro.cli('status', '--json')).find((s) => s.id === 'heartbeat').paused, 'read-only: heartbeat not paused');

  // ---- admin ----
  const token = 'browser-test-token-0123456789';
  writeFileSync(join(work, 'token'), token + '\n');
  const admin = await startDaemon('admin', crontab, ['--http-admin', join(work, 'token')]);
  await page.goto(admin.url + '/');
  await page.waitForSelector('#schedules tr[data-id="yearly"]');
  check(await page.isVisible('#login'), 'admin: the token form shows');
  check(await page.$$eval('button[data-action]', (b) => b.length) === 0, 'admin, locked: no action buttons yet');
  await page.fill('#token', token);
  await page.click('#login button');
  await page.waitForSelector('button[data-action="trigger"][data-id="yearly"]');
  await page.click('button[data-action="trigger"][data-id="yearly"]');
  const ran = await eventually(() => JSON.parse(admin.cli('history', 'yearly', '--json')).some((r) => r.outcome === 'succeeded'));
  check(ran, '"run now" creates a run that punctual-cron history shows');
  await page.click('button[data-action="pause"][data-id="heartbeat"]');
  const paused = await eventually(() => JSON.parse(admin.cli('status', '--json')).find((s) => s.id === 'heartbeat').paused);
  check(paused, '"pause" shows in punctual-cron status');
  const pausedShown = await page.waitForSelector('#schedules tr[data-id="heartbeat"] .paused', { timeout: 5000 }).then(() => true, () => false);
  check(pausedShown, 'the page shows heartbeat paused');
  await page.click('button[data-action="resume"][data-id="heartbeat"]');
  await eventually(() => !JSON.parse(admin.cli('status', '--json')).find((s) => s.id === 'heartbeat').paused);

  // ---- cross-site: a form on another origin posts to the daemon ----
  evil = createServer((req, res) => {
    res.writeHead(200, { 'Content-Type': 'text/html' });
    res.end(`<form id="f" method="POST" action="${admin.url}/api/schedules/heartbeat/pause"></form><script>document.getElementById('f').submit()</script>`);
  });
  await new Promise((r) => evil.listen(0, '127.0.0.1', r));
  const attacker = await context.newPage();
  await attacker.goto(`http://127.0.0.1:${evil.address().port}/`);
  await attacker.waitForURL(admin.url + '/api/schedules/heartbeat/pause');
  const body = await attacker.textContent('body');
  check(body.includes('cross-site request refused'), `a cross-site POST is refused (${body.trim()})`);
  check(!JSON.parse(admin.cli('status', '--json')).find((s) => s.id === 'heartbeat').paused, 'cross-site: heartbeat not paused');
  await attacker.close();

  // ---- a schedule's page, then the screenshot of the list ----
  const shot = screenshot || join(work, 'dashboard.png');
  // A few more runs, so that the pictures have something to show.
  await eventually(() => JSON.parse(admin.cli('history', 'heartbeat', '--json')).length >= 12, 20000);
  await page.goto(admin.url + '/#/schedule/heartbeat');
  await page.waitForSelector('#next-fires tr');
  check(await page.$$eval('#next-fires tr', (r) => r.length) === 10, 'a schedule page lists the next 10 fire times');
  await page.waitForSelector('svg#lateness rect');
  check(await page.$$eval('#runs tbody tr', (r) => r.length) > 0, 'a schedule page lists its runs');
  await page.evaluate(() => { document.querySelector('#toast').hidden = true; });
  await page.screenshot({ path: shot.replace(/\.png$/, '-schedule.png') });
  await page.goto(admin.url + '/#/');
  await page.waitForSelector('#schedules tr[data-id="heartbeat"] .strip a');
  await page.click('button[data-action="trigger"][data-id="backup"]');  // something running in the picture
  await page.waitForSelector('#running tr[data-job]', { timeout: 5000 }).catch(() => {});
  await page.evaluate(() => { document.querySelector('#toast').hidden = true; });
  await page.screenshot({ path: shot, fullPage: true });
  // Refused POSTs show as failed requests in the console; anything else is a fault of the page.
  const unexpected = consoleErrors.filter((e) => !/status of 40[13]/.test(e));
  check(unexpected.length === 0, `no errors in the page's console (${unexpected.join(' | ')})`);
  console.log(`screenshots: ${shot} and ${shot.replace(/\.png$/, '-schedule.png')}`);
} catch (e) {
  failures++;
  console.log(`FAIL ${e.stack || e}`);
  for (const d of daemons) d.kill('SIGKILL');
} finally {
  await context.close();
  if (evil) evil.close();
  for (const d of daemons) d.kill('SIGTERM');
  await sleep(300);
  for (const d of daemons) d.kill('SIGKILL');
  rmSync(work, { recursive: true, force: true });
}
console.log(failures ? `${failures} check(s) failed` : 'all checks passed');
process.exit(failures ? 1 : 0);
