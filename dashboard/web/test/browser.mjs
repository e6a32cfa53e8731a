// Drives the dashboard in Debian's headless Chromium through playwright-core (which never
// downloads a browser). Run by dashboard/tests/browser.rs, which starts the pipeline and the
// dashboard; one scenario per run:
//
//   node browser.mjs check   <url> <args-json>   markers, colours, counts, popup, hostile name,
//                                                alert click, filters, agents, screenshot
//   node browser.mjs live    <url> <args-json>   prints READY, waits for GO on stdin, then for
//                                                the new sensor's marker (no reload)
//   node browser.mjs sensors <url> [args-json]   prints the sensors the page shows
//   node browser.mjs alerts  <url>               the alerts list's merge of snapshot and live
//
// Prints `RESULT <json>` and exits 0, or prints the failure and exits 1. Console errors, page
// errors and dialogs (an `alert(1)` that ran) fail every scenario.
import { chromium } from 'playwright-core';
import { createInterface } from 'node:readline';

const COLOURS = { high: 'rgb(214, 39, 40)', medium: 'rgb(255, 140, 0)', low: 'rgb(242, 214, 0)' };
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

const [scenario, url, rawArgs] = process.argv.slice(2);
const args = rawArgs ? JSON.parse(rawArgs) : {};

function check(condition, message) {
  if (!condition) throw new Error(message);
}

/** Everything the page logged, printed when a scenario fails. */
const pageLog = [];

async function open(browser) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  const problems = [];
  page.on('console', (message) => {
    const text = message.text();
    pageLog.push(`${message.type()}: ${text}`);
    // Tiles that cannot load (an air-gapped site) are the one expected failure, when allowed.
    if (message.type() === 'error' && !(args.allowTileErrors && text.startsWith('Failed to load resource'))) {
      problems.push(`console error: ${text}`);
    }
  });
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('dialog', (dialog) => { problems.push(`dialog opened: ${dialog.message()}`); dialog.dismiss(); });
  await page.goto(url);
  await page.waitForSelector('body[data-loaded="true"]', { timeout: 20_000 });
  return { page, problems };
}

/** Sensor name → { kinds, colour } of every individual marker on the map. */
const markers = (page) => page.$$eval('.leaflet-marker-icon.sensor', (icons) => icons.map((icon) => ({
  name: icon.title,
  kind: ['high', 'medium', 'low', 'none'].find((k) => icon.classList.contains(k)),
  colour: getComputedStyle(icon).backgroundColor,
})));

const markerFor = async (page, name) => (await markers(page)).find((m) => m.name === name);

const waitForMarker = (page, name, kind, timeout) => page.waitForFunction(([n, k]) =>
  [...document.querySelectorAll('.leaflet-marker-icon.sensor')].some((i) => i.title === n && (!k || i.classList.contains(k))),
[name, kind], { timeout, polling: 50 });

const waitForNoMarker = (page, name) => page.waitForFunction((n) =>
  ![...document.querySelectorAll('.leaflet-marker-icon.sensor')].some((i) => i.title === n), name, { timeout: 5_000 });

async function clickMarker(page, name) {
  const handle = await page.evaluateHandle((n) =>
    [...document.querySelectorAll('.leaflet-marker-icon.sensor')].find((i) => i.title === n), name);
  await handle.asElement().click();
  await page.waitForFunction((n) => document.querySelector('.leaflet-popup .popup-name')?.textContent === n,
    name, { timeout: 5_000 });
}

const closePopup = (page) => page.evaluate(() => document.querySelector('.leaflet-popup-close-button')?.click());

async function checkScenario(page) {
  const { expect, hostile, hiddenByWindow, staleAgent, screenshot } = args;
  for (const { name } of expect) await waitForMarker(page, name, null, 10_000);
  const counts = { high: 0, medium: 0, low: 0 };
  for (const { name, intensity } of expect) {
    const marker = await markerFor(page, name);
    check(marker.kind === intensity, `${name}: marker is ${marker.kind}, expected ${intensity}`);
    check(marker.colour === COLOURS[intensity], `${name}: colour ${marker.colour}, expected ${COLOURS[intensity]}`);
    counts[intensity] += 1;
  }
  for (const [kind, n] of Object.entries(counts)) {
    const shown = await page.textContent(`[data-count="${kind}"]`);
    check(Number(shown) === n, `count of ${kind} is ${shown}, expected ${n}`);
  }
  // The hostile name: literal text in the popup and the alerts list, no element created.
  await clickMarker(page, hostile);
  check(await page.locator('img[src="x"]').count() === 0, 'the hostile source_name created an <img>');
  const listed = await page.$$eval('#alerts .alert-name', (names) => names.map((n) => n.textContent));
  check(listed.includes(hostile), `alerts list ${JSON.stringify(listed)} lacks the hostile name as text`);
  await closePopup(page);
  // An alert clicked: the map flies there and opens the sensor's popup.
  const target = expect.find((e) => e.intensity === 'high' && e.name !== hostile).name;
  await page.locator('#alerts li', { hasText: target }).first().click();
  await page.waitForFunction((n) => document.querySelector('.leaflet-popup .popup-name')?.textContent === n,
    target, { timeout: 10_000 });
  const popup = await page.textContent('.leaflet-popup');
  for (const part of ['confidence', 'temperature', 'rules fired', 'high']) {
    check(popup.includes(part), `popup lacks ${part}: ${popup}`);
  }
  await closePopup(page);
  // Agents: one row each, the stale one highlighted.
  await page.waitForSelector('#agents tbody tr', { timeout: 15_000 });
  if (staleAgent) {
    const stale = await page.$$eval('#agents tr.stale td:first-child', (cells) => cells.map((c) => c.textContent));
    check(stale.includes(staleAgent), `stale agents ${JSON.stringify(stale)} lack ${staleAgent}`);
  }
  // Back to every sensor (the test's sensors are far apart: no clusters at that zoom).
  await page.click('#fit-all');
  await waitForMarker(page, expect.find((e) => e.intensity === 'low').name, 'low', 5_000);
  if (screenshot) {
    await clickMarker(page, target);
    await page.waitForTimeout(500); // the popup's fade-in
    await page.screenshot({ path: screenshot });
    await closePopup(page);
  }
  // Filters: intensity, sensor name, time window.
  const low = expect.find((e) => e.intensity === 'low').name;
  await page.uncheck('input[name=intensity][value=low]');
  await waitForNoMarker(page, low);
  check(await markerFor(page, target), 'hiding low also hid a high marker');
  await page.check('input[name=intensity][value=low]');
  await waitForMarker(page, low, 'low', 5_000);
  await page.fill('#sensor-filter', target.slice(0, 6).toUpperCase());
  await waitForNoMarker(page, low);
  await page.fill('#sensor-filter', '');
  await waitForMarker(page, low, 'low', 5_000);
  if (hiddenByWindow) {
    await waitForMarker(page, hiddenByWindow, null, 5_000);
    await page.selectOption('#window', '3600');
    await waitForNoMarker(page, hiddenByWindow);
    check(await markerFor(page, target), 'the time window hid a recent sensor');
    await page.selectOption('#window', '0');
  }
  return { markers: (await markers(page)).length };
}

