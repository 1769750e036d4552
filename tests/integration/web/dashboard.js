// Drives pgpilot's dashboard in a real headless Chromium (Debian's /usr/bin/chromium) for
// tests/integration/test_dashboard.py. Reads one JSON command per line on stdin, answers
// one JSON line on stdout per command:
//   {"cmd": "open", "url": "http://127.0.0.1:PORT/?interval=300"}
//   {"cmd": "nodes"}                       -> rows of the nodes table as the page shows them
//   {"cmd": "events"}                      -> the timeline entries (kind, text, failure)
//   {"cmd": "sessions"}                    -> the sessions note and rows
//   {"cmd": "action", "action": "detach", "node": 2, "token": "...", "confirm": true}
//                                          -> the dialog text and the toast after the POST
//   {"cmd": "switchover", "node": 1, "token": "...", "confirm": true}
//   {"cmd": "screenshot", "path": "/tmp/x.png"}
//   {"cmd": "waitText", "selector": "#events", "text": "reload", "wait_ms": 15000}
//   {"cmd": "quit"}
"use strict";

const readline = require("readline");
const { chromium } = require("playwright-core");

const TIMEOUT = 15000;
let browser;
let page;
const consoleErrors = [];

async function open(url) {
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"],
  });
  page = await browser.newPage({ viewport: { width: 1400, height: 1000 } });
  page.setDefaultTimeout(TIMEOUT);
  page.on("console", (m) => { if (m.type() === "error") consoleErrors.push(m.text()); });
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  await page.goto(url);
  await page.waitForSelector("body[data-loaded=true]");
  return { title: await page.title() };
}

async function nodes() {
  return page.$$eval("#nodes tbody tr", (trs) => trs.map((tr) => {
    const cells = [...tr.querySelectorAll("td")].map((td) => td.textContent.trim());
    return {
      id: Number(cells[0]), address: cells[1], role: cells[2], status: cells[3],
      pg_status: cells[4], lag: cells[5], statements: cells[7],
      actions: [...tr.querySelectorAll("button[data-action]")].map((b) => b.dataset.action),
    };
  }));
}

async function events() {
  return page.$$eval("#events li", (lis) => lis.map((li) => ({
    kind: li.dataset.kind || "", failure: li.classList.contains("failure"),
    text: li.textContent.trim(),
  })));
}

async function sessions() {
  return {
    note: (await page.textContent("#sessions-note")).trim(),
    rows: await page.$$eval("#sessions tbody tr", (trs) => trs.map((tr) =>
      [...tr.querySelectorAll("td")].map((td) => td.textContent.trim()))),
  };
}

// Fills the token, clicks, answers the confirmation dialog, waits for the toast.
async function confirmAndPost(click, c) {
  await page.fill("#token", c.token || "");
  await page.evaluate(() => { document.getElementById("toast").removeAttribute("data-status"); });
  await click();
  await page.waitForSelector("#confirm[open]");
  const dialog = (await page.textContent("#confirm-text")).trim();
  const title = (await page.textContent("#confirm-title")).trim();
  if (!c.confirm) {
    await page.click("#confirm-cancel");
    await page.waitForSelector("#confirm:not([open])", { state: "attached" });
    await page.waitForTimeout(300);
    const posted = await page.$eval("#toast", (t) => t.hasAttribute("data-status"));
    return { title, dialog, posted };
  }
  await page.click("#confirm-ok");
  await page.waitForSelector("#toast[data-status]");
  const toast = await page.$eval("#toast", (t) => ({ text: t.textContent, status: t.dataset.status }));
  return { title, dialog, posted: true, toast };
}

async function action(c) {
  return confirmAndPost(() => page.click(`button[data-testid="${c.action}-${c.node}"]`), c);
}

async function switchover(c) {
  await page.selectOption("#switchover-node", String(c.node));
  return confirmAndPost(() => page.click("#switchover"), c);
}

async function waitText(c) {
  await page.waitForFunction(
    ([sel, text]) => (document.querySelector(sel)?.textContent || "").includes(text),
    [c.selector, c.text], { timeout: c.wait_ms || TIMEOUT });
  return { found: true };
}

async function handle(c) {
  switch (c.cmd) {
    case "open": return open(c.url);
    case "nodes": return { nodes: await nodes() };
    case "events": return { events: await events() };
    case "sessions": return sessions();
    case "action": return action(c);
    case "switchover": return switchover(c);
    case "waitText": return waitText(c);
    case "screenshot":
      await page.waitForTimeout(c.settle_ms || 0);
      await page.screenshot({ path: c.path, fullPage: true });
      return { path: c.path };
    case "errors": return { errors: consoleErrors };
    case "quit":
      if (browser) await browser.close();
      return { bye: true };
    default: throw new Error(`unknown command ${c.cmd}`);
  }
}

async function main() {
  const rl = readline.createInterface({ input: process.stdin });
  for await (const line of rl) {
    if (!line.trim()) continue;
    const c = JSON.parse(line);
    let out;
    try {
      out = { ok: true, ...(await handle(c)) };
    } catch (e) {
      out = { ok: false, error: String(e && e.message ? e.message : e) };
    }
    process.stdout.write(JSON.stringify(out) + "\n");
    if (c.cmd === "quit") break;
  }
  if (browser) await browser.close().catch(() => {});
}

main().catch((e) => { console.error(e); process.exit(1); });
