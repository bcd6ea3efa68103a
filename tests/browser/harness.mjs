// Starts a real `tiaki serve` on a free loopback port with a fresh data folder, and drives
// Debian's Chromium with playwright-core. Every page visited is scanned with axe-core (serious and
// critical violations fail the test; moderate and minor ones are not checked), and any
// Content-Security-Policy violation or script error fails the test.
//
// Each scan is recorded with the route-table pattern its address matches, the method that
// loaded it and the status it was answered with, so a suite can fail when a GET page route of
// `crates/web/src/routes.rs` was never scanned (`assertEveryPageScanned`). The secrets a suite
// meets (link tokens, cookies, passwords, codes) are kept, so that it can fail when any of them
// is in the portal's log (`assertNoSecretLogged`).
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
export const BIN = process.env.TIAKI_BIN || new URL('../../target/debug/tiaki', import.meta.url).pathname;
const ROUTES_RS = new URL('../../crates/web/src/routes.rs', import.meta.url);

// The route table decides what a page is: the `get "<path>" Page => …` lines of routes.rs.
function readPageRoutes() {
  const text = readFileSync(ROUTES_RS, 'utf8');
  const routes = [...text.matchAll(/^\s*get\s+"([^"]+)"\s+Page\s*=>/gm)].map((m) => m[1]);
  const all = [...text.matchAll(/^\s*(get|post)\s+"([^"]+)"\s+(\w+)\s*=>/gm)];
  assert.ok(routes.length >= 10 && all.length > routes.length,
    `routes.rs should list its routes as \`get "/path" Page => handler\` (found ${routes.length} GET page routes of ${all.length}); has the table's format changed?`);
  return routes;
}

/** The GET routes of kind `Page` in the route table, as axum patterns (`/patients/{patient_id}`). */
export const PAGE_ROUTES = readPageRoutes();

const MATCHERS = matchers(PAGE_ROUTES);

// Any route of the table (GET or POST, any kind), for naming what was scanned after a form post.
const ANY_MATCHERS = matchers([...readFileSync(ROUTES_RS, 'utf8').matchAll(/^\s*(?:get|post)\s+"([^"]+)"\s+\w+\s*=>/gm)].map((m) => m[1]));

function matchers(routes) {
  return [...new Set(routes)].map((route) => ({
    route,
    params: (route.match(/\{/g) || []).length,
    re: new RegExp(`^${route.split(/\{[^}]+\}/).map((s) => s.replace(/[.*+?^$()|[\]\\]/g, '\\$&')).join('[^/]+')}$`),
  }));
}

function match(list, pathname) {
  const hits = list.filter((m) => m.re.test(pathname)).sort((a, b) => a.params - b.params);
  return hits.length ? hits[0].route : null;
}

/** The GET page route an address's path matches (static segments win, as in axum), or null. */
export function routeOf(pathname) {
  return match(MATCHERS, pathname);
}

async function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.listen(0, '127.0.0.1', () => { const { port } = s.address(); s.close(() => resolve(port)); });
    s.on('error', reject);
  });
}

