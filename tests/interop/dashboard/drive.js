// Drive the simulator's dashboard in Debian's chromium, headless, through
// playwright-core (no browser download: the system's /usr/bin/chromium).
//
// Usage: node drive.js <dashboard URL> <device id> <screenshot.png> [fault id]
// Env: CHROMIUM (default /usr/bin/chromium).
//
// Steps, each printed as one JSON line on stdout ({"step", "ok", ...}):
// load the page, see the device in the devices table, see its
// SynchronizeState in the live timeline, push ReportSoftwareInfo from the
// composer, see the device's SoftwareInfo event arrive after it and the
// devices panel follow; with a fault id, clear that fault rule from the
// faults panel; save a screenshot. Exit 0 when every step passed; 1 (with {"ok": false,
// "error"}) at the first that did not, after a screenshot of the failure.
"use strict";
const fs = require("fs");
const os = require("os");
const path = require("path");
const { chromium } = require("playwright-core");

/** How long one step may take, in milliseconds. */
const STEP_MS = 20000;

const ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];

function report(step, extra) {
  console.log(JSON.stringify({ step, ok: true, ...extra }));
}

/** The id of the newest timeline entry whose summary line contains `text`, after `after`. */
async function waitForEntry(page, text, after) {
  const handle = await page.waitForFunction(
    ([text, after]) => {
      const rows = [...document.querySelectorAll("#timeline details.entry")];
      const hit = rows.find((r) => Number(r.dataset.id) > after && r.querySelector("summary").textContent.includes(text));
      return hit ? Number(hit.dataset.id) : null;
    },
    [text, after],
    { timeout: STEP_MS },
  );
  return handle.jsonValue();
}

async function main() {
  const [url, device, screenshot, fault] = process.argv.slice(2);
  if (!url || !device || !screenshot) throw new Error("usage: drive.js <url> <device> <screenshot.png>");
  const userDataDir = fs.mkdtempSync(path.join(os.tmpdir(), "avs-sim-chromium-"));
  const context = await chromium.launchPersistentContext(userDataDir, {
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    headless: true,
    args: ARGS,
    viewport: { width: 1366, height: 768 },
  });
  const page = context.pages()[0] || (await context.newPage());
  const consoleErrors = [];
  page.on("console", (m) => m.type() === "error" && consoleErrors.push(m.text()));
  page.on("pageerror", (e) => consoleErrors.push(String(e)));
  try {
    await page.goto(url, { timeout: STEP_MS });
    report("loaded", { title: await page.title() });

    const row = page.locator(`#devices tr[data-device="${device}"]`);
    await row.waitFor({ timeout: STEP_MS });
    report("device", { row: (await row.innerText()).replace(/\s+/g, " ").trim() });

    const sync = await waitForEntry(page, "System.SynchronizeState", 0);
    report("synchronize_state", { entry: sync });

    await page.selectOption("#composer-device", device);
    await page.selectOption("#composer-preset", "ReportSoftwareInfo");
    await page.click("#composer-send");
    await page.waitForFunction(() => /^\d{3} /.test(document.getElementById("composer-result").textContent), null, {
      timeout: STEP_MS,
    });
    const answer = await page.textContent("#composer-result");
    if (!answer.startsWith("202 ")) throw new Error(`the push was refused: ${answer}`);
    const pushed = await waitForEntry(page, "System.ReportSoftwareInfo", sync);
    report("pushed", { answer, entry: pushed });

    const info = await waitForEntry(page, "System.SoftwareInfo", pushed);
    // Open it, so the screenshot shows an entry's JSON.
    await page.click(`#timeline details.entry[data-id="${info}"] summary`);
    const json = page.locator(`#timeline details.entry[data-id="${info}"] pre.json`);
    await json.filter({ hasText: "firmwareVersion" }).waitFor({ timeout: STEP_MS });
    const firmware = JSON.parse(await json.textContent()).body.event.payload.firmwareVersion;
    report("software_info", { entry: info, firmware });

    // The devices panel follows: the device's last event is now SoftwareInfo.
    await row.filter({ hasText: "System.SoftwareInfo at" }).waitFor({ timeout: STEP_MS });
    report("device_updated", { row: (await row.innerText()).replace(/\s+/g, " ").trim() });

    if (fault) {
      const faultRow = page.locator("#faults tbody tr", { hasText: fault });
      await faultRow.waitFor({ timeout: STEP_MS });
      await faultRow.locator("button", { hasText: "Clear" }).click();
      await page.locator("#faults tbody tr.empty").waitFor({ timeout: STEP_MS });
      report("fault_cleared", { fault });
    }

    await page.screenshot({ path: screenshot, fullPage: true });
    report("screenshot", { path: screenshot, bytes: fs.statSync(screenshot).size });
    if (consoleErrors.length) throw new Error(`errors in the page's console: ${consoleErrors.join(" | ")}`);
    report("done");
  } catch (e) {
    await page.screenshot({ path: screenshot, fullPage: true }).catch(() => {});
    throw e;
  } finally {
    await context.close();
    fs.rmSync(userDataDir, { recursive: true, force: true });
  }
}

main().catch((e) => {
  console.log(JSON.stringify({ ok: false, error: String(e && e.message ? e.message : e) }));
  process.exit(1);
});
