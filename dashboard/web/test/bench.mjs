// Benchmark (not a test): the page with many sensors in Debian's headless Chromium. Run by
// `cargo run --release -p emberline-dashboard --example dashboard_bench` (scripts/bench-dashboard), which
// fills a database and serves it; prints one JSON line per run.
//
//   loaded_ms    navigation start → snapshot fetched and applied (performance mark)
//   rendered_ms  navigation start → every marker added to the clusters (≥ loaded_ms)
//   filter_ms    unchecking `low` → markers and counts updated
//   js_heap_mb   the page's JS heap after rendering (CDP Performance.getMetrics)
//   pss_mb       proportional set size of every Chromium process (/proc/*/smaps_rollup)
import { chromium } from 'playwright-core';
import { readFileSync, readdirSync } from 'node:fs';

const [url, runsText] = process.argv.slice(2);
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-background-networking',
  '--disable-component-update', '--disable-sync'];

/** Pids of `root` and all its descendants. */
function tree(root) {
  const children = new Map();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (!children.has(ppid)) children.set(ppid, []);
      children.get(ppid).push(Number(entry));
    } catch { /* gone */ }
  }
  const all = [];
  const walk = (pid) => { all.push(pid); for (const c of children.get(pid) ?? []) walk(c); };
  walk(root);
  return all;
}

function pssMb(pids) {
  let kb = 0;
  for (const pid of pids) {
    try {
      const match = readFileSync(`/proc/${pid}/smaps_rollup`, 'utf8').match(/^Pss:\s+(\d+)/m);
      if (match) kb += Number(match[1]);
    } catch { /* gone */ }
  }
  return kb / 1024;
}

async function run(browser, root) {
  const page = await browser.newPage({ viewport: { width: 1400, height: 860 } });
  const cdp = await page.context().newCDPSession(page);
  await cdp.send('Performance.enable');
  await page.goto(url);
  await page.waitForFunction(() => performance.getEntriesByName('emberline-rendered').length > 0,
    null, { timeout: 120_000, polling: 50 });
  await page.waitForFunction(() => performance.getEntriesByName('emberline-loaded').length > 0,
    null, { timeout: 120_000, polling: 50 });
  // The first bulk add may finish before the loaded mark (it is synchronous up to 200 ms).
  const [loaded, rendered] = await page.evaluate(() => new Promise((resolve) => {
    requestAnimationFrame(() => {
      const at = (name) => performance.getEntriesByName(name)[0].startTime;
      resolve([at('emberline-loaded'), Math.max(at('emberline-loaded'), at('emberline-rendered'))]);
    });
  }));
  const total = Number(await page.textContent('[data-count="total"]'));
  await page.waitForTimeout(500);
  const { metrics } = await cdp.send('Performance.getMetrics');
  const pss = root ? Math.round(pssMb(tree(root))) : null;
  const metric = (name) => metrics.find((m) => m.name === name)?.value ?? 0;
  const started = Date.now();
  await page.uncheck('input[name=intensity][value=low]');
  await page.waitForFunction(() => !document.getElementById('shown').textContent.startsWith(
    document.querySelector('[data-count="total"]').textContent), null, { polling: 10 });
  const filterMs = Date.now() - started;
  const result = { sensors: total, loaded_ms: Math.round(loaded), rendered_ms: Math.round(rendered),
    filter_ms: filterMs, js_heap_mb: +(metric('JSHeapUsedSize') / 2 ** 20).toFixed(1),
    dom_nodes: metric('Nodes'), chromium_pss_mb: pss };
  await page.close();
  return result;
}

const executablePath = process.env.EMBERLINE_CHROMIUM || '/usr/bin/chromium';
const browser = await chromium.launch({ executablePath, args: ARGS });
const root = readdirSync('/proc').filter((p) => /^\d+$/.test(p)).map(Number).filter((pid) => {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('playwright_chromiumdev_profile') &&
      !readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('--type=');
  } catch { return false; }
}).sort((a, b) => a - b)[0];
// Baseline: the same browser with one blank page.
const blank = await browser.newPage();
await blank.waitForTimeout(500);
console.log(JSON.stringify({ blank_page_chromium_pss_mb: root ? Math.round(pssMb(tree(root))) : null }));
await blank.close();
for (let i = 0; i < Number(runsText ?? 3); i += 1) {
  console.log(JSON.stringify(await run(browser, root)));
}
await browser.close();
