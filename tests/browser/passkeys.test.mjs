// Passkeys in real Chromium, with its virtual authenticator (DevTools protocol
// `WebAuthn.addVirtualAuthenticator`: a platform authenticator with resident keys and user
// verification): the first operator registers a passkey as their second factor, signs in with it
// alone and as the second step after their password; an answer replayed, or sent to a newer
// challenge, is refused. Then the portal's log is checked for the tokens and cookies used.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { assertNoSecretLogged, checkPage, enterCodeAtSignIn, keepSecret, launch, person, scanSummary, scans, startPortal } from './harness.mjs';

const PASSWORD = 'correct horse battery staple';
keepSecret(PASSWORD, 'the password');
let portal;
let browser;

before(async () => {
  // Passkeys need the portal to be reached by name.
  portal = await startPortal({}, 'localhost');
  browser = await launch();
});

after(async () => {
  await browser?.close();
  await portal?.stop();
  console.log(`pages scanned with axe-core: ${scans.length}; by method, route and status:\n${scanSummary()}`);
});

async function signOut(page) {
  await page.getByRole('button', { name: /Sign out/ }).click();
  await page.getByRole('heading', { name: 'You have signed out' }).waitFor();
  await page.goto(`${portal.base}/signin`);
}

test('passkeys: register, sign in with one alone and as the second step; replays are refused', async () => {
  const op = await person(browser);
  const cdp = await op.context.newCDPSession(op.page);
  await cdp.send('WebAuthn.enable');
  await cdp.send('WebAuthn.addVirtualAuthenticator', {
    options: { protocol: 'ctap2', transport: 'internal', hasResidentKey: true, hasUserVerification: true, isUserVerified: true },
  });

  // The first operator activates and, confined to sign-in security, adds a passkey.
  assert.equal(portal.firstAddress, `${portal.base}/activate`, `the first-start address uses the portal's name`);
  await enterCodeAtSignIn(op.page, portal, portal.firstCode);
  await op.page.getByLabel('Your name').fill('Olivia Operator');
  await op.page.getByLabel('Your email address').fill('olivia@tiaki.test');
  await op.page.getByLabel('New password').fill(PASSWORD);
  await op.page.getByLabel('Type the password again').fill(PASSWORD);
  await op.page.getByRole('button', { name: 'Set password and continue' }).click();
  await op.page.waitForURL('**/account/security');
  await checkPage(op.page, 'security: passkeys offered');
  await op.page.getByLabel('Name for the new passkey').fill('Work laptop');
  await op.page.getByRole('button', { name: 'Add a passkey' }).click();
  await op.page.getByText('Your passkey is ready').waitFor();
  await op.page.getByText('Your recovery codes').waitFor();
  await checkPage(op.page, 'security: passkey added, recovery codes');
  await op.page.goto(`${portal.base}/operator`);
  assert.match(await op.page.content(), /Practices/, 'the passkey is the operator’s second factor: the operator pages open');
  // With a passkey of their own, the operator requires passkeys of operators and practice admins.
  await op.page.getByRole('button', { name: 'Require passkeys' }).click();
  // Adding a passkey is not signing in with it (review #3): this session, proved when the
  // passkey was registered, is held back until the operator signs in again with the passkey.
  await op.page.waitForURL('**/account/security');
  await op.page.getByText('Your role must sign in with a passkey').waitFor();
  await checkPage(op.page, 'security: passkeys required, sign in again with one');

  // Sign in with the passkey alone.
  await signOut(op.page);
  await op.page.getByRole('button', { name: 'Sign in with a passkey' }).click();
  await op.page.waitForURL('**/operator');
  await checkPage(op.page, 'operator after passkey sign-in');

  // Password, then the passkey as the second step.
  await signOut(op.page);
  await op.page.getByLabel('Email address').fill('olivia@tiaki.test');
  await op.page.getByLabel('Password').fill(PASSWORD);
  await op.page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await op.page.waitForURL('**/signin/verify');
  await checkPage(op.page, 'second step: passkey offered');
  await op.page.getByRole('button', { name: 'Use my passkey' }).click();
  await op.page.waitForURL('**/operator');

  // Replays: one real answer, sent to a newer challenge, then to its own (once, then again).
  await signOut(op.page);
  const got = await op.page.evaluate(async () => {
    const dec = (s) => Uint8Array.from(atob(s.replace(/-/g, '+').replace(/_/g, '/') + '==='.slice((s.length + 3) % 4)), (c) => c.charCodeAt(0)).buffer;
    const enc = (b) => btoa(String.fromCharCode(...new Uint8Array(b))).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
    const csrf = document.querySelector('form[data-passkey] input[name=csrf]').value;
    const options = async () => (await fetch('/signin/passkey/options', { method: 'POST', body: new URLSearchParams({ csrf }) })).json();
    const first = await options();
    const pk = first.options.publicKey;
    pk.challenge = dec(pk.challenge);
    const c = await navigator.credentials.get({ publicKey: pk });
    const answer = JSON.stringify({
      id: c.id, rawId: enc(c.rawId), type: c.type, extensions: {},
      response: {
        authenticatorData: enc(c.response.authenticatorData), clientDataJSON: enc(c.response.clientDataJSON),
        signature: enc(c.response.signature), userHandle: enc(c.response.userHandle),
      },
    });
    const second = await options();
    return { csrf, answer, first: first.token, second: second.token };
  });
  keepSecret(got.first, 'a sign-in challenge token');
  keepSecret(got.second, 'a sign-in challenge token');
  const post = (csrf, token) => op.page.request.post(`${portal.base}/signin/passkey`, {
    form: { csrf, token, response: got.answer }, maxRedirects: 0,
  });
  const stale = await post(got.csrf, got.second);
  assert.equal(stale.status(), 401, 'an answer to an older challenge is refused by a newer one');
  assert.match(await stale.text(), /could not be used|expired or was already used/);
  const once = await post(got.csrf, got.first);
  assert.equal(once.status(), 303, 'the answer to its own challenge signs in, once');
  await op.context.clearCookies();
  await op.page.goto(`${portal.base}/signin`);
  const csrf = await op.page.locator('form[data-passkey] input[name=csrf]').inputValue();
  const again = await post(csrf, got.first);
  assert.equal(again.status(), 401, 'the same answer again is refused: its challenge is used up');
  assert.match(await again.text(), /expired or was already used/);
});

test('the portal logged none of the tokens, cookies or passwords the browser used', async () => {
  const { records, secrets } = await assertNoSecretLogged(portal, browser, ['/activate', '/signin/passkey']);
  console.log(`log checked: ${records} JSON records, none holding any of ${secrets} secrets`);
});