// `host`: the name the browser uses (passkeys need a name such as `localhost`, not an address).
export async function startPortal(extraEnv = {}, host = '127.0.0.1') {
  const dataDir = mkdtempSync(join(tmpdir(), 'tiaki-browser-'));
  const port = await freePort();
  const base = `http://${host}:${port}`;
  const env = {
    ...process.env, TIAKI_DATA_DIR: dataDir, TIAKI_LISTEN: `127.0.0.1:${port}`, TIAKI_LOG_FORMAT: 'json',
    ...(host === '127.0.0.1' ? {} : { TIAKI_PUBLIC_URL: base }), ...extraEnv,
  };
  delete env.TIAKI_SMTP_URL;
  delete env.TIAKI_LOG;
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d.toString(); });
  const deadline = Date.now() + 30000;
  while (!/listening on/.test(stderr)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tiaki serve did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  // The first start prints where to go and a one-time code (never a link carrying it).
  const firstAddress = (stderr.match(/open (http:\/\/\S+\/activate) and type this one-time code/) || [])[1];
  const firstCode = (stderr.match(CODE) || [])[1];
  if (firstCode) keepCode(firstCode, 'the first-start code');
  return {
    base, dataDir, firstAddress, firstCode, stderr: () => stderr,
    async stop() {
      child.kill('SIGTERM');
      await new Promise((r) => child.exitCode !== null ? r() : child.on('exit', r));
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

function unquote(text) {
  const joined = text.replace(/=\r?\n/g, '');
  const bytes = [];
  for (let i = 0; i < joined.length; i++) {
    const m = joined.slice(i + 1, i + 3);
    if (joined[i] === '=' && /^[0-9A-F]{2}$/.test(m)) { bytes.push(parseInt(m, 16)); i += 2; } else { bytes.push(...Buffer.from(joined[i])); }
  }
  return Buffer.from(bytes).toString('utf8');
}

function mails(portal) {
  const dir = join(portal.dataDir, 'mail');
  let files = [];
  // In the order they were written (the names are random).
  try {
    files = readdirSync(dir).filter((f) => f.endsWith('.eml'))
      .map((f) => [f, statSync(join(dir, f)).mtimeMs]).sort((a, b) => a[1] - b[1] || a[0].localeCompare(b[0])).map(([f]) => f);
  } catch { /* none yet */ }
  return files.map((f) => ({ file: f, text: unquote(readFileSync(join(dir, f), 'utf8')) }));
}

// A one-time code, on a line of its own (in an email, or where serve prints the first one).
const CODE = /^[ \t]*([0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4}-[0-9A-Z]{4})[ \t]*\r?$/m;
const CODES = new RegExp(CODE.source, 'gm');

// Waits for the portal to write an email to `to` (no SMTP configured: .eml files in the data
// folder) with the subject `subject` that carries a one-time code, and returns the code. Mails
// in `seen` are skipped; the one returned is added to it. Every email is also checked to carry
// no link at all.
export async function codeFromMail(portal, to, seen = new Set(), subject = null) {
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    for (const { file, text } of mails(portal)) {
      if (seen.has(file) || !new RegExp(`^To: ${to.replace(/[.+]/g, '\\$&')}\\r?$`, 'mi').test(text)) continue;
      if (subject && !new RegExp(`^Subject: ${subject.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}\\r?$`, 'mi').test(text)) continue;
      const code = (text.match(CODE) || [])[1];
      if (!code) continue;
      assertNoLink(text, file);
      seen.add(file);
      keepCode(code, `the code mailed to ${to}`);
      return code;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no email to ${to}${subject ? ` ("${subject}")` : ''} with a code arrived`);
}

/** Fails when an email's body holds anything like a link. */
export function assertNoLink(text, what) {
  const body = text.split(/\r?\n\r?\n/).slice(1).join('\n');
  assert.ok(!/:\/\/|www\.|href|mailto:|token=|\/activate|\/reset-password|\/account\/|\b[a-z0-9-]+\.(nz|com|org|net|health|test|io)\/?(\s|$)/i.test(body.replace(/\S+@\S+/g, '')), `${what} carries a link:\n${body}`);
}

/** Types a code into the page's code form and sends it. */
export async function typeCode(page, code) {
  await page.getByLabel('The code from the email').fill(code);
  return submitForm(page, page.locator('form:has(#code) button[type=submit]'));
}

async function submitForm(page, button) {
  const [response] = await Promise.all([page.waitForNavigation(), button.click()]);
  return response;
}

/** From the sign-in page, as a new user does: "I have a code from a Tiaki email", then the code. */
export async function enterCodeAtSignIn(page, portal, code) {
  await page.goto(`${portal.base}/signin`);
  await page.getByRole('link', { name: 'I have a code from a Tiaki email' }).click();
  await page.waitForURL('**/activate');
  return typeCode(page, code);
}

/** The code mailed to `to` (an activation, invitation or password code), typed at the sign-in page. */
export async function codeFromMailAtSignIn(page, portal, to, seen, subject = null) {
  return enterCodeAtSignIn(page, portal, await codeFromMail(portal, to, seen, subject));
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// Makes a page fail the test on any CSP violation or page error, and remembers how its current
// document was loaded (method, address and status of the last main-frame navigation response).
export function watch(page) {
  const problems = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.on('response', (r) => {
    const req = r.request();
    if (req.isNavigationRequest() && req.frame() === page.mainFrame()) {
      page.lastNavigation = { method: req.method(), url: r.url(), status: r.status() };
    }
  });
  page.problems = problems;
  return page;
}

// A browser context whose pages fail the test on any CSP violation or page error.
export async function person(browser, options = {}) {
  const context = await browser.newContext(options);
  const page = watch(await context.newPage());
  return { context, page };
}

// --- What was scanned --------------------------------------------------------------------

/**
 * Every scan: `{ label, method, path, route, pattern, status }`. `route` is the GET page route the
 * path matches, or null; `pattern` the route of any method the path matches (or the path).
 */
export const scans = [];

const withoutHash = (u) => u.replace(/#.*$/, '');

// --- Phones ---------------------------------------------------------------------------------

/** The width every page is checked at, besides the one it is shown at: a common phone. */
export const PHONE_WIDTH = 375;

/**
 * Fails when the page, laid out `width` px wide, scrolls sideways: the document is wider than the
 * window, or some element (a table, a code block) scrolls sideways inside itself. The message
 * names the elements that stick out furthest (tag, id, classes, data-label, start of text) and how
 * far, so it says what to make wrap or reflow in crates/web/static/tiaki.css. The viewport is put
 * back as it was, even when the check fails.
 */
export async function assertFitsWidth(page, label, width = PHONE_WIDTH) {
  const before = page.viewportSize();
  assert.ok(before, `${label}: the page has a fixed viewport (a context made with \`viewport: null\` cannot be resized to check phones)`);
  const resize = before.width !== width;
  if (resize) await page.setViewportSize({ width, height: 800 });
  let found;
  try {
    found = await page.evaluate(() => {
      const view = window.innerWidth;
      const describe = (el) => {
        let d = el.tagName.toLowerCase();
        if (el.id) d += `#${el.id}`;
        if (typeof el.className === 'string' && el.className.trim()) d += `.${el.className.trim().split(/\s+/).join('.')}`;
        if (el.dataset && el.dataset.label) d += `[data-label="${el.dataset.label}"]`;
        const text = (el.textContent || '').replace(/\s+/g, ' ').trim();
        return text ? `${d} "${text.length > 40 ? `${text.slice(0, 40)}…` : text}"` : d;
      };
      const FORM = new Set(['INPUT', 'TEXTAREA', 'SELECT']);
      const all = [...document.body.querySelectorAll('*')];
      // How far right each element, or content overflowing it, reaches (in page coordinates).
      const reach = new Map();
      const scrollers = [];
      for (const el of all) {
        const style = getComputedStyle(el);
        if (style.display === 'none') continue;
        const r = el.getBoundingClientRect();
        if (r.width === 0 && r.height === 0) continue;
        const clips = style.overflowX !== 'visible';
        if (clips && !FORM.has(el.tagName) && el.scrollWidth > el.clientWidth + 1
          && (style.overflowX === 'auto' || style.overflowX === 'scroll')) {
          scrollers.push(`${describe(el)} (${el.scrollWidth}px of content in ${el.clientWidth}px)`);
        }
        const right = Math.max(r.right, clips || FORM.has(el.tagName) ? r.right : r.left + el.scrollWidth) + window.scrollX;
        if (right > view + 1) reach.set(el, Math.round(right));
      }
      // Only what is not clipped by an ancestor that itself fits (an absolutely positioned
      // element is clipped only from its containing block up), and the innermost culprits: an
      // element sticking out because a child does is not named. Of those reaching equally far
      // (the items of one grid column), the one with the longest unbreakable word first.
      const clipped = (el) => {
        let position = getComputedStyle(el).position;
        for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
          const style = getComputedStyle(a);
          const containing = position === 'fixed' ? style.transform !== 'none' : position !== 'absolute' || style.position !== 'static';
          if (!containing) continue;
          if (style.overflowX !== 'visible' && !reach.has(a)) return true;
          position = style.position;
        }
        return false;
      };
      const longestWord = (el) => Math.max(0, ...(el.textContent || '').split(/\s+/).map((w) => w.length));
      const culprits = [...reach].filter(([el]) => !clipped(el) && ![...el.children].some((c) => reach.has(c)))
        .sort((a, b) => b[1] - a[1] || longestWord(b[0]) - longestWord(a[0])).slice(0, 3)
        .map(([el, right]) => `${describe(el)} reaches ${right}px`);
      return { view, scrollWidth: document.documentElement.scrollWidth, culprits, scrollers: scrollers.slice(0, 3) };
    });
  } finally {
    if (resize) await page.setViewportSize(before);
  }
  const problems = [];
  if (found.scrollWidth > found.view) {
    problems.push(`the page is ${found.scrollWidth}px wide in a ${found.view}px window, so it scrolls sideways; sticking out: ${found.culprits.join('; ') || '(no single element found)'}`);
  }
  if (found.scrollers.length) problems.push(`these scroll sideways inside the page: ${found.scrollers.join('; ')}`);
  assert.deepEqual(problems, [], `${label} at ${width}px wide: ${problems.join('. ')}. Let long text wrap (overflow-wrap: anywhere) or reflow it below 40rem in crates/web/static/tiaki.css; tables get class="cards" and a data-label on each <td>.`);
}

// Runs axe-core in the page (through the DevTools protocol, which the page's CSP does not
// govern) and fails on any serious or critical violation; checks that the page fits a phone
// (`assertFitsWidth` at 375 px, and at the page's own width when that is narrower); records the
// scan.
export async function checkPage(page, label) {
  assert.deepEqual(page.problems, [], `no CSP violations or script errors on ${label}`);
  await page.evaluate(AXE_SOURCE);
  const result = await page.evaluate(async () => {
    // eslint-disable-next-line no-undef
    const r = await axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } });
    return r.violations.map((v) => ({ id: v.id, impact: v.impact, nodes: v.nodes.map((n) => n.target.join(' ')).slice(0, 3) }));
  });
  const bad = result.filter((v) => v.impact === 'serious' || v.impact === 'critical');
  assert.deepEqual(bad, [], `accessibility violations on ${label}: ${JSON.stringify(bad)}`);
  await assertFitsWidth(page, label, PHONE_WIDTH);
  const own = page.viewportSize();
  if (own && own.width < PHONE_WIDTH) await assertFitsWidth(page, label, own.width);
  const url = page.url();
  const nav = page.lastNavigation && withoutHash(page.lastNavigation.url) === withoutHash(url) ? page.lastNavigation : null;
  const { pathname } = new URL(url);
  scans.push({
    label, method: nav ? nav.method : '?', path: pathname, route: routeOf(pathname),
    pattern: match(ANY_MATCHERS, pathname) ?? pathname, status: nav ? nav.status : 0,
  });
  await keepCookies(page.context());
}

