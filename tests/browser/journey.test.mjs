// The newcomer's journey in a real browser: first operator → practice → admin → staff →
// patient activation from the email → sign in → sign out; and a second patient cannot open the
// first patient's pages. Then the password and email pages (forgotten password, the set-up link,
// changing the email), the error pages as real flows reach them (403, 404, 410, 429), and two
// checks over everything before: every page route of the route table was scanned with axe-core,
// and the portal's log holds none of the tokens, cookies or passwords the browsers used.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHash, createHmac } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  assertEveryPageScanned, assertNoSecretLogged, checkPage, keepSecret, launch, linkFromMail, person, scans, scanSummary,
  startPortal, watch,
} from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const AROHA_NEW_PASSWORD = 'kowhai blossom on a cold spring morning';
const HEMI_PASSWORD = 'tui singing above the harbour bridge';
const HEMI_NEW_PASSWORD = 'pohutukawa red along the summer coast';
for (const p of [PASSWORD, AROHA_NEW_PASSWORD, HEMI_PASSWORD, HEMI_NEW_PASSWORD]) keepSecret(p, 'a password');

// GET page routes of the route table that are no page a person views, each with the reason. The
// test at the end checks that each still behaves as its reason says; every other GET page route
// must have been scanned.
const NOT_PAGES = {
  '/': 'redirects only: to the home page of whoever is signed in, or to sign-in',
  '/home': 'redirects only: to the home page of whoever is signed in, or to sign-in',
  '/documents/{document_id}/download': 'serves a document\'s bytes as a download, not a page',
};
// The error pages the journey reaches through real flows; each must have been scanned.
const ERROR_STATUSES = [403, 404, 410, 429];

let portal;
let browser;
let listDir;
let breachedList;
const seen = new Set();
// What the first test leaves for the later ones.
const the = {};

// The breached-password list the portal checks (a file replaced while it runs is used at once).
const DUMMY_HASH = '0000000000000000000000000000000000000000';
function breachedPasswords(...passwords) {
  const lines = [DUMMY_HASH, ...passwords.map((p) => createHash('sha1').update(p).digest('hex').toUpperCase())].sort();
  writeFileSync(`${breachedList}.new`, lines.map((l) => `${l}:1\n`).join(''));
  renameSync(`${breachedList}.new`, breachedList);
}

before(async () => {
  listDir = mkdtempSync(join(tmpdir(), 'tiaki-breached-'));
  breachedList = join(listDir, 'breached.txt');
  breachedPasswords();
  portal = await startPortal({ TIAKI_BREACHED_PASSWORDS: breachedList });
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
  if (listDir) rmSync(listDir, { recursive: true, force: true });
  const routes = new Set(scans.filter((s) => s.route).map((s) => s.route));
  console.log(`pages scanned with axe-core: ${scans.length}, covering ${routes.size} page routes; by method, route and status:\n${scanSummary()}`);
});

async function setPassword(page, label, password = PASSWORD) {
  await checkPage(page, label);
  await page.getByLabel('New password').fill(password);
  await page.getByLabel('Type the password again').fill(password);
  await page.getByRole('button', { name: 'Set password and continue' }).click();
}

// Submits with a click and returns the response the page ends on (after any redirects).
async function submit(page, button) {
  const [response] = await Promise.all([page.waitForNavigation(), button.click()]);
  return response;
}

async function signIn(page, email, password) {
  await page.getByLabel('Email address').fill(email);
  await page.getByLabel('Password').fill(password);
  return submit(page, page.getByRole('button', { name: 'Sign in', exact: true }));
}

