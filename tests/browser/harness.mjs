// Starts a real `tiaki serve` on a free loopback port with a fresh data folder, and drives
// Debian's Chromium with playwright-core. Every page visited is scanned with axe-core and any
// Content-Security-Policy violation fails the test.
import { spawn } from 'node:child_process';
import { mkdtempSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createRequire } from 'node:module';
import assert from 'node:assert/strict';
import { chromium } from 'playwright-core';

const require = createRequire(import.meta.url);
const AXE_SOURCE = readFileSync(require.resolve('axe-core/axe.min.js'), 'utf8');
const BIN = process.env.TIAKI_BIN || new URL('../../target/debug/tiaki', import.meta.url).pathname;

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
  const child = spawn(BIN, ['serve'], { env, stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (d) => { stderr += d.toString(); });
  const deadline = Date.now() + 30000;
  while (!/listening on/.test(stderr)) {
    if (Date.now() > deadline || child.exitCode !== null) throw new Error(`tiaki serve did not start:\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
  const firstLink = (stderr.match(/(http:\/\/\S+\/activate\?token=[0-9a-f]{64})/) || [])[1];
  return {
    base, dataDir, firstLink, stderr: () => stderr,
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

// Waits for the portal to write an email to `to` (no SMTP configured: .eml files in the data
// folder) and returns the single-use link in it.
export async function linkFromMail(portal, to, seen = new Set()) {
  const dir = join(portal.dataDir, 'mail');
  const deadline = Date.now() + 15000;
  while (Date.now() < deadline) {
    let files = [];
    try { files = readdirSync(dir).filter((f) => f.endsWith('.eml')); } catch { /* not yet */ }
    for (const f of files) {
      if (seen.has(f)) continue;
      const text = unquote(readFileSync(join(dir, f), 'utf8'));
      if (text.includes(`To: ${to}`)) {
        seen.add(f);
        const link = (text.match(/(http:\/\/\S+\/activate\?token=[0-9a-f]{64})/) || [])[1];
        assert.ok(link, `the email to ${to} carries a link`);
        return link;
      }
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`no email to ${to} arrived`);
}

export async function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
}

// A browser context whose pages fail the test on any CSP violation or page error.
export async function person(browser, options = {}) {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const problems = [];
  page.on('console', (m) => { if (/Content Security Policy|Refused to/.test(m.text())) problems.push(m.text()); });
  page.on('pageerror', (e) => problems.push(String(e)));
  page.problems = problems;
  return { context, page };
}

export const scanned = [];

// Runs axe-core in the page (through the DevTools protocol, which the page's CSP does not
// govern) and fails on any serious or critical violation.
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
  scanned.push(label);
}