/**
 * Fails unless every GET page route of the route table was scanned at least once as the page it
 * serves (loaded with GET and answered 2xx: scanning where a redirect lands, or an error page,
 * does not count), except the routes in `exempt` (route → the reason it is no page a person
 * views); unless each status in `statuses` was scanned at least once; and when an exemption is
 * stale (not a GET page route) or unneeded (the route was scanned after all).
 */
export function assertEveryPageScanned(exempt, statuses = []) {
  for (const [route, why] of Object.entries(exempt)) {
    assert.ok(PAGE_ROUTES.includes(route), `the exempted ${route} is not a GET page route in routes.rs`);
    assert.ok(typeof why === 'string' && why.trim().length > 0, `the exemption of ${route} gives a reason`);
  }
  const served = new Set(scans.filter((s) => s.method === 'GET' && s.status >= 200 && s.status < 300 && s.route).map((s) => s.route));
  const missing = PAGE_ROUTES.filter((r) => !served.has(r) && !(r in exempt));
  assert.deepEqual(missing, [], `GET page routes never scanned: ${missing.join(', ')}`);
  const unneeded = Object.keys(exempt).filter((r) => served.has(r));
  assert.deepEqual(unneeded, [], `exempted, but scanned after all (drop the exemption): ${unneeded.join(', ')}`);
  const seen = new Set(scans.map((s) => s.status));
  const absent = statuses.filter((s) => !seen.has(s));
  assert.deepEqual(absent, [], `no page answered with these statuses was scanned: ${absent.join(', ')}`);
}