async function liveScenario(page) {
  await page.evaluate(() => { window.notReloaded = true; });
  await page.waitForSelector('#live.on', { timeout: 20_000 });
  console.log('READY');
  const lines = createInterface({ input: process.stdin });
  for await (const line of lines) if (line.trim() === 'GO') break;
  const started = Date.now();
  await waitForMarker(page, args.name, args.intensity, args.withinMs ?? 2_000);
  const latencyMs = Date.now() - started;
  check(await page.evaluate(() => window.notReloaded === true), 'the page reloaded');
  const marker = await markerFor(page, args.name);
  check(marker.colour === COLOURS[args.intensity], `live marker colour ${marker.colour}`);
  return { latencyMs };
}

async function sensorsScenario(page) {
  if (args.count) {
    await page.waitForFunction((n) => document.querySelectorAll('.leaflet-marker-icon.sensor').length >= n,
      args.count, { timeout: 10_000 });
  }
  const names = (await markers(page)).map((m) => `${m.name}:${m.kind}`).sort();
  const total = Number(await page.textContent('[data-count="total"]'));
  return { names, total };
}

/** The page's own alerts list on elements of its own: a live alert that PostgreSQL did not hold
 * yet when a snapshot was read stays after that snapshot; lists merge newest first, at most
 * `max`, each alert once. */
async function alertsScenario(page) {
  const shown = await page.evaluate(async () => {
    const { Alerts } = await import('/static/panels.js');
    const [list, empty] = [document.createElement('ul'), document.createElement('p')];
    const alerts = new Alerts(list, empty, () => {}, 3);
    const alert = (id, minute) => ({ reading_id: id, source_name: id, confidence_score: 0.9,
      observed_at: `2025-05-24T18:0${minute}:00Z` });
    const names = () => [...list.querySelectorAll('.alert-name')].map((n) => n.textContent);
    const steps = [];
    alerts.add(alert('live', 5));
    alerts.replace([alert('old-1', 1), alert('old-2', 2)]);
    steps.push(names());
    alerts.replace([alert('old-1', 1), alert('old-3', 3), alert('live', 5), alert('old-2', 2)]);
    steps.push(names());
    alerts.add(alert('live', 5));
    steps.push(names());
    return { steps, emptyHidden: empty.hidden };
  });
  const [merged, capped, again] = shown.steps.map((names) => names.join(','));
  check(merged === 'live,old-2,old-1', `a snapshot dropped the live alert: ${merged}`);
  check(capped === 'live,old-3,old-2', `not the newest three: ${capped}`);
  check(again === capped, `a repeated alert changed the list: ${again}`);
  check(shown.emptyHidden, 'the "no alerts" line shows beside alerts');
  return shown;
}

const SCENARIOS = { check: checkScenario, live: liveScenario, sensors: sensorsScenario, alerts: alertsScenario };

async function main() {
  check(SCENARIOS[scenario], `unknown scenario ${scenario}`);
  const executablePath = process.env.EMBERLINE_CHROMIUM || '/usr/bin/chromium';
  const browser = await chromium.launch({ executablePath, args: ARGS });
  try {
    const { page, problems } = await open(browser);
    const result = await SCENARIOS[scenario](page);
    check(problems.length === 0, problems.join('\n'));
    console.log(`RESULT ${JSON.stringify(result)}`);
  } finally {
    await browser.close();
  }
}

main().then(() => process.exit(0), (error) => {
  console.error(`FAILED ${scenario}: ${error.stack ?? error}`);
  if (pageLog.length) console.error(`the page logged:\n${pageLog.join('\n')}`);
  process.exit(1);
});