test('operator → practice → staff → patient activates, signs in and out; another patient is kept out', async () => {
  assert.ok(portal.firstLink, 'serve printed a first-start link');

  // The first operator sets up the installation from the printed link.
  const op = await person(browser);
  await op.page.goto(portal.firstLink);
  await op.page.getByLabel('Your name').fill('Olivia Operator');
  await op.page.getByLabel('Your email address').fill('olivia@tiaki.test');
  await setPassword(op.page, 'first-start set-up');
  // Operators and staff set up a second factor before they can do anything else.
  await op.page.waitForURL('**/account/security');
  await setUpAuthenticator(op.page, 'operator');
  await op.page.waitForURL('**/operator');
  await checkPage(op.page, 'operator: practices');

  // A mistake is explained next to the field, and nothing is created.
  await op.page.getByLabel('Practice name').fill('Harbour Health');
  await op.page.getByLabel('HPI facility id').fill('NOT-AN-ID');
  await op.page.getByRole('button', { name: 'Add practice' }).click();
  await assertVisible(op.page, 'There is a problem');
  await checkPage(op.page, 'operator: practice form with errors');
  await op.page.getByLabel('HPI facility id').fill('FHH123-A');
  await op.page.getByLabel('Region').selectOption('Northland');
  await op.page.getByLabel("Practice admin's name").fill('Mere Admin');
  await op.page.getByLabel("Practice admin's email").fill('mere@harbour.test');
  await op.page.getByRole('button', { name: 'Add practice' }).click();
  await assertVisible(op.page, 'The practice was added');

  // The practice admin accepts, and invites a nurse.
  const admin = await person(browser);
  await admin.page.goto(await linkFromMail(portal, 'mere@harbour.test', seen));
  await setPassword(admin.page, 'staff invitation');
  await admin.page.waitForURL('**/account/security');
  await setUpAuthenticator(admin.page, 'practice admin');
  await admin.page.waitForURL('**/practices/**');
  await checkPage(admin.page, 'practice: admin view');
  await admin.page.locator('#staff_name').fill('Nikau Nurse');
  await admin.page.locator('#staff_email').fill('nikau@harbour.test');
  await admin.page.locator('#role').selectOption('nurse');
  await admin.page.getByRole('button', { name: 'Send invitation' }).click();
  await assertVisible(admin.page, 'The invitation has been emailed');

  // The nurse joins and enrols two patients.
  const nurse = await person(browser);
  await nurse.page.goto(await linkFromMail(portal, 'nikau@harbour.test', seen));
  await setPassword(nurse.page, 'staff invitation (nurse)');
  await nurse.page.waitForURL('**/account/security');
  await setUpAuthenticator(nurse.page, 'nurse');
  await nurse.page.waitForURL('**/practices/**');
  await checkPage(nurse.page, 'practice: nurse view');
  const patients = [['ZZZ0016', 'Aroha Patient', 'aroha@patients.test'], ['ZBN77VL', 'Ben Other', 'ben@patients.test'], ['ZAA0067', 'Hemi Third', 'hemi@patients.test']];
  for (const [nhi, name, email] of patients) {
    await nurse.page.getByLabel('NHI number').fill(nhi);
    await nurse.page.locator('#name').fill(name);
    await nurse.page.getByLabel('Date of birth').fill('1985-04-03');
    await nurse.page.locator('#email').fill(email);
    await nurse.page.getByRole('button', { name: 'Enrol patient' }).click();
    await assertVisible(nurse.page, 'The patient is enrolled');
  }
  // An invalid NHI is refused with the reason, in the browser too.
  await nurse.page.getByLabel('NHI number').fill('ZZZ0044');
  await nurse.page.locator('#name').fill('Wrong Number');
  await nurse.page.getByLabel('Date of birth').fill('1985-04-03');
  await nurse.page.locator('#email').fill('wrong@patients.test');
  await nurse.page.getByRole('button', { name: 'Enrol patient' }).click();
  await assertVisible(nurse.page, 'check character does not match');
  await checkPage(nurse.page, 'practice: enrol form with errors');

  // The nurse opens Aroha's record from the patient list.
  await nurse.page.getByRole('link', { name: 'Aroha Patient' }).click();
  await assertVisible(nurse.page, 'Patient record, viewed as practice staff');
  await checkPage(nurse.page, 'patient record (staff view)');

  // The patient activates from the email, lands on their home page.
  const aroha = await person(browser);
  const arohaLink = await linkFromMail(portal, 'aroha@patients.test', seen);
  await aroha.page.goto(arohaLink);
  await assertVisible(aroha.page, 'Kia ora Aroha Patient');
  await setPassword(aroha.page, 'patient activation');
  await aroha.page.waitForURL('**/patients/**');
  await assertVisible(aroha.page, 'ZZZ0016');
  await checkPage(aroha.page, 'patient home');
  const arohaHome = aroha.page.url();

  // "Who has looked at my records" shows the nurse's read, with name, role and practice.
  await aroha.page.getByRole('link', { name: 'Who has looked at my records' }).click();
  await assertVisible(aroha.page, 'Who has looked at my records');
  const row = aroha.page.locator('tr', { hasText: 'Nikau Nurse' }).filter({ hasText: 'Viewed the patient record' }).first();
  await row.waitFor({ state: 'visible' });
  assert.match(await row.textContent(), /Nurse, Harbour Health/);
  await checkPage(aroha.page, 'access history');
  await aroha.page.getByLabel('Information').selectOption('documents');
  await aroha.page.getByRole('button', { name: 'Show' }).click();
  await assertVisible(aroha.page, 'Nothing was recorded');
  await aroha.page.goto(arohaHome);

  // Documents: the patient uploads a letter, opens it, and sees that read in their history.
  await aroha.page.getByRole('link', { name: 'Documents', exact: true }).click();
  await assertVisible(aroha.page, 'My documents');
  await checkPage(aroha.page, 'documents (empty)');
  // A web page dressed as a document is refused, with the reason.
  await aroha.page.getByLabel('File').setInputFiles({ name: 'letter.html', mimeType: 'text/html', buffer: Buffer.from('<html><script>alert(1)</script></html>') });
  await aroha.page.getByRole('button', { name: 'Upload' }).click();
  await assertVisible(aroha.page, 'Web pages and SVG images are not accepted');
  await checkPage(aroha.page, 'documents: upload refused');
  const letter = Buffer.from('%PDF-1.4\n% a letter from the specialist\n' + 'x'.repeat(5000) + '\n%%EOF\n');
  await aroha.page.locator('#title').fill('Letter from the specialist');
  await aroha.page.getByLabel('File').setInputFiles({ name: 'specialist.pdf', mimeType: 'application/pdf', buffer: letter });
  await aroha.page.getByRole('button', { name: 'Upload' }).click();
  await assertVisible(aroha.page, 'uploaded and stored securely');
  await checkPage(aroha.page, 'documents (one upload)');
  const downloading = aroha.page.waitForEvent('download');
  await aroha.page.getByRole('link', { name: 'Letter from the specialist' }).first().click();
  const download = await downloading;
  the.download = download.url();
  assert.equal(download.suggestedFilename(), 'specialist.pdf');
  const saved = await download.path();
  const { readFile } = await import('node:fs/promises');
  assert.ok((await readFile(saved)).equals(letter), 'the downloaded document is byte-for-byte what was uploaded');
  await aroha.page.getByRole('link', { name: 'who has looked at my records' }).first().click();
  await aroha.page.getByLabel('Information').selectOption('documents');
  await aroha.page.getByRole('button', { name: 'Show' }).click();
  const read = aroha.page.locator('tr', { hasText: 'Opened a document' }).first();
  await read.waitFor({ state: 'visible' });
  assert.match(await read.textContent(), /You/);
  await checkPage(aroha.page, 'access history: documents');
  await aroha.page.goto(arohaHome);

  // Sessions page, then sign out, then sign in again, then out.
  await aroha.page.getByRole('link', { name: 'Your sessions' }).click();
  await assertVisible(aroha.page, '(this device)');
  await checkPage(aroha.page, 'sessions');
  await aroha.page.getByRole('button', { name: /Sign out/ }).click();
  await assertVisible(aroha.page, 'You have signed out');
  await checkPage(aroha.page, 'signed out');
  await aroha.page.goto(arohaHome);
  await aroha.page.waitForURL('**/signin');
  await checkPage(aroha.page, 'sign in');
  await aroha.page.getByLabel('Email address').fill('aroha@patients.test');
  await aroha.page.getByLabel('Password').fill('wrong password entirely');
  await aroha.page.getByRole('button', { name: 'Sign in' }).click();
  await assertVisible(aroha.page, 'The email or password is not right');
  await checkPage(aroha.page, 'sign in failed');
  await aroha.page.getByLabel('Password').fill(PASSWORD);
  await aroha.page.getByRole('button', { name: 'Sign in' }).click();
  await aroha.page.waitForURL(arohaHome);
  await aroha.page.getByRole('button', { name: /Sign out/ }).click();
  await assertVisible(aroha.page, 'You have signed out');

  // A second patient, signed in, cannot open the first patient's page.
  const ben = await person(browser);
  await ben.page.goto(await linkFromMail(portal, 'ben@patients.test', seen));
  await setPassword(ben.page, 'patient activation (second patient)');
  await ben.page.waitForURL('**/patients/**');
  const response = await ben.page.goto(arohaHome);
  assert.equal(response.status(), 404);
  const text = await ben.page.textContent('body');
  assert.ok(!text.includes('ZZZ0016') && !text.includes('Aroha'), 'nothing of the first patient is shown');
  await checkPage(ben.page, 'not found');
  const api = await ben.page.goto(arohaHome.replace('/patients/', '/api/v1/patients/'));
  assert.equal(api.status(), 404);

  // Ben turns on an authenticator app; from then on his password alone opens nothing.
  await ben.page.goto(`${portal.base}/account/security`);
  await checkPage(ben.page, 'sign-in security (off)');
  const { secret, codes } = await setUpAuthenticator(ben.page, 'patient');
  for (const [label, code] of [['authenticator code', totp(secret, 30)], ['recovery code', codes[0]]]) {
    await ben.page.getByRole('button', { name: /Sign out/ }).click();
    await ben.page.goto(`${portal.base}/signin`);
    await ben.page.getByLabel('Email address').fill('ben@patients.test');
    await ben.page.getByLabel('Password').fill(PASSWORD);
    await ben.page.getByRole('button', { name: 'Sign in' }).click();
    await ben.page.waitForURL('**/signin/verify');
    await checkPage(ben.page, `sign in: code (${label})`);
    await ben.page.getByLabel('Code').fill(code);
    await ben.page.getByRole('button', { name: 'Sign in' }).click();
    await ben.page.waitForURL('**/patients/**');
  }
  Object.assign(the, { op, admin, nurse, aroha, arohaLink, arohaHome, ben, benHome: ben.page.url() });
});