/** One line per distinct method, route and status scanned, for the run's output. */
export function scanSummary() {
  const count = new Map();
  for (const s of scans) {
    const key = `${s.method} ${s.pattern} ${s.status}`;
    count.set(key, (count.get(key) || 0) + 1);
  }
  return [...count].sort().map(([k, n]) => `  ${k} ×${n}`).join('\n');
}

// --- Secrets and the log -------------------------------------------------------------------

const secrets = new Map();

/** Remembers a value that must never be in the portal's log (values shorter than 8 are ignored). */
export function keepSecret(value, what) {
  if (typeof value === 'string' && value.length >= 8 && !secrets.has(value)) secrets.set(value, what);
}

/** Remembers a one-time code, as printed and as it would be typed without its dashes. */
export function keepCode(code, what) {
  keepSecret(code, what);
  keepSecret(code.replace(/-/g, ''), `${what}, without its dashes`);
}

/** Remembers the values of a browser context's cookies (session, CSRF binding, device, challenge). */
export async function keepCookies(context) {
  for (const c of await context.cookies()) if (c.value.length >= 16) keepSecret(c.value, `the value of the cookie ${c.name}`);
}

/**
 * Fails when the portal's log (its stderr) holds any secret the suite met: the tokens of every
 * link in its mail and of the first-start link, every browser context's cookies, and whatever
 * was passed to `keepSecret`. The log must be there to be read: after the start-up lines, every
 * line is a JSON record, there are at least `minRecords` of them, and requests to each route in
 * `routesLogged` (the ones a token was sent to) were logged, by route pattern. The only place
 * the first-start link may appear is where serve prints it, before it starts listening.
 */
