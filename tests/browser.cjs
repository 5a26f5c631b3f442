// Drives the browser app in Debian's headless Chromium (puppeteer-core, installed by
// `npm ci --prefix cnnkeras/web`) and prints what the page did as one JSON line:
//   node tests/browser.cjs URL '{"variants": [...], "bench": 0, "photos": [...], "screenshot": "x.png"}'
// Each variant is selected in the page and its Self-test button clicked, as a user would.
const puppeteer = require("puppeteer-core");

async function main() {
  const [url, optionsText] = process.argv.slice(2);
  const options = JSON.parse(optionsText || "{}");
  const browser = await puppeteer.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: [
      "--no-sandbox", "--disable-gpu", "--use-angle=swiftshader", "--enable-unsafe-swiftshader",
      "--disable-background-networking", "--disable-component-update", "--disable-sync",
      "--no-first-run", "--disable-quic",
    ],
  });
  const result = { console: [], variants: {} };
  try {
    const page = await browser.newPage();
    await page.setViewport({ width: 900, height: 600 });
    page.on("console", (m) => m.type() === "error" && result.console.push(m.text()));
    page.on("pageerror", (e) => result.console.push(String(e)));
    const start = Date.now();
    await page.goto(url, { waitUntil: "load" });
    await page.waitForFunction(() => document.body.dataset.state !== "loading", { timeout: 60000 });
    result.load_ms = Date.now() - start;
    result.state = await page.evaluate(() => document.body.dataset.state);
    result.error = await page.evaluate(() => {
      const box = document.getElementById("error");
      return box.hidden ? null : box.textContent;
    });
    if (result.state !== "ready") return result;
    for (const variant of options.variants || []) {
      await page.select("#variant", variant);
      await page.waitForFunction(
        (v) => window.app.variant === v && !document.getElementById("selftest").disabled,
        { timeout: 60000 }, variant);
      await page.evaluate(() => { window.app.lastSelfTest = null; });
      await page.click("#selftest");
      await page.waitForFunction(() => window.app.lastSelfTest !== null, { timeout: 60000 });
      const run = await page.evaluate(() => window.app.lastSelfTest);
      run.shown = await page.evaluate(() =>
        [...document.querySelectorAll("#selftest-table tbody td:last-child")].map((td) => td.textContent));
      if (options.bench) run.bench = await page.evaluate((n) => window.app.bench(n), options.bench);
      result.variants[variant] = run;
    }
    if (options.photos) {
      const input = await page.$("#photos");
      await input.uploadFile(...options.photos);
      // a card is done when it shows its latency line, or the error of its image
      await page.waitForFunction(
        (n) => document.querySelectorAll("#results .card :is(.meta, .fail)").length >= n,
        { timeout: 60000 }, options.photos.length);
      result.cards = await page.evaluate(() =>
        [...document.querySelectorAll("#results .card")].map(
          (card) => card.querySelector(".row .name, .fail").textContent));
    }
    if (options.screenshot) await page.screenshot({ path: options.screenshot, fullPage: true });
  } finally {
    await browser.close();
  }
  return result;
}

main().then(
  (result) => process.stdout.write(JSON.stringify(result) + "\n"),
  (error) => { process.stderr.write(String(error.stack || error) + "\n"); process.exit(1); },
);