test('forgotten password, the emailed set-up link, and a change of email address', async () => {
  const { aroha, arohaHome } = the;
  assert.ok(aroha, 'the first journey got this far');

  // Aroha has forgotten her password: the link on the sign-in page mails her one.
  await aroha.page.goto(`${portal.base}/signin`);
  await aroha.page.getByRole('link', { name: 'Forgot your password?' }).click();
  await aroha.page.waitForURL('**/signin/forgot');
  await checkPage(aroha.page, 'forgot password');
  await aroha.page.getByLabel('Email address').fill('aroha@patients.test');
  await aroha.page.getByRole('button', { name: 'Email me a link' }).click();
  await assertVisible(aroha.page, 'we have emailed it a link');
  await checkPage(aroha.page, 'forgot password: sent');
  const reset = await linkFromMail(portal, 'aroha@patients.test', seen, '/reset-password');
  await aroha.page.goto(reset);
  await assertVisible(aroha.page, 'Choose a new password for');
  await checkPage(aroha.page, 'reset password');
  await aroha.page.getByLabel('New password').fill(AROHA_NEW_PASSWORD);
  await aroha.page.getByLabel('Type the password again').fill(`${AROHA_NEW_PASSWORD}!`);
  await aroha.page.getByRole('button', { name: 'Set the new password' }).click();
  await assertVisible(aroha.page, 'There is a problem');
  await checkPage(aroha.page, 'reset password: errors');
  await aroha.page.getByLabel('New password').fill(AROHA_NEW_PASSWORD);
  await aroha.page.getByLabel('Type the password again').fill(AROHA_NEW_PASSWORD);
  await aroha.page.getByRole('button', { name: 'Set the new password' }).click();
  await assertVisible(aroha.page, 'Your password is changed');
  await checkPage(aroha.page, 'password changed');
  // The link works once.
  const used = await aroha.page.goto(reset);
  assert.equal(used.status(), 410);
  await assertVisible(aroha.page, 'This link has expired or was already used');
  await checkPage(aroha.page, 'reset link used (410)');
  await aroha.page.goto(`${portal.base}/signin`);
  await signIn(aroha.page, 'aroha@patients.test', AROHA_NEW_PASSWORD);
  await aroha.page.waitForURL(arohaHome);

  // Signed in with a password alone, she is emailed a link before she can add a second factor.
  await aroha.page.goto(`${portal.base}/account/security`);
  await aroha.page.getByRole('button', { name: 'Email me a set-up link' }).click();
  await assertVisible(aroha.page, 'We have emailed you a link');
  await checkPage(aroha.page, 'sign-in security: set-up link sent');
  const setupLink = await linkFromMail(portal, 'aroha@patients.test', seen, '/account/security/link');
  await aroha.page.goto(setupLink);
  await assertVisible(aroha.page, 'You can now set up your authenticator app');
  await checkPage(aroha.page, 'set-up link opened');
  const { secret } = await setUpAuthenticator(aroha.page, 'patient, after the set-up link');
  // A used link is refused, with the way to a new one.
  await aroha.page.goto(setupLink);
  await assertVisible(aroha.page, 'That link has expired, was already used');
  await checkPage(aroha.page, 'set-up link used');

  // With a second factor she may move her email address: confirm it's you, then the link.
  await aroha.page.goto(`${portal.base}/account/security`);
  if (await aroha.page.locator('#confirm_code').count()) {
    await aroha.page.locator('#confirm_code').fill(totp(secret, 30));
    await aroha.page.getByRole('button', { name: 'Confirm with a code' }).click();
  }
  await aroha.page.locator('#new_email').fill('aroha.kainga@patients.test');
  await aroha.page.locator('#email_current').fill(AROHA_NEW_PASSWORD);
  await aroha.page.getByRole('button', { name: 'Change my email address' }).click();
  await assertVisible(aroha.page, 'We have emailed a link to the new address');
  await checkPage(aroha.page, 'sign-in security: email change asked');
  const confirm = await linkFromMail(portal, 'aroha.kainga@patients.test', seen, '/account/email/confirm');
  await aroha.page.goto(confirm);
  await assertVisible(aroha.page, 'Make the address this link was sent to');
  await checkPage(aroha.page, 'confirm new email address');
  await aroha.page.getByRole('button', { name: 'Use this email address' }).click();
  await assertVisible(aroha.page, 'Your email address is now aroha.kainga@patients.test');
  await checkPage(aroha.page, 'email address changed');
  // The link works once.
  await aroha.page.goto(confirm);
  const again = await submit(aroha.page, aroha.page.getByRole('button', { name: 'Use this email address' }));
  assert.equal(again.status(), 410);
  await assertVisible(aroha.page, 'This link has expired, was already used');
  await checkPage(aroha.page, 'email link used (410)');
  the.arohaTotp = secret;
});

