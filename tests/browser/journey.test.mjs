// The newcomer's journey in a real browser: first operator → practice → admin → staff →
// patient activation with the emailed code → sign in → sign out; and a second patient cannot open the
// first patient's pages. Then the password and email pages (forgotten password, the set-up code,
// changing the email), the error pages as real flows reach them (403, 404, 422, 429), and two
// checks over everything before: every page route of the route table was scanned with axe-core,
// and the portal's log holds none of the tokens, cookies or passwords the browsers used.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createHash, createHmac, randomUUID } from 'node:crypto';
import { mkdtempSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  BIN, assertEveryPageScanned, assertFitsWidth, assertNoSecretLogged, checkPage, codeFromMail, codeFromMailAtSignIn, enterCodeAtSignIn, keepSecret, launch, person, scans, typeCode,
  scanSummary, startPortal, watch,
} from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
const AROHA_NEW_PASSWORD = 'kowhai blossom on a cold spring morning';
const HEMI_PASSWORD = 'tui singing above the harbour bridge';
const HEMI_NEW_PASSWORD = 'pohutukawa red along the summer coast';
// Patients enrolled later, for the phone and time checks (each their own, so they stand alone).
const TAMA_PASSWORD = 'kereru gliding over the wet bush valley';
const WIREMU_PASSWORD = 'kumara roasting slowly in the hangi pit';
const KIRI_PASSWORD = 'harakeke swaying by the quiet estuary';
for (const p of [PASSWORD, AROHA_NEW_PASSWORD, HEMI_PASSWORD, HEMI_NEW_PASSWORD, TAMA_PASSWORD, WIREMU_PASSWORD, KIRI_PASSWORD]) keepSecret(p, 'a password');
// Aroha's date of birth as entered at enrolment, and as a New Zealander writes it.
const AROHA_DOB = '1985-04-03';
const AROHA_DOB_TEXT = '3 April 1985';

