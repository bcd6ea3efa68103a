// The newcomer's journey in a real browser: first operator → practice → admin → staff →
// patient activation from the email → sign in → sign out; and a second patient cannot open the
// first patient's pages.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { createHmac } from 'node:crypto';
import { checkPage, launch, linkFromMail, person, scanned, startPortal } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
let portal;
let browser;

before(async () => {
  portal = await startPortal();
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
  console.log(`pages scanned with axe-core: ${scanned.length} (${[...new Set(scanned)].join(', ')})`);
});

async function setPassword(page, label) {
  await checkPage(page, label);
  await page.getByLabel('New password').fill(PASSWORD);
  await page.getByLabel('Type the password again').fill(PASSWORD);
  await page.getByRole('button', { name: 'Set password and continue' }).click();
}

test('operator → practice → staff → patient activates, signs in and out; another patient is kept out', async () => {
  assert.ok(portal.firstLink, 'serve printed a first-start link');
  const seen = new Set();

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
  for (const [nhi, name, email] of [['ZZZ0016', 'Aroha Patient', 'aroha@patients.test'], ['ZBN77VL', 'Ben Other', 'ben@patients.test']]) {
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
  await aroha.page.goto(await linkFromMail(portal, 'aroha@patients.test', seen));
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

async function assertVisible(page, text) {
  await page.getByText(text, { exact: false }).first().waitFor({ state: 'visible', timeout: 10000 });
}
