// Swagger UI at /docs, checked in a real headless Chromium (Debian's /usr/bin/chromium, driven by
// playwright-core; no browser download).
//
//   node swagger_ui.mjs --base-url http://127.0.0.1:PORT --spec openapi.json --screenshot out.png
//
// Checks: the page loads with no spec error box; every operation of the spec is listed; "Try it
// out" on POST /rest-auth/token/verify/ with {"token":"x"} gets a real 401 from the server, shown in
// the live response panel. Keeps a screenshot of that state. Closing line:
// `browser: N passed, N failed`; exit code 1 on any failure.

import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { chromium } from "playwright-core";

function arg(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  if (i >= 0 && i + 1 < process.argv.length) return process.argv[i + 1];
  if (fallback !== undefined) return fallback;
  throw new Error(`--${name} is required`);
}

const baseUrl = arg("base-url");
const spec = JSON.parse(readFileSync(arg("spec"), "utf8"));
const screenshot = arg("screenshot", "");
const executablePath = process.env.CHROMIUM ?? "/usr/bin/chromium";
const VERIFY = "/rest-auth/token/verify/";

let passed = 0;
let failed = 0;
async function step(name, fn) {
  try {
    const note = await fn();
    passed++;
    console.log(`PASS ${name}${note ? ` (${note})` : ""}`);
    return true;
  } catch (e) {
    failed++;
    console.log(`FAIL ${name}: ${e instanceof Error ? e.message.split("\n")[0] : String(e)}`);
    return false;
  }
}
function expect(cond, msg) {
  if (!cond) throw new Error(msg);
}

const userDataDir = mkdtempSync(join(tmpdir(), "authbridge-chromium-"));
const context = await chromium.launchPersistentContext(userDataDir, {
  executablePath,
  headless: true,
  viewport: { width: 1280, height: 900 },
  timeout: 60_000,
  args: [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
  ],
});
context.setDefaultTimeout(20_000);
const page = context.pages()[0] ?? (await context.newPage());
const pageErrors = [];
page.on("pageerror", (e) => pageErrors.push(String(e)));

try {
  await step("GET /docs loads Swagger UI", async () => {
    const resp = await page.goto(`${baseUrl}/docs`, { waitUntil: "load", timeout: 30_000 });
    expect(resp && resp.status() === 200, `status ${resp && resp.status()}`);
    await page.locator(".swagger-ui .information-container .title").first().waitFor();
    await page.locator(".opblock").first().waitFor();
    const title = (await page.locator(".information-container .title").first().innerText()).split("\n")[0];
    return `title ${JSON.stringify(title.trim())}`;
  });

  await step("no spec errors shown", async () => {
    const errors = page.locator(".swagger-ui .errors-wrapper");
    const n = await errors.count();
    const text = n ? await errors.first().innerText() : "";
    expect(n === 0, `Swagger UI reports: ${text.replace(/\s+/g, " ").slice(0, 300)}`);
    expect(pageErrors.length === 0, `page errors: ${pageErrors.join("; ").slice(0, 300)}`);
  });

  await step("every operation of the spec is listed", async () => {
    const shown = await page
      .locator(".opblock")
      .evaluateAll((els) =>
        els.map((el) => {
          const method = el.querySelector(".opblock-summary-method")?.textContent?.trim().toLowerCase();
          const path = el.querySelector(".opblock-summary-path")?.getAttribute("data-path");
          return `${method} ${path}`;
        }),
      );
    const want = [];
    for (const [path, item] of Object.entries(spec.paths))
      for (const method of Object.keys(item))
        if (["get", "put", "post", "delete", "patch", "options", "head", "trace"].includes(method)) want.push(`${method} ${path}`);
    const missing = want.filter((w) => !shown.includes(w));
    expect(missing.length === 0, `missing: ${missing.join(", ")}`);
    return `${want.length} operations, ${shown.length} blocks (an operation with several tags is listed once per tag)`;
  });

  await step(`"Try it out" on POST ${VERIFY} with {"token":"x"} shows 401`, async () => {
    const block = page
      .locator(".opblock.opblock-post")
      .filter({ has: page.locator(`.opblock-summary-path[data-path="${VERIFY}"]`) })
      .first();
    await block.locator(".opblock-summary").first().click();
    await block.locator("button.try-out__btn").click();
    const select = block.locator(".opblock-section-request-body select").first();
    if (await select.count()) await select.selectOption("application/json");
    const body = block.locator("textarea.body-param__text");
    await body.fill('{"token":"x"}');
    await block.locator("button.execute").click();
    const status = block.locator(".live-responses-table .response .response-col_status").first();
    await status.waitFor();
    const code = (await status.innerText()).trim();
    const text = (await block.locator(".live-responses-table").first().innerText()).replace(/\s+/g, " ");
    expect(code.startsWith("401"), `response panel shows status ${JSON.stringify(code)}`);
    expect(text.includes("token_not_valid"), `response body: ${text.slice(0, 200)}`);
    await block.scrollIntoViewIfNeeded();
    await block.locator(".live-responses-table").first().scrollIntoViewIfNeeded();
    return `status ${code.split(/\s/)[0]}, body has "token_not_valid"`;
  });

  if (screenshot) {
    await step(`screenshot ${screenshot}`, async () => {
      const live = page.locator(".opblock.is-open .live-responses-table").first();
      const box = (await live.count()) ? await live.boundingBox() : null;
      if (box) {
        // The top of the page (title, endpoint list) down to the executed request's live response.
        const y = await page.evaluate(() => window.scrollY);
        await page.screenshot({ path: screenshot, fullPage: true, clip: { x: 0, y: 0, width: 1280, height: Math.min(y + box.y + box.height + 16, 6000) } });
      } else {
        await page.screenshot({ path: screenshot, fullPage: true });
      }
    });
  }
} finally {
  await context.close().catch(() => {});
  rmSync(userDataDir, { recursive: true, force: true });
}

console.log(`browser: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