test('error pages as real flows reach them: used link (410), too many attempts (429), expired form and breached password (403)', async () => {
  const { aroha, arohaLink, ben } = the;
  assert.ok(aroha && ben, 'the first journey got this far');

  // An activation link opened again.
  const used = await aroha.page.goto(arohaLink);
  assert.equal(used.status(), 410);
  await assertVisible(aroha.page, 'already been used');
  await checkPage(aroha.page, 'activation link used (410)');

  // Someone tries password after password from a browser the account does not know: after a few
  // the attempts are held back (the back-off doubles, so this ends within a few tries).
  const stranger = await person(browser);
  await stranger.page.goto(`${portal.base}/signin`);
  let status = 0;
  for (let i = 0; i < 12 && status !== 429; i++) {
    status = (await signIn(stranger.page, 'nobody@patients.test', `not the password ${i}`)).status();
    assert.ok(status === 401 || status === 429, `a wrong password is answered 401, then 429 (got ${status})`);
  }
  assert.equal(status, 429, 'wrong passwords in a row are held back');
  await assertVisible(stranger.page, 'Too many sign-in attempts');
  await checkPage(stranger.page, 'sign in: too many attempts (429)');

  // Ben signs out in one tab; a form still open in another is refused.
  const tab = watch(await ben.context.newPage());
  await tab.goto(`${portal.base}/home`);
  await tab.waitForURL('**/patients/**');
  await ben.page.getByRole('button', { name: /Sign out/ }).click();
  await assertVisible(ben.page, 'You have signed out');
  const expired = await submit(tab, tab.getByRole('button', { name: /Sign out/ }));
  assert.equal(expired.status(), 403);
  await assertVisible(tab, 'This form has expired');
  await checkPage(tab, 'form from a session that has ended (403)');

  // Hemi activates; his password then turns up in a breach. It opens nothing, and a link to
  // choose a new one is mailed to him.
  const hemi = await person(browser);
  await hemi.page.goto(await linkFromMail(portal, 'hemi@patients.test', seen));
  await setPassword(hemi.page, 'patient activation (third patient)', HEMI_PASSWORD);
  await hemi.page.waitForURL('**/patients/**');
  const hemiHome = hemi.page.url();
  await hemi.page.getByRole('button', { name: /Sign out/ }).click();
  await assertVisible(hemi.page, 'You have signed out');
  breachedPasswords(HEMI_PASSWORD);
  await hemi.page.goto(`${portal.base}/signin`);
  const refused = await signIn(hemi.page, 'hemi@patients.test', HEMI_PASSWORD);
  assert.equal(refused.status(), 403);
  await assertVisible(hemi.page, 'appeared in a data breach');
  assert.equal(new URL(hemi.page.url()).pathname, '/signin', 'no session: still on sign-in');
  await checkPage(hemi.page, 'sign in: breached password (403)');
  await hemi.page.goto(await linkFromMail(portal, 'hemi@patients.test', seen, '/reset-password'));
  await hemi.page.getByLabel('New password').fill(HEMI_NEW_PASSWORD);
  await hemi.page.getByLabel('Type the password again').fill(HEMI_NEW_PASSWORD);
  await hemi.page.getByRole('button', { name: 'Set the new password' }).click();
  await assertVisible(hemi.page, 'Your password is changed');
  await hemi.page.goto(`${portal.base}/signin`);
  await signIn(hemi.page, 'hemi@patients.test', HEMI_NEW_PASSWORD);
  await hemi.page.waitForURL(hemiHome);
});

