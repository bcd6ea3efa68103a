// Passkeys: a form marked data-passkey="create" or "get" first fetches a challenge from its
// data-options URL, asks the browser's authenticator, puts the answer in the form's hidden
// "token" and "response" fields, and then posts the form as usual. Served from /static (the
// page's Content-Security-Policy allows scripts from the portal itself only).
(function () {
  'use strict';

  function decode(s) {
    s = s.replace(/-/g, '+').replace(/_/g, '/');
    while (s.length % 4) s += '=';
    const bin = atob(s);
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function encode(buf) {
    const bytes = new Uint8Array(buf);
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function creationOptions(o) {
    const pk = o.publicKey;
    pk.challenge = decode(pk.challenge);
    pk.user.id = decode(pk.user.id);
    (pk.excludeCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return { publicKey: pk };
  }

  function requestOptions(o) {
    const pk = o.publicKey;
    pk.challenge = decode(pk.challenge);
    (pk.allowCredentials || []).forEach(function (c) { c.id = decode(c.id); });
    return { publicKey: pk };
  }

  function registration(c) {
    return {
      id: c.id, rawId: encode(c.rawId), type: c.type, extensions: c.getClientExtensionResults(),
      response: {
        attestationObject: encode(c.response.attestationObject),
        clientDataJSON: encode(c.response.clientDataJSON),
        transports: c.response.getTransports ? c.response.getTransports() : [],
      },
    };
  }

  function assertion(c) {
    return {
      id: c.id, rawId: encode(c.rawId), type: c.type, extensions: c.getClientExtensionResults(),
      response: {
        authenticatorData: encode(c.response.authenticatorData),
        clientDataJSON: encode(c.response.clientDataJSON),
        signature: encode(c.response.signature),
        userHandle: c.response.userHandle ? encode(c.response.userHandle) : null,
      },
    };
  }

  document.querySelectorAll('form[data-passkey]').forEach(function (form) {
    const status = form.querySelector('[data-passkey-status]');
    const say = function (m) { if (status) status.textContent = m; };
    form.addEventListener('submit', async function (ev) {
      ev.preventDefault();
      if (!window.PublicKeyCredential || !navigator.credentials) {
        say('This browser cannot use passkeys. Use another way to sign in.');
        return;
      }
      say('Waiting for your passkey…');
      try {
        const body = new URLSearchParams({ csrf: form.elements.csrf.value });
        const r = await fetch(form.dataset.options, { method: 'POST', body: body, credentials: 'same-origin' });
        const data = await r.json();
        if (!r.ok) { say(data.error || 'Passkeys cannot be used right now.'); return; }
        const answer = form.dataset.passkey === 'create'
          ? registration(await navigator.credentials.create(creationOptions(data.options)))
          : assertion(await navigator.credentials.get(requestOptions(data.options)));
        form.elements.token.value = data.token;
        form.elements.response.value = JSON.stringify(answer);
        form.submit();
      } catch (e) {
        say('The passkey was not used' + (e && e.name === 'NotAllowedError' ? ' (cancelled or timed out)' : '') + '. You can try again.');
      }
    });
  });
})();