export async function assertNoSecretLogged(portal, browser, routesLogged = [], minRecords = 20) {
  if (portal.firstCode) keepCode(portal.firstCode, 'the first-start code');
  for (const context of browser.contexts()) await keepCookies(context);
  for (const { file, text } of mails(portal)) {
    assertNoLink(text, `the mail ${file}`);
    for (const m of text.matchAll(CODES)) keepCode(m[1], `a code in the mail ${file}`);
  }
  await new Promise((r) => setTimeout(r, 200));
  const log = portal.stderr();
  const lines = log.split('\n');
  const started = lines.findIndex((l) => /^Tiaki is listening on /.test(l));
  assert.ok(started >= 0, 'serve said it is listening');
  const banner = lines.slice(0, started + 1).join('\n');
  const after = lines.slice(started + 1);
  const complete = log.endsWith('\n') ? after : after.slice(0, -1);
  const records = complete.filter((l) => l.trim()).map((l) => {
    try { return JSON.parse(l); } catch { return assert.fail(`a log line is not JSON: ${l}`); }
  });
  assert.ok(records.length >= minRecords, `the log has ${records.length} JSON records (at least ${minRecords} expected)`);
  for (const r of records) assert.ok(r && typeof r === 'object' && r.timestamp && r.level && 'message' in r, `a log record has timestamp, level and message: ${JSON.stringify(r)}`);
  const routes = new Set(records.filter((r) => r.message === 'request' && r.span && r.span.route).map((r) => r.span.route));
  for (const route of routesLogged) assert.ok(routes.has(route), `a request to ${route} is in the log (by its route pattern)`);
  const body = after.join('\n');
  assert.ok(!/token=/.test(body), 'no log line holds a `token=` query');
  assert.ok(secrets.size > 0, 'the suite kept secrets to look for');
  const first = portal.firstCode || null;
  const found = [];
  for (const [value, what] of secrets) {
    if (body.includes(value)) found.push(`${what} (${value})`);
    if (value !== first && banner.includes(value)) found.push(`${what} (${value}), in the start-up lines`);
  }
  assert.deepEqual(found, [], 'no secret is in the log');
  if (first) assert.equal(banner.split(first).length - 1, 1, 'the first-start code is printed once, at start-up');
  return { records: records.length, secrets: secrets.size };
}