// GET page routes of the route table that are no page a person views, each with the reason. The
// test at the end checks that each still behaves as its reason says; every other GET page route
// must have been scanned.
const NOT_PAGES = {
  '/': 'redirects only: to the home page of whoever is signed in, or to sign-in',
  '/home': 'redirects only: to the home page of whoever is signed in, or to sign-in',
  '/documents/{document_id}/download': 'serves a document\'s bytes as a download, not a page',
};
// The error pages the journey reaches through real flows; each must have been scanned.
const ERROR_STATUSES = [403, 404, 429, 503];

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
  portal = await startPortal({ TIAKI_BREACHED_PASSWORDS: breachedList, TIAKI_SUPPORT_PHONE: '0800 824 254' });
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
  assert.ok(portal.firstCode, 'serve printed a first-start code');
  assert.equal(portal.firstAddress, `${portal.base}/activate`, 'and where to type it');

  // The first operator sets up the installation with the printed code, typed at the sign-in page.
  const op = await person(browser);
  await op.page.goto(`${portal.base}/signin`);
  await checkPage(op.page, 'sign in');
  await op.page.getByRole('link', { name: 'I have a code from a Tiaki email' }).click();
  await op.page.waitForURL('**/activate');
  await checkPage(op.page, 'type a code');
  const wrong = await typeCode(op.page, 'ABCD-EFGH-JKMN-PQRS');
  assert.equal(wrong.status(), 422);
  await assertVisible(op.page, 'That code is not right');
  await checkPage(op.page, 'type a code: not right');
  await typeCode(op.page, portal.firstCode.toLowerCase().replace(/-/g, ' '));
  await op.page.getByLabel('Your name').fill('Olivia Operator');
  await op.page.getByLabel('Your email address').fill('olivia@tiaki.test');
  await setPassword(op.page, 'first-start set-up');
  // Operators and staff set up a second factor before they can do anything else.
  await op.page.waitForURL('**/account/security');
  the.opSecret = (await setUpAuthenticator(op.page, 'operator')).secret;
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
  await codeFromMailAtSignIn(admin.page, portal, 'mere@harbour.test', seen);
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
  await codeFromMailAtSignIn(nurse.page, portal, 'nikau@harbour.test', seen);
  await setPassword(nurse.page, 'staff invitation (nurse)');
  await nurse.page.waitForURL('**/account/security');
  await setUpAuthenticator(nurse.page, 'nurse');
  await nurse.page.waitForURL('**/practices/**');
  await checkPage(nurse.page, 'practice: nurse view');
  const patients = [['ZZZ0016', 'Aroha Patient', 'aroha@patients.test'], ['ZBN77VL', 'Ben Other', 'ben@patients.test'], ['ZAA0067', 'Hemi Third', 'hemi@patients.test']];
  for (const [nhi, name, email] of patients) await enrol(nurse.page, nhi, name, email, AROHA_DOB);
  // An invalid NHI is refused with the reason, in the browser too.
  await nurse.page.getByLabel('NHI number').fill('ZZZ0044');
  await nurse.page.locator('#name').fill('Wrong Number');
  await nurse.page.getByLabel('Date of birth').fill('1985-04-03');
  await nurse.page.locator('#email').fill('wrong@patients.test');
  await nurse.page.getByRole('button', { name: 'Enrol patient' }).click();
  await assertVisible(nurse.page, 'check character does not match');
  await checkPage(nurse.page, 'practice: enrol form with errors');

  // The practice's page (the form posts may have left the address on a sub-path).
  the.practicePage = nurse.page.url().match(/^.*\/practices\/[^/?#]+/)[0];
  // The nurse opens Aroha's record from the patient list.
  await nurse.page.getByRole('link', { name: 'Aroha Patient' }).click();
  await assertVisible(nurse.page, 'Patient record, viewed as practice staff');
  await checkPage(nurse.page, 'patient record (staff view)');
  // Kept for the test of how dates read (a failure there does not stop this journey).
  the.arohaDobShown = await dateOfBirthShown(nurse.page);

  // The patient activates from the email, lands on their home page.
  const aroha = await person(browser);
  const arohaLink = await codeFromMail(portal, 'aroha@patients.test', seen, 'Activate your Tiaki patient portal account');
  await enterCodeAtSignIn(aroha.page, portal, arohaLink);
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
  await codeFromMailAtSignIn(ben.page, portal, 'ben@patients.test', seen);
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

test('forgotten password, the emailed set-up code, and a change of email address', async () => {
  const { aroha, arohaHome } = the;
  assert.ok(aroha, 'the first journey got this far');

  // Aroha has forgotten her password: the link on the sign-in page mails her a code.
  await aroha.page.goto(`${portal.base}/signin`);
  await aroha.page.getByRole('link', { name: 'Forgot your password?' }).click();
  await aroha.page.waitForURL('**/signin/forgot');
  await checkPage(aroha.page, 'forgot password');
  await aroha.page.getByLabel('Email address').fill('aroha@patients.test');
  await aroha.page.getByRole('button', { name: 'Email me a code' }).click();
  await assertVisible(aroha.page, 'we have emailed it a code');
  await checkPage(aroha.page, 'forgot password: sent');
  const reset = await codeFromMail(portal, 'aroha@patients.test', seen, 'Choose a new Tiaki password');
  await aroha.page.getByRole('link', { name: 'Type the code' }).click();
  await aroha.page.waitForURL('**/reset-password');
  await checkPage(aroha.page, 'reset password: the code');
  await typeCode(aroha.page, reset.toLowerCase());
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
  // The code works once.
  await aroha.page.goto(`${portal.base}/reset-password`);
  const used = await typeCode(aroha.page, reset);
  assert.equal(used.status(), 422);
  await assertVisible(aroha.page, 'That code is not right, has expired');
  await checkPage(aroha.page, 'reset code used');
  await aroha.page.goto(`${portal.base}/signin`);
  await signIn(aroha.page, 'aroha@patients.test', AROHA_NEW_PASSWORD);
  await aroha.page.waitForURL(arohaHome);

  // Signed in with a password alone, she is emailed a code before she can add a second factor.
  await aroha.page.goto(`${portal.base}/account/security`);
  await aroha.page.getByRole('button', { name: 'Email me a set-up code' }).click();
  await assertVisible(aroha.page, 'We have emailed you a set-up code');
  await checkPage(aroha.page, 'sign-in security: set-up code sent');
  const setupCode = await codeFromMail(portal, 'aroha@patients.test', seen, 'Set up your Tiaki authenticator app');
  await typeCode(aroha.page, setupCode);
  await assertVisible(aroha.page, 'You can now set up your authenticator app');
  await checkPage(aroha.page, 'set-up code taken');
  const { secret } = await setUpAuthenticator(aroha.page, 'patient, after the set-up code');
  // A used code is refused, with the way to a new one.
  await aroha.page.goto(`${portal.base}/account/security/link`);
  await checkPage(aroha.page, 'type a set-up code');
  assert.equal((await typeCode(aroha.page, setupCode)).status(), 422);
  await assertVisible(aroha.page, 'That code is not right, has expired');
  await checkPage(aroha.page, 'set-up code used');

  // With a second factor she may move her email address: confirm it's you, then the code.
  await aroha.page.goto(`${portal.base}/account/security`);
  if (await aroha.page.locator('#confirm_code').count()) {
    await aroha.page.locator('#confirm_code').fill(totp(secret, 30));
    await aroha.page.getByRole('button', { name: 'Confirm with a code' }).click();
  }
  await aroha.page.locator('#new_email').fill('aroha.kainga@patients.test');
  await aroha.page.locator('#email_current').fill(AROHA_NEW_PASSWORD);
  await aroha.page.getByRole('button', { name: 'Change my email address' }).click();
  await assertVisible(aroha.page, 'We have emailed a code to the new address');
  await checkPage(aroha.page, 'confirm new email address: the code');
  const confirm = await codeFromMail(portal, 'aroha.kainga@patients.test', seen, 'Confirm your new Tiaki email address');
  await typeCode(aroha.page, confirm);
  await assertVisible(aroha.page, 'Your email address is now aroha.kainga@patients.test');
  await checkPage(aroha.page, 'email address changed');
  // The code works once.
  await aroha.page.goto(`${portal.base}/account/email/confirm`);
  await checkPage(aroha.page, 'confirm new email address');
  const again = await typeCode(aroha.page, confirm);
  assert.equal(again.status(), 422);
  await assertVisible(aroha.page, 'That code is not right, has expired');
  await checkPage(aroha.page, 'email code used');
  the.arohaTotp = secret;
});

test('error pages as real flows reach them: a used code, too many attempts (429), expired form and breached password (403)', async () => {
  const { aroha, arohaLink, ben } = the;
  assert.ok(aroha && ben, 'the first journey got this far');

  // An activation code typed again (in another browser: the sign-in page sends someone
  // signed in to their home).
  const again = await person(browser);
  const used = await enterCodeAtSignIn(again.page, portal, arohaLink);
  assert.equal(used.status(), 422);
  await assertVisible(again.page, 'already been used');
  await checkPage(again.page, 'activation code used');

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
  await codeFromMailAtSignIn(hemi.page, portal, 'hemi@patients.test', seen);
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
  await codeFromMailAtSignIn(hemi.page, portal, 'hemi@patients.test', seen, 'Choose a new Tiaki password');
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

// A small phone (320 px is the narrowest still in use), with a phone's user agent so that the
// sessions page shows a phone.
const PHONE = {
  viewport: { width: 320, height: 640 },
  userAgent: 'Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1',
};
const TAMA_EMAIL = 'tama.fourth.with.a.rather.long.address@patients-of-harbour-health.test';
// A document name with no space to wrap at, as scanners and hospital systems make them.
const LONG_TITLE = 'Discharge_summary_Auckland_City_Hospital_Ward_7_2026-11-27_FINAL_v2';

test('pages work at 320 px wide without sideways scrolling', async () => {
  // Signed out.
  const phone = await person(browser, PHONE);
  await phone.page.goto(`${portal.base}/signin`);
  await checkPage(phone.page, 'sign in at 320px');
  await assertTouchTargets(phone.page, 'sign in at 320px');

  // A patient with a long email address, documents with long names, a history with someone else
  // in it and two sessions, signed in on the phone.
  const { nurse, admin, op, practicePage } = the;
  assert.ok(nurse && admin && op && practicePage, 'the first journey got this far');
  const tama = await newPatient('ZZZ0024', 'Tama Fourth', TAMA_EMAIL, '1991-07-30', TAMA_PASSWORD, PHONE);
  const p = tama.page;
  await p.goto(`${tama.home}/documents`);
  const pdf = Buffer.from('%PDF-1.4\n% discharge summary\n' + 'x'.repeat(2000) + '\n%%EOF\n');
  for (const [title, file] of [[LONG_TITLE, `${LONG_TITLE}.pdf`], ['Blood test results, November', 'bloods.pdf']]) {
    await p.locator('#title').fill(title);
    await p.getByLabel('File').setInputFiles({ name: file, mimeType: 'application/pdf', buffer: pdf });
    await submit(p, p.getByRole('button', { name: 'Upload' }));
    await assertVisible(p, 'uploaded and stored securely');
  }
  const href = await p.getByRole('link', { name: LONG_TITLE }).first().getAttribute('href');
  assert.equal((await tama.context.request.get(new URL(href, portal.base).href)).status(), 200, 'the patient opens a document');
  const desk = await person(browser);
  await desk.page.goto(`${portal.base}/signin`);
  await signIn(desk.page, TAMA_EMAIL, TAMA_PASSWORD);
  await desk.page.waitForURL(tama.home);

  for (const [what, path] of [
    ['home', tama.home], ['documents', `${tama.home}/documents`], ['documents, hidden ones too', `${tama.home}/documents?hidden=1`],
    ['access history', `${tama.home}/access`], ['sessions', `${portal.base}/account/sessions`], ['sign-in security', `${portal.base}/account/security`],
  ]) {
    await p.goto(path);
    const label = `patient's ${what} at 320px`;
    await checkPage(p, label);
    await assertTouchTargets(p, label);
    if (what === 'documents') {
      // The rename, hide and delete forms, opened.
      await p.locator('details summary').first().click();
      await assertFitsWidth(p, `${label}, a document's forms opened`, 320);
      await assertTouchTargets(p, `${label}, a document's forms opened`);
    }
    if (what === 'access history') assert.match(await p.locator('main table').innerText(), /Nikau Nurse/, 'the access history holds the nurse\'s access');
    if (what === 'sessions') assert.equal(await p.locator('main table tbody tr').count(), 2, 'two sessions: the phone and the desktop');
    if (what === 'access history' || what === 'sessions') await assertCards(p, label);
  }
  // The authenticator app's QR code and the recovery codes.
  await setUpAuthenticator(p, 'patient, on a phone');
  await p.waitForURL(tama.home);

  // Staff pages with tables, on a phone: the patient list, the staff list, a patient's record
  // (with the long email address) and the operator's list of practices.
  for (const [who, context, path, what] of [
    ['nurse', nurse.context, practicePage, 'practice (nurse view)'], ['admin', admin.context, practicePage, 'practice (admin view, staff list)'],
    ['nurse', nurse.context, tama.home, 'patient record (staff view)'], ['operator', op.context, `${portal.base}/operator`, 'operator: practices'],
  ]) {
    const page = watch(await context.newPage());
    await page.setViewportSize(PHONE.viewport);
    await page.goto(path);
    const label = `${what} at 320px, as the ${who}`;
    await checkPage(page, label);
    await assertTouchTargets(page, label);
    if (await page.locator('main table').count()) await assertCards(page, label);
    await page.close();
  }
});

test('times on the access history and sessions pages are New Zealand time, not UTC', async () => {
  // The expectation itself, against instants whose New Zealand time is known (either side of
  // daylight saving and the hour it begins), so that a broken expectation cannot pass.
  assert.equal(nzTime('2026-11-27T10:32:05Z', true), '27 November 2026, 11:32:05 pm NZDT');
  assert.equal(nzTime('2026-07-01T00:00:00Z', false), '1 July 2026, 12:00 pm NZST');
  assert.equal(nzTime('2026-09-26T13:59:59Z', true), '27 September 2026, 1:59:59 am NZST');
  assert.equal(nzTime('2026-09-26T14:00:00Z', true), '27 September 2026, 3:00:00 am NZDT');
  assert.equal(nzTime('2026-11-27T11:05:09Z', false), '28 November 2026, 12:05 am NZDT');

  assert.ok(the.nurse && the.practicePage, 'the first journey got this far');
  const wiremu = await newPatient('ZZZ0032', 'Wiremu Fifth', 'wiremu@patients.test', '2004-12-05', WIREMU_PASSWORD);
  await wiremu.page.goto(`${wiremu.home}/documents`);
  const failures = [];
  for (const [what, path, seconds] of [['the access history', `${wiremu.home}/access`, true], ['the sessions page', `${portal.base}/account/sessions`, false]]) {
    await wiremu.page.goto(path);
    await checkPage(wiremu.page, `${what} (times)`);
    try { await assertNzTimes(wiremu.page, what, seconds); } catch (e) { failures.push(e.message); }
  }
  assert.ok(failures.length === 0, failures.join('\n'));
});

test('dates of birth read as New Zealanders write them ("3 April 1985"), on the staff view of a patient', () => {
  assert.ok(the.arohaDobShown !== undefined, 'the first journey opened a patient record as staff');
  const shown = the.arohaDobShown;
  assert.match(shown, /^\d{1,2} [A-Z][a-z]+ \d{4}$/,
    `the date of birth on /patients/{id} reads "${shown}"; write it as day, full month and year ("30 July 1991"), in crates/web/src/present.rs`);
  assert.equal(shown, AROHA_DOB_TEXT, `the date of birth shown is the one entered at enrolment (${AROHA_DOB})`);
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

const RANGI_PASSWORD = 'tuatara basking on a warm grey rock';
keepSecret(RANGI_PASSWORD, 'a password');

// Runs `tiaki admin …` on the portal's data folder (while it serves) and returns what it printed.
function admin(portalDir, args) {
  return new Promise((resolve, reject) => {
    const env = { ...process.env, TIAKI_DATA_DIR: portalDir };
    delete env.TIAKI_SMTP_URL;
    const child = spawn(BIN, ['admin', ...args], { env, stdio: ['ignore', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => { out += d; });
    child.stderr.on('data', (d) => { err += d; });
    child.on('exit', (code) => (code === 0 ? resolve(out.trim()) : reject(new Error(`tiaki admin ${args.join(' ')}: ${code}\n${err}`))));
  });
}

test('health records: the practice system sends a record, the nurse releases a result, the patient reads it with its chart', async () => {
  const { nurse, admin: practiceAdmin, practicePage } = the;
  assert.ok(nurse && practiceAdmin && practicePage, 'the first journey got this far');
  const token = await admin(portal.dataDir, ['create-client', '--label', 'Harbour PMS', '--practice', 'FHH123-A', '--org-name', 'Harbour Health', '--records']);
  keepSecret(token, 'an API client token');
  const rangi = await newPatient('ZAA0075', 'Rangi Records', 'rangi@patients.test', '1970-02-14', RANGI_PASSWORD, PHONE);
  const P = 'urn:uuid:0b6c6a8e-54f3-4c1e-9d8a-2f1e3c4d5e6f';
  const put = (resource) => ({ fullUrl: `urn:test:${resource.resourceType}/${resource.id}`, resource: { ...resource, meta: { versionId: '1' } }, request: { method: 'PUT', url: `${resource.resourceType}/${resource.id}` } });
  const hba1c = (id, value, date) => put({
    resourceType: 'Observation', id, status: 'final', subject: { reference: P }, effectiveDateTime: date,
    code: { coding: [{ system: 'http://loinc.org', code: '4548-4', display: 'HbA1c' }], text: 'HbA1c' },
    valueQuantity: { value, unit: 'mmol/mol' }, referenceRange: [{ low: { value: 20, unit: 'mmol/mol' }, high: { value: 40, unit: 'mmol/mol' } }],
  });
  const bundle = {
    resourceType: 'Bundle', type: 'transaction', entry: [
      { fullUrl: P, resource: { resourceType: 'Patient', identifier: [{ use: 'official', system: 'https://standards.digital.health.nz/ns/nhi-id', value: 'ZAA0075' }] }, request: { method: 'PUT', url: 'Patient?identifier=ZAA0075' } },
      put({ resourceType: 'AllergyIntolerance', id: 'a1', patient: { reference: P }, code: { text: 'Penicillin' }, criticality: 'high', reaction: [{ manifestation: [{ text: 'Hives and swelling' }] }] }),
      put({ resourceType: 'Condition', id: 'c1', subject: { reference: P }, code: { text: 'Type 2 diabetes' }, onsetDateTime: '2018-06-01' }),
      put({ resourceType: 'MedicationRequest', id: 'm1', status: 'active', intent: 'order', subject: { reference: P }, medicationCodeableConcept: { text: 'Metformin 500 mg tablets' }, dosageInstruction: [{ text: 'One tablet twice a day with food' }], dispenseRequest: { numberOfRepeatsAllowed: 2 } }),
      hba1c('o1', 62, '2023-03-01'), hba1c('o2', 55, '2024-03-01'), hba1c('o3', 48, '2025-03-01'),
      put({ resourceType: 'ServiceRequest', id: 's1', status: 'active', intent: 'plan', subject: { reference: P }, code: { text: 'Diabetes annual review' }, occurrenceDateTime: '2027-03-01' }),
    ],
  };
  const sent = await fetch(`${portal.base}/fhir/R4`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/fhir+json' }, body: JSON.stringify(bundle) });
  assert.equal(sent.status, 200, await sent.text());

  // The patient sees the summary, allergies first, and no result yet (held for the nurse).
  const p = rangi.page;
  await p.goto(rangi.home);
  await p.getByRole('link', { name: 'Health record' }).click();
  await assertVisible(p, 'My health record');
  await assertVisible(p, 'Penicillin');
  assert.equal(await p.getByText('HbA1c').count(), 0, 'results are held until a clinician releases them');
  await checkPage(p, 'health record summary (patient)');
  await assertFitsWidth(p, 'health record summary (patient)', 320);

  // The nurse releases the results from the practice's queue, the first with a note.
  await nurse.page.goto(practicePage);
  await nurse.page.getByRole('link', { name: 'Results awaiting release' }).click();
  await assertVisible(nurse.page, 'Results awaiting release');
  await checkPage(nurse.page, 'results awaiting release');
  await nurse.page.getByRole('link', { name: 'HbA1c' }).last().click();
  await assertVisible(nurse.page, 'Awaiting release');
  await checkPage(nurse.page, 'a held result (nurse)');
  await nurse.page.getByLabel('Note to the patient').fill('Your HbA1c is coming down nicely. Keep going.');
  await submit(nurse.page, nurse.page.getByRole('button', { name: 'Release to the patient' }));
  await assertVisible(nurse.page, 'The result is released');
  await nurse.page.goto(`${practicePage}/results`);
  while (await nurse.page.getByRole('button', { name: /^Release/ }).count()) {
    await submit(nurse.page, nurse.page.getByRole('button', { name: /^Release/ }).first());
  }
  await assertVisible(nurse.page, 'No results are waiting');
  // The nurse's view of Rangi's record, and the admin's release rules.
  await nurse.page.goto(`${rangi.home}/records`);
  await checkPage(nurse.page, 'health record (nurse view)');
  await practiceAdmin.page.goto(practicePage);
  await practiceAdmin.page.getByRole('link', { name: 'What patients see of their health record' }).click();
  await checkPage(practiceAdmin.page, 'release rules');
  await practiceAdmin.page.getByLabel('Release results automatically after this many days').fill('soon');
  await practiceAdmin.page.getByRole('button', { name: 'Save' }).click();
  await assertVisible(practiceAdmin.page, 'The rules were not saved');
  await checkPage(practiceAdmin.page, 'release rules with an error');
  await practiceAdmin.page.getByLabel('Release results automatically after this many days').fill('');
  await practiceAdmin.page.getByRole('button', { name: 'Save' }).click();
  await assertVisible(practiceAdmin.page, 'The release rules are saved');

  // The patient now reads the results, and the trend of the latest, with its data table.
  await p.goto(`${rangi.home}/records/results`);
  await assertVisible(p, 'Test results');
  await checkPage(p, 'test results (patient)');
  await p.goto(`${rangi.home}/records`);
  await p.getByRole('link', { name: /See this result/ }).first().click();
  await assertVisible(p, 'Higher than the usual range');
  await assertVisible(p, 'Your HbA1c is coming down nicely');
  const chart = p.locator('svg[role="img"]');
  await chart.waitFor({ state: 'visible' });
  assert.match(await chart.locator('title').textContent(), /HbA1c over time/);
  assert.equal(await p.locator('main table tbody tr').count(), 3, 'three results in the data table');
  await checkPage(p, 'a result with its trend (patient)');
  await assertFitsWidth(p, 'a result with its trend (patient)', 320);
  await assertTouchTargets(p, 'a result with its trend (patient)');
  await assertCards(p, 'a result with its trend (patient)');
  const box = await chart.boundingBox();
  assert.ok(box.width >= 250 && box.width <= 320, `the chart fills a phone's width (${box.width}px)`);
});

test('appointments and repeats: the admin sets up the book, a patient books and cancels, a nurse and a GP approve a repeat request', async () => {
  const { nurse, admin: practiceAdmin, practicePage } = the;
  assert.ok(nurse && practiceAdmin && practicePage, 'the first journey got this far');
  const a = practiceAdmin.page;
  // The admin sets up the book: a GP, a 15-minute type, mornings every day of the week.
  await a.goto(practicePage);
  await a.getByRole('link', { name: 'Appointment book' }).click();
  await assertVisible(a, 'Online booking');
  await checkPage(a, 'appointment book set-up');
  await a.locator('#c-name').fill('Dr Kahu Reweti');
  await a.locator('#c-kind').selectOption('gp');
  await a.locator('#c-location').fill('Harbour clinic');
  await submit(a, a.getByRole('button', { name: 'Add the clinician' }));
  await a.locator('#t-name').fill('Standard');
  await a.locator('#t-minutes').fill('15');
  await submit(a, a.getByRole('button', { name: 'Save the kind' }));
  for (const day of ['1', '2', '3', '4', '5', '6', '7']) {
    await a.locator('#tp-d').selectOption(day);
    await a.locator('#tp-s').fill('09:00');
    await a.locator('#tp-e').fill('12:00');
    await submit(a, a.getByRole('button', { name: 'Add to the template' }));
    await assertVisible(a, 'Saved.');
  }
  await a.locator('#tp-s').fill('nine');
  await a.locator('#tp-e').fill('12:00');
  await submit(a, a.getByRole('button', { name: 'Add to the template' }));
  await assertVisible(a, 'That was not saved');
  await checkPage(a, 'appointment book set-up with an error');
  await a.goto(practicePage);
  await a.getByRole('link', { name: 'Online repeat prescriptions' }).click();
  await checkPage(a, 'online repeat prescriptions (admin)');
  await a.getByLabel('Fee per request').fill('12.50');
  await a.getByLabel('Pharmacies patients may choose').fill('Harbour Pharmacy\nUnichem Town');
  await submit(a, a.getByRole('button', { name: 'Save' }));
  await assertVisible(a, 'Saved.');
  // A GP joins the practice.
  await a.goto(practicePage);
  await a.locator('#staff_name').fill('Kahu Reweti');
  await a.locator('#staff_email').fill('kahu@harbour.test');
  await a.locator('#role').selectOption('gp');
  await a.getByRole('button', { name: 'Send invitation' }).click();
  await assertVisible(a, 'The invitation has been emailed');
  const gp = await person(browser);
  await codeFromMailAtSignIn(gp.page, portal, 'kahu@harbour.test', seen);
  await setPassword(gp.page, 'staff invitation (GP)');
  await gp.page.waitForURL('**/account/security');
  await setUpAuthenticator(gp.page, 'GP');
  await gp.page.waitForURL('**/practices/**');

  // A patient on a phone books, sees the confirmation, and cancels.
  const kiri = await newPatient('ZJP0102', 'Kiri Bookings', 'kiri@patients.test', '1979-05-21', KIRI_PASSWORD, PHONE);
  const p = kiri.page;
  await p.goto(kiri.home);
  await p.getByRole('link', { name: 'Appointments' }).click();
  await checkPage(p, 'appointments (patient, none yet)');
  await p.getByRole('link', { name: 'Book an appointment' }).click();
  await assertVisible(p, 'Free times from');
  // A week ahead, well before any cut-off whenever this runs.
  await p.getByRole('link', { name: 'Next week' }).click();
  await assertVisible(p, 'Free times from');
  await checkPage(p, 'booking page (patient)');
  await assertFitsWidth(p, 'booking page (patient)', 320);
  await p.locator('.slots summary').first().click();
  await p.locator('.slots input[name="reason"]').first().fill('Check-up for my asthma');
  await submit(p, p.locator('.slots button[type="submit"]').first());
  await assertVisible(p, 'Your appointment is booked');
  await assertVisible(p, 'Booked — confirmed');
  await assertVisible(p, 'Check-up for my asthma');
  await checkPage(p, 'an appointment (patient)');
  await assertFitsWidth(p, 'an appointment (patient)', 320);
  await submit(p, p.getByRole('button', { name: 'Cancel this appointment' }));
  await assertVisible(p, 'The appointment is cancelled');
  await p.getByRole('link', { name: 'Back to appointments' }).click();
  await assertVisible(p, 'Cancelled');
  await checkPage(p, 'appointments (patient, one cancelled)');
  // Booked again; the GP sees Kiri on the day list.
  await p.goto(`${kiri.home}/appointments/book`);
  await p.getByRole('link', { name: 'Next week' }).click();
  await p.locator('.slots summary').first().click();
  await submit(p, p.locator('.slots button[type="submit"]').first());
  await assertVisible(p, 'Your appointment is booked');
  const when = await p.locator('h1 time').getAttribute('datetime');
  const day = new Intl.DateTimeFormat('en-CA', { timeZone: 'Pacific/Auckland' }).format(new Date(when));
  await gp.page.goto(`${practicePage}/day?day=${day}`);
  await assertVisible(gp.page, 'Kiri Bookings');
  await checkPage(gp.page, 'day list (GP)');

  // The GP puts a medication on Kiri's list; Kiri asks for it, collected from a pharmacy.
  await gp.page.goto(`${kiri.home}/repeats`);
  await gp.page.getByLabel('Medication and dose').fill('Salbutamol inhaler 100 mcg');
  await submit(gp.page, gp.page.getByRole('button', { name: 'Add', exact: true }));
  await assertVisible(gp.page, 'The long-term list is saved');
  await checkPage(gp.page, 'repeat prescriptions (GP view)');
  await p.goto(kiri.home);
  await p.getByRole('link', { name: 'Repeat prescriptions' }).click();
  await assertVisible(p, '$12.50');
  await checkPage(p, 'repeat prescriptions (patient)');
  await assertFitsWidth(p, 'repeat prescriptions (patient)', 320);
  await p.getByLabel(/Salbutamol inhaler/).check();
  await p.getByLabel('Send it to a pharmacy').check();
  await p.getByLabel('Pharmacy', { exact: true }).selectOption('Harbour Pharmacy');
  await submit(p, p.getByRole('button', { name: 'Send the request' }));
  await assertVisible(p, 'Your request is sent');
  const requestPage = p.url().replace(/[?#].*$/, '');
  await checkPage(p, 'a repeat request (patient, requested)');
  // The nurse prepares it from the queue; the GP approves it.
  await nurse.page.goto(practicePage);
  await nurse.page.getByRole('link', { name: 'Repeat prescription requests' }).click();
  await checkPage(nurse.page, 'repeat requests queue (nurse)');
  await nurse.page.getByRole('link', { name: 'Kiri Bookings' }).click();
  await checkPage(nurse.page, 'a repeat request (nurse)');
  await submit(nurse.page, nurse.page.getByRole('button', { name: 'Take into review' }));
  await assertVisible(nurse.page, 'The request is in review');
  await p.goto(requestPage);
  await assertVisible(p, 'In review');
  await gp.page.goto(requestPage);
  await submit(gp.page, gp.page.getByRole('button', { name: /^Approve/ }));
  await assertVisible(gp.page, 'The request is approved');
  await p.goto(requestPage);
  await assertVisible(p, 'Approved: Sent to the pharmacy');
  await checkPage(p, 'a repeat request (patient, approved)');
  await assertFitsWidth(p, 'a repeat request (patient, approved)', 320);
});

test('proxy access: the practice lets a parent act for their child; the parent switches and books for the child, whose history names the parent; the inbox counts the news', async () => {
  const { nurse, admin: practiceAdmin, practicePage } = the;
  assert.ok(nurse && practiceAdmin && practicePage, 'the first journey got this far');
  // The admin keeps the default cut-off age (14).
  const a = practiceAdmin.page;
  await a.goto(practicePage);
  await a.getByRole('link', { name: /Proxy access rules/ }).click();
  await checkPage(a, 'proxy access rules (admin)');
  await a.getByLabel("Age at which a child's record becomes their own").selectOption('14');
  await submit(a, a.getByRole('button', { name: 'Save' }));
  await assertVisible(a, 'Saved.');
  // A parent and a child of 9, each enrolled; the nurse, having seen their papers, sets it up.
  const rawiri = await newPatient('ZPX1105', 'Rawiri Matua', 'rawiri@patients.test', '1982-02-11', PASSWORD, PHONE);
  const year = new Date().getFullYear() - 9;
  const tui = await newPatient('ZAA0121', 'Tui Matua', 'tui@patients.test', `${year}-06-01`, PASSWORD);
  const n = nurse.page;
  await n.goto(tui.home);
  await n.getByRole('link', { name: 'Proxy access (parents, carers)' }).click();
  await checkPage(n, 'proxy access (nurse, none yet)');
  await submit(n, n.getByRole('button', { name: 'Set up' }));
  await assertVisible(n, 'The proxy was not set up');
  await checkPage(n, 'proxy access (nurse, form with errors)');
  await n.getByLabel('Their email address').fill('rawiri@patients.test');
  await n.getByLabel('Who they are to the patient').selectOption('parent');
  await n.getByLabel('How you checked their identity').fill('Birth certificate and driver licence sighted');
  await submit(n, n.getByRole('button', { name: 'Set up' }));
  await assertVisible(n, 'They have been told in Tiaki');
  await assertVisible(n, 'Rawiri Matua');
  // The parent's inbox has the news, counted in the header.
  const r = rawiri.page;
  await r.goto(rawiri.home);
  const count = async () => Number((await r.locator('header .count').first().textContent().catch(() => '0')).replace(/\D/g, '') || 0);
  const before = await count();
  assert.ok(before >= 1, `the header counts the unread notice (got ${before})`);
  await r.getByRole('link', { name: /^Inbox/ }).click();
  await assertVisible(r, 'You can act for someone in Tiaki');
  await checkPage(r, 'inbox (patient)');
  await assertFitsWidth(r, 'inbox (patient)', 320);
  // The parent switches to the child: every page says whose record is open.
  await r.getByRole('link', { name: 'Switch person' }).click();
  await checkPage(r, 'switch person');
  await assertFitsWidth(r, 'switch person', 320);
  await submit(r, r.getByRole('button', { name: 'Tui Matua' }));
  await assertVisible(r, 'You are acting for Tui Matua');
  await checkPage(r, "the child's home (parent acting)");
  await r.getByRole('link', { name: 'Appointments' }).click();
  await assertVisible(r, 'You are acting for Tui Matua');
  await r.getByRole('link', { name: 'Book an appointment' }).click();
  await r.getByRole('link', { name: 'Next week' }).click();
  await r.locator('.slots summary').first().click();
  await submit(r, r.locator('.slots button[type="submit"]').first());
  await assertVisible(r, 'booked');
  await checkPage(r, "an appointment (parent acting for the child)");
  const after = await count();
  assert.equal(after, before + 1, `the notice of the booking is counted (${before} then ${after})`);
  await r.getByRole('link', { name: /^Inbox/ }).click();
  await assertVisible(r, 'An appointment was booked');
  await assertVisible(r, 'About Tui Matua');
  // The child's own history names the parent.
  const t = tui.page;
  await t.goto(`${tui.home}/access`);
  await assertVisible(t, 'Rawiri Matua (your parent or guardian)');
  await assertVisible(t, 'Booked an appointment');
  await t.goto(`${tui.home}/proxies`);
  await assertVisible(t, 'People who can act for you');
  await checkPage(t, 'people who can act for you (patient)');
  // The parent switches back to themself.
  await r.getByRole('link', { name: 'Switch person' }).click();
  await submit(r, r.getByRole('button', { name: /^Me/ }));
  await assertVisible(r, 'Kia ora, Rawiri Matua');
  the.rawiri = rawiri;
});

test('messaging: the admin turns it on; a patient writes to the nurses, a nurse replies and notes, the patient reads the reply', async () => {
  const { nurse, admin: practiceAdmin, practicePage, rawiri } = the;
  assert.ok(nurse && practiceAdmin && practicePage && rawiri, 'the earlier journeys got this far');
  const a = practiceAdmin.page;
  await a.goto(practicePage);
  await a.getByRole('link', { name: /^Messaging/ }).click();
  await checkPage(a, 'messaging set-up (admin)');
  await a.getByLabel('Patients may message the practice online').check();
  await a.getByLabel('Working days you reply within').fill('2');
  await submit(a, a.getByRole('button', { name: 'Save' }));
  await assertVisible(a, 'Saved.');
  // The patient, on a phone, reads the practice's notice and writes.
  const r = rawiri.page;
  await r.goto(rawiri.home);
  await r.getByRole('link', { name: 'Messages' }).click();
  await assertVisible(r, 'call 111');
  await checkPage(r, 'messages (patient, none yet)');
  await assertFitsWidth(r, 'messages (patient, none yet)', 320);
  await r.getByLabel('To').selectOption('team:nurses');
  await r.getByLabel('Subject').fill('Cough that will not go');
  await r.getByLabel('Message').fill('I have had a dry cough for three weeks. Should I come in?');
  await submit(r, r.getByRole('button', { name: 'Send' }));
  await assertVisible(r, 'Sent.');
  await checkPage(r, 'a conversation (patient)');
  await assertFitsWidth(r, 'a conversation (patient)', 320);
  const thread = r.url().replace(/[?#].*$/, '');
  // An HTML file is refused; a PDF goes with the message and into the patient's documents.
  await r.getByLabel(/A PDF or a photo/).setInputFiles({ name: 'cough.html', mimeType: 'text/html', buffer: Buffer.from('<html><script>alert(1)</script></html>') });
  await submit(r, r.getByRole('button', { name: 'Send the document' }));
  await assertVisible(r, 'That was not sent');
  await checkPage(r, 'a conversation (patient, document refused)');
  const scan = Buffer.from('%PDF-1.4\n% a photo of the inhaler label\n' + 'x'.repeat(3000) + '\n%%EOF\n');
  await r.getByLabel(/A PDF or a photo/).setInputFiles({ name: 'inhaler.pdf', mimeType: 'application/pdf', buffer: scan });
  await submit(r, r.getByRole('button', { name: 'Send the document' }));
  await assertVisible(r, 'The document is sent');
  // The nurse finds it in the practice's messages, replies, and keeps a note.
  const n = nurse.page;
  await n.goto(practicePage);
  await n.getByRole('link', { name: 'Messages from patients' }).click();
  await checkPage(n, 'messages from patients (nurse)');
  assert.ok((await n.content()).includes(`href="${new URL(thread).pathname}"`), 'the inbox links the conversation');
  await n.goto(thread);
  await checkPage(n, 'a conversation (nurse)');
  const download = await n.context().request.get(new URL(await n.getByRole('link', { name: 'Open the document' }).getAttribute('href'), n.url()).href);
  assert.equal(download.status(), 200, 'the nurse opens the document sent with the message');
  assert.ok((await download.body()).toString().includes('inhaler label'));
  await n.getByLabel(/Reply to the patient/).fill('Yes, please book a nurse appointment this week.');
  await submit(n, n.getByRole('button', { name: 'Send reply' }));
  await assertVisible(n, 'Sent.');
  await n.getByLabel(/Reply to the patient/).fill('Check for reflux too.');
  await submit(n, n.getByRole('button', { name: 'Add an internal note' }));
  await assertVisible(n, 'The note is added');
  // The patient's inbox counts the reply; they read it, never the note.
  await r.goto(rawiri.home);
  await assertVisible(r, 'Inbox');
  await r.goto(thread);
  await assertVisible(r, 'Yes, please book a nurse appointment this week.');
  assert.equal(await r.getByText('Check for reflux too.').count(), 0, 'an internal note reached the patient');
  await r.getByRole('link', { name: /^Inbox/ }).click();
  await assertVisible(r, 'A reply from your practice');
});

test('security console: an operator sees an alert with its timeline chart, lifts the suspension, and switches documents off and on again', async () => {
  const { op, opSecret } = the;
  assert.ok(op && opSecret, 'the first journey got this far');
  // Someone with a patient's password asks for twenty documents that are not theirs.
  const kaha = await newPatient('ZSK0123', 'Kaha Enumerator', 'kaha@patients.test', '1990-03-04', PASSWORD);
  for (let i = 0; i < 20; i += 1) {
    const r = await kaha.context.request.get(`${portal.base}/documents/${randomUUID()}/download`, { maxRedirects: 0 });
    assert.ok(r.status() !== 200, 'nothing served');
  }
  const suspended = await kaha.context.request.get(kaha.home, { maxRedirects: 0 });
  assert.equal(suspended.status(), 303, 'the session is suspended: back to sign-in');
  // The operator opens the security console from the operators' page.
  const o = op.page;
  await o.goto(`${portal.base}/operator`);
  await o.getByRole('link', { name: 'Security console' }).click();
  await assertVisible(o, 'Many refused ids from one session (enumeration)');
  await checkPage(o, 'security console (an open alert)');
  await o.getByRole('link', { name: 'Many refused ids from one session (enumeration)' }).first().click();
  assert.ok(await o.locator('figure.chart svg rect.refused').count() >= 1, 'the timeline draws the refusals');
  await o.locator('figure.chart figcaption', { hasText: '20 refusals' }).waitFor({ state: 'visible', timeout: 10000 });
  await checkPage(o, 'security alert with its timeline chart');
  // Lifting needs a reason and a second factor (the sign-in's is too old by now: a code).
  await o.getByLabel('Why').fill('Kaha mistyped old links; checked with her by phone');
  await o.getByLabel('Code from your authenticator app').fill(totp(opSecret, 0));
  await submit(o, o.getByRole('button', { name: /^Lift/ }));
  await assertVisible(o, 'Lifted');
  await checkPage(o, 'security alert (lifted)');
  const back = await kaha.context.request.get(kaha.home, { maxRedirects: 0 });
  assert.equal(back.status(), 200, 'the suspension is lifted: the session works again');
  // The kill switch: documents off for Harbour Health; its patients see a plain page.
  await o.getByRole('link', { name: 'Back to the security console' }).click();
  await o.getByLabel('Part of the portal').selectOption('documents');
  await o.getByLabel('For', { exact: true }).selectOption({ label: 'Harbour Health' });
  await o.getByLabel('Why').fill('Checking a letter filed for the wrong person');
  await submit(o, o.getByRole('button', { name: 'Switch off' }));
  await assertVisible(o, 'Switched off');
  await assertVisible(o, 'Checking a letter filed for the wrong person');
  await checkPage(o, 'security console (documents switched off)');
  const k = kaha.page;
  await k.goto(`${kaha.home}/documents`);
  await assertVisible(k, 'Temporarily unavailable');
  await assertVisible(k, 'Everything else in Tiaki works as usual');
  await checkPage(k, 'documents temporarily unavailable (503)');
  await k.goto(`${kaha.home}/records`);
  await assertVisible(k, 'My health record');
  // On again: the documents are back.
  await o.getByLabel('Part of the portal').selectOption('documents');
  await o.getByLabel('For', { exact: true }).selectOption({ label: 'Harbour Health' });
  await o.getByLabel('Why').fill('Checked: the letter was filed correctly');
  await submit(o, o.getByRole('button', { name: 'Switch on again' }));
  await assertVisible(o, 'Switched on again');
  await assertVisible(o, 'Everything is on.');
  await k.goto(`${kaha.home}/documents`);
  await assertVisible(k, 'My documents');
});

test('incidents: declared from the attacker\'s browser; each patient\'s banner (affected, possibly, no impact) says what their notice says; the public check', async () => {
  const { op, aroha, arohaHome } = the;
  assert.ok(op && aroha && arohaHome, 'the first journey got this far');
  const wai = await newPatient('ZWK0105', 'Wai Tamati', 'wai@patients.test', '1979-05-06', PASSWORD);
  const rua = await newPatient('ZRU0101', 'Rua Kahu', 'rua@patients.test', '1982-07-08', PASSWORD);
  // Someone with both stolen passwords, in a browser that names itself: Wai's record is opened;
  // Rua's home page is seen and nothing else.
  const thief = await person(browser, { userAgent: 'Mozilla/5.0 (X11; Linux x86_64) EvilBot/6.6' });
  const t = thief.page;
  await t.goto(`${portal.base}/signin`);
  await signIn(t, 'wai@patients.test', PASSWORD);
  await t.waitForURL('**/patients/**');
  await t.goto(`${wai.home}/records`);
  await assertVisible(t, 'My health record');
  await submit(t, t.getByRole('button', { name: 'Sign out' }));
  await t.goto(`${portal.base}/signin`);
  await signIn(t, 'rua@patients.test', PASSWORD);
  await t.waitForURL('**/patients/**');
  await thief.context.close();
  // The operator declares it from the attacker's user agent and the hour of the attack.
  const o = op.page;
  await o.goto(`${portal.base}/operator`);
  await o.getByRole('link', { name: 'Incidents' }).click();
  await checkPage(o, 'incidents (none declared)');
  const now = Date.now();
  await o.getByLabel('Title').fill("Patients' records opened with stolen passwords");
  await o.getByLabel('What happened').fill("Someone signed in with two patients' stolen passwords and opened a health record.");
  await o.getByLabel('When it was found (New Zealand time)').fill(nzLocal(now));
  await o.getByLabel('User agents (part of one, a line each)').fill('EvilBot');
  await o.getByLabel('From (New Zealand time)').fill(nzLocal(now - 3600000));
  await o.getByLabel('To (New Zealand time)').fill(nzLocal(now + 3600000));
  await submit(o, o.getByRole('button', { name: 'Declare and compute the scope' }));
  await assertVisible(o, 'Declared.');
  const figures = await o.locator('ul.figures li').allTextContents();
  assert.deepEqual(figures.slice(0, 2).map((f) => f.trim()), ['1 confirmed affected', '1 possibly affected']);
  await checkPage(o, 'incident console (declared)');
  const incident = o.url().replace(/[?#].*$/, '');
  // Notices need what is being done and when the Commissioner was told.
  await o.getByLabel('What is being done', { exact: true }).fill('We ended the sessions involved and asked both patients to choose new passwords.');
  await o.getByLabel('When the Office of the Privacy Commissioner was told (New Zealand time)').fill(nzLocal(now));
  await submit(o, o.getByRole('button', { name: 'Save' }));
  await assertVisible(o, 'Saved.');
  await submit(o, o.getByRole('button', { name: 'Start a campaign' }));
  await assertVisible(o, 'The campaign is started');
  await checkPage(o, 'incident console (campaign started)');
  // The server sends the notices: personally addressed, no link, a reference code each.
  const waiCode = await codeFromMail(portal, 'wai@patients.test', seen, 'Your health information was accessed without permission');
  const ruaCode = await codeFromMail(portal, 'rua@patients.test', seen, 'Your health information may have been accessed without permission');
  // Each patient's banner: affected (with what was seen), possibly affected, no impact.
  await wai.page.goto(wai.home);
  await assertVisible(wai.page, 'Affected: some of your information was seen');
  await assertVisible(wai.page, 'Your health record summary, held for Harbour Health');
  await checkPage(wai.page, 'impact banner: affected');
  await rua.page.goto(rua.home);
  await assertVisible(rua.page, 'Possibly affected');
  await checkPage(rua.page, 'impact banner: possibly affected');
  await aroha.page.goto(arohaHome);
  await assertVisible(aroha.page, 'No impact on you');
  await checkPage(aroha.page, 'impact banner: no impact');
  // The reports, printable.
  await o.goto(`${incident}/regulator`);
  await assertVisible(o, 'Privacy breach notification');
  await checkPage(o, "the regulator's report");
  await o.goto(incident);
  await o.getByRole('link', { name: 'Printable report for Harbour Health' }).click();
  await assertVisible(o, 'Incident report for Harbour Health');
  await checkPage(o, "a practice's incident report");
  // "Is this message from Tiaki?", from the sign-in page, without signing in.
  const anyone = await person(browser);
  const a = anyone.page;
  await a.goto(`${portal.base}/signin`);
  await a.getByRole('link', { name: 'Check whether it is' }).click();
  await checkPage(a, 'is this message from Tiaki? (the form)');
  await a.getByLabel('Reference code').fill(waiCode.toLowerCase().replace(/-/g, ' '));
  await submit(a, a.getByRole('button', { name: 'Check the code' }));
  await assertVisible(a, 'This message is from Tiaki');
  await assertVisible(a, 'Affected');
  await checkPage(a, 'a genuine code');
  await a.getByLabel('Reference code').fill(ruaCode.split('').reverse().join(''));
  await submit(a, a.getByRole('button', { name: 'Check the code' }));
  await assertVisible(a, 'This is not a message from Tiaki');
  await checkPage(a, 'a code Tiaki never sent');
  await anyone.context.close();
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

// A moment as a datetime-local field takes it, in New Zealand time ("2026-11-28T14:05").
function nzLocal(ms) {
  const parts = Object.fromEntries(new Intl.DateTimeFormat('en-GB', {
    timeZone: 'Pacific/Auckland', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23',
  }).formatToParts(new Date(ms)).map((p) => [p.type, p.value]));
  return `${parts.year}-${parts.month}-${parts.day}T${parts.hour}:${parts.minute}`;
}

async function assertVisible(page, text) {
  await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout: 10000 });
}

// Enrols a patient from the practice page the nurse is on.
async function enrol(page, nhi, name, email, dateOfBirth) {
  await page.getByLabel('NHI number').fill(nhi);
  await page.locator('#name').fill(name);
  await page.getByLabel('Date of birth').fill(dateOfBirth);
  await page.locator('#email').fill(email);
  // Waits for the answer, so that the notice of an enrolment before this one is not taken for it.
  await submit(page, page.getByRole('button', { name: 'Enrol patient' }));
  await assertVisible(page, 'The patient is enrolled');
}

// The nurse enrols a patient, who activates from the email in a browser of their own
// (`options`: its size and user agent) and lands on their home page; then the nurse opens the
// patient's record, so that the history holds someone else's access.
async function newPatient(nhi, name, email, dateOfBirth, password, options = {}) {
  const { nurse, practicePage } = the;
  await nurse.page.goto(practicePage);
  await enrol(nurse.page, nhi, name, email, dateOfBirth);
  const patient = await person(browser, options);
  await codeFromMailAtSignIn(patient.page, portal, email, seen);
  await setPassword(patient.page, `patient activation (${name})`, password);
  await patient.page.waitForURL('**/patients/**');
  await nurse.page.goto(practicePage);
  await nurse.page.getByRole('link', { name }).click();
  await assertVisible(nurse.page, 'Patient record, viewed as practice staff');
  return { ...patient, home: patient.page.url().replace(/[?#].*$/, '') };
}

// The date of birth on a patient record page, as shown.
async function dateOfBirthShown(page) {
  return (await page.locator('dl.details dt', { hasText: 'Date of birth' }).locator('xpath=following-sibling::dd[1]').textContent()).trim();
}

const MONTHS = ['January', 'February', 'March', 'April', 'May', 'June', 'July', 'August', 'September', 'October', 'November', 'December'];

// An instant (RFC 3339) as Tiaki writes it in New Zealand time: "27 November 2026, 11:32:05 pm
// NZDT" (without the seconds: "…, 11:32 pm NZDT"). Built from the numbers of the local time that
// Intl gives, not from a locale's own wording; the zone's name from the offset those numbers show.
function nzTime(iso, seconds) {
  const instant = new Date(iso);
  const n = {};
  const format = new Intl.DateTimeFormat('en-US', {
    timeZone: 'Pacific/Auckland', hourCycle: 'h23', year: 'numeric', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', second: 'numeric',
  });
  for (const { type, value } of format.formatToParts(instant)) if (type !== 'literal') n[type] = Number(value);
  const hour = n.hour % 24;
  const offset = (Date.UTC(n.year, n.month - 1, n.day, hour, n.minute, n.second) - Math.floor(instant.getTime() / 1000) * 1000) / 60000;
  const zone = { 780: 'NZDT', 720: 'NZST' }[offset];
  assert.ok(zone, `Pacific/Auckland is UTC${offset / 60 >= 0 ? '+' : ''}${offset / 60} at ${iso} by Node's time-zone data, neither +13 nor +12`);
  const pad = (v) => String(v).padStart(2, '0');
  return `${n.day} ${MONTHS[n.month - 1]} ${n.year}, ${hour % 12 || 12}:${pad(n.minute)}${seconds ? `:${pad(n.second)}` : ''} ${hour < 12 ? 'am' : 'pm'} ${zone}`;
}

// Every time in the page's table is a <time> whose datetime is a UTC instant of the last ten
// minutes and whose words are that instant in New Zealand time; nothing on the page says UTC.
async function assertNzTimes(page, what, seconds) {
  const times = await page.locator('main table time').evaluateAll((els) => els.map((t) => ({ datetime: t.getAttribute('datetime'), text: t.textContent.trim() })));
  const rows = await page.locator('main table tbody tr').evaluateAll((trs) => trs.slice(0, 2).map((tr) => [...tr.cells].map((c) => c.innerText.replace(/\s+/g, ' ').trim()).join(' | ')));
  assert.ok(times.length >= 2,
    `${what}: expected at least 2 <time datetime="…Z"> elements in the table, found ${times.length}; its first rows read: ${JSON.stringify(rows)}. Each time should be <time datetime="UTC instant">New Zealand time</time> (crates/web/src/present.rs).`);
  const now = Date.now();
  const wrong = [];
  for (const { datetime, text } of times) {
    if (!/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z$/.test(datetime || '')) { wrong.push(`datetime="${datetime}" is not an RFC 3339 UTC instant like 2026-11-27T10:32:05Z`); continue; }
    const minutes = Math.abs(Date.parse(datetime) - now) / 60000;
    if (minutes > 10) wrong.push(`datetime="${datetime}" is ${Math.round(minutes)} minutes from now (the accesses were just made: is the instant written in the wrong zone?)`);
    const expected = nzTime(datetime, seconds);
    if (text !== expected) wrong.push(`datetime="${datetime}" reads "${text}", expected "${expected}"`);
  }
  assert.deepEqual(wrong, [], `${what}: times are not New Zealand time: ${wrong.join('; ')}`);
  const body = await page.locator('main').innerText();
  assert.doesNotMatch(body, /\bUTC\b/, `${what} says "UTC" somewhere; people read New Zealand time`);
}

// Buttons, button-like links, disclosure summaries and the account links are at least 44 px tall.
async function assertTouchTargets(page, label) {
  const small = await page.evaluate(() => [...document.querySelectorAll('button, a.button, summary, .top nav a')]
    .map((el) => ({ el, r: el.getBoundingClientRect() }))
    .filter(({ el, r }) => r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden' && r.height < 43.5)
    .map(({ el, r }) => `${el.tagName.toLowerCase()} "${el.textContent.replace(/\s+/g, ' ').trim().slice(0, 40)}" is ${Math.round(r.height)}px tall`));
  assert.deepEqual(small, [], `${label}: touch targets under 44px (give them min-height: 44px in crates/web/static/tiaki.css): ${small.join('; ')}`);
}

// On a phone every table of the page is a list of cards: the cells of a row are stacked, each
// starting with its column's heading (data-label); the heading row is hidden from sight but still
// in the page. On a wide screen the same table is an ordinary table with its headings showing.
async function assertCards(page, label) {
  const tables = await page.locator('main table').evaluateAll((ts) => ts.map((t) => ({
    cards: t.classList.contains('cards'),
    head: t.tHead ? { text: t.tHead.innerText || t.tHead.textContent, height: t.tHead.getBoundingClientRect().height, display: getComputedStyle(t.tHead).display } : null,
    cells: t.tBodies[0] ? [...t.tBodies[0].rows[0].cells].filter((c) => getComputedStyle(c).display !== 'none').map((c) => ({
      label: c.dataset.label || null, before: getComputedStyle(c, '::before').content, left: Math.round(c.getBoundingClientRect().left), action: c.classList.contains('action'),
    })) : [],
  })));
  assert.ok(tables.length > 0, `${label}: a table to check`);
  for (const [i, t] of tables.entries()) {
    const which = `${label}, table ${i + 1}`;
    assert.ok(t.cards, `${which}: the table has class="cards" (so it reflows on a phone)`);
    assert.ok(t.head && t.head.display !== 'none' && t.head.height <= 1, `${which}: the heading row is visually hidden, not removed (${JSON.stringify(t.head)})`);
    const unlabelled = t.cells.filter((c) => !c.label && !c.action);
    assert.deepEqual(unlabelled, [], `${which}: every cell has a data-label naming its column`);
    for (const c of t.cells.filter((x) => x.label)) assert.equal(c.before, `"${c.label}: "`, `${which}: the cell "${c.label}" starts with its heading`);
    assert.equal(new Set(t.cells.map((c) => c.left)).size, 1, `${which}: a row's cells are stacked, one under another (lefts: ${t.cells.map((c) => c.left)})`);
  }
  const size = page.viewportSize();
  await page.setViewportSize({ width: 1024, height: 800 });
  try {
    const wide = await page.locator('main table').evaluateAll((ts) => ts.map((t) => ({
      head: t.tHead.getBoundingClientRect().height, before: t.tBodies[0] ? getComputedStyle(t.tBodies[0].rows[0].cells[0], '::before').content : 'none',
    })));
    for (const [i, w] of wide.entries()) {
      assert.ok(w.head > 10 && w.before === 'none', `${label}, table ${i + 1}: at 1024px the headings show and cells have no label of their own (${JSON.stringify(w)})`);
    }
    assert.ok(await page.getByRole('columnheader').count() > 0, `${label}: at 1024px the table has column headers`);
  } finally {
    await page.setViewportSize(size);
  }
}
