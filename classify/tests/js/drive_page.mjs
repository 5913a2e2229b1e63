// Drives a page written by `classify export --web` in a real headless
// Chromium (Debian's /usr/bin/chromium through playwright-core; no browser
// download): waits for the model, gives it the files as a person choosing
// them would, waits for every answer, takes a screenshot, and prints what
// the page shows as JSON: [{file, label, scores, error}, ...].
//
//   node drive_page.mjs URL SCREENSHOT.png FILE...
import { createRequire } from "node:module";

const require = createRequire(new URL("../../../web/package.json", import.meta.url));
const { chromium } = require("playwright-core");

const [url, screenshot, ...files] = process.argv.slice(2);
const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  headless: true,
  args: ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
         "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1100, height: 900 } });
  const logs = [];
  page.on("console", m => logs.push(m.text()));
  page.on("pageerror", e => logs.push(String(e)));
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready, null, { timeout: 120000 });
  if (await page.evaluate(() => document.body.dataset.ready) !== "true") {
    throw new Error("the model did not load: " + (await page.textContent("#status")) + " " + logs.join(" | "));
  }
  await page.setInputFiles("#files", files);
  await page.waitForFunction(n => Number(document.body.dataset.done || 0) >= n, files.length, { timeout: 300000 });
  const shown = await page.$$eval("figure", fs => fs.map(f => ({
    file: f.dataset.file,
    label: f.dataset.label ?? null,
    scores: f.dataset.scores ? JSON.parse(f.dataset.scores) : null,
    error: f.dataset.error ?? null,
  })));
  await page.screenshot({ path: screenshot, fullPage: true });
  console.log(JSON.stringify(shown));
} finally {
  await browser.close();
}