// Sets up an authenticator app from the sign-in security page; returns its key and codes.
async function setUpAuthenticator(page, who) {
  await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
  await assertVisible(page, 'Scan this QR code');
  await checkPage(page, `authenticator set-up (QR code, ${who})`);
  const secret = (await page.locator('#totp-secret').textContent()).replace(/\s+/g, '');
  await page.getByLabel('Code from the app').fill(totp(secret, 0));
  await page.getByRole('button', { name: 'Turn on' }).click();
  await assertVisible(page, 'Save these now');
  await checkPage(page, `recovery codes (${who})`);
  const codes = await page.locator('ul.codes code').allTextContents();
  assert.equal(codes.length, 10);
  keepSecret(secret, `the authenticator key (${who})`);
  for (const c of codes) keepSecret(c, `a recovery code (${who})`);
  await page.getByRole('link', { name: 'I have saved them' }).click();
  return { secret, codes };
}

// RFC 6238 TOTP (SHA-1, 30 s, 6 digits) for a base32 secret, `offset` seconds from now.
function totp(base32, offset) {
  const alphabet = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';
  let bits = '';
  for (const ch of base32.replace(/=+$/, '')) bits += alphabet.indexOf(ch).toString(2).padStart(5, '0');
  const key = Buffer.from(bits.match(/.{8}/g).map((b) => parseInt(b, 2)));
  const counter = Buffer.alloc(8);
  counter.writeBigUInt64BE(BigInt(Math.floor((Date.now() / 1000 + offset) / 30)));
  const mac = createHmac('sha1', key).update(counter).digest();
  const o = mac[mac.length - 1] & 0xf;
  const n = ((mac[o] & 0x7f) << 24) | (mac[o + 1] << 16) | (mac[o + 2] << 8) | mac[o + 3];
  return String(n % 1_000_000).padStart(6, '0');
}

test('pages work at 320 px wide without sideways scrolling', async () => {
  const phone = await person(browser, { viewport: { width: 320, height: 640 } });
  await phone.page.goto(`${portal.base}/signin`);
  const width = await phone.page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 320, `sign-in page is ${width}px wide`);
  await checkPage(phone.page, 'sign in at 320px');
  const button = phone.page.getByRole('button', { name: 'Sign in' });
  const box = await button.boundingBox();
  assert.ok(box && box.height >= 44, 'the button is a comfortable touch target');
});

test('inline script is blocked by the content security policy', async () => {
  const p = await person(browser);
  await p.page.goto(`${portal.base}/signin`);
  const ran = await p.page.evaluate(() => new Promise((resolve) => {
    const s = document.createElement('script');
    s.textContent = 'window.__inline = true';
    document.body.appendChild(s);
    setTimeout(() => resolve(window.__inline === true), 100);
  }));
  assert.equal(ran, false, 'an injected inline script does not run');
});

test('every page route of the route table was scanned; the routes exempted still are no pages', async () => {
  // The exemptions hold: `/` and `/home` only redirect (signed in or not), and a download is a
  // file, not a page.
  const anonymous = await browser.newContext();
  for (const context of [anonymous, the.aroha?.context].filter(Boolean)) {
    for (const path of ['/', '/home']) {
      const r = await context.request.get(`${portal.base}${path}`, { maxRedirects: 0 });
      assert.ok([302, 303, 307].includes(r.status()), `${path} redirects (got ${r.status()})`);
      assert.ok(r.headers().location, `${path} says where to`);
    }
  }
  await anonymous.close();
  assert.ok(the.download, 'the journey downloaded a document');
  const file = await the.aroha.context.request.get(the.download, { maxRedirects: 0 });
  assert.equal(file.status(), 200);
  assert.match(file.headers()['content-disposition'] || '', /^attachment/);
  assert.doesNotMatch(file.headers()['content-type'] || '', /html/);

  assertEveryPageScanned(NOT_PAGES, ERROR_STATUSES);
});

test('the portal logged none of the tokens, cookies, passwords or codes the browsers used', async () => {
  const { records, secrets } = await assertNoSecretLogged(portal, browser, ['/activate', '/reset-password', '/account/security/link', '/account/email/confirm'], 100);
  console.log(`log checked: ${records} JSON records, none holding any of ${secrets} secrets`);
});

async function assertVisible(page, text) {
  await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout: 10000 });
}
