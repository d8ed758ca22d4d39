// medcell: passkeys (WebAuthn) on the sign-in and security pages. Without this file, or in a
// browser without passkeys, those parts stay hidden and the password and codes still work.
"use strict";

(function () {
  function toBytes(text) {
    var b64 = text.replace(/-/g, "+").replace(/_/g, "/");
    var raw = atob(b64 + "===".slice((b64.length + 3) % 4));
    var bytes = new Uint8Array(raw.length);
    for (var i = 0; i < raw.length; i++) { bytes[i] = raw.charCodeAt(i); }
    return bytes.buffer;
  }

  function toText(buffer) {
    var bytes = new Uint8Array(buffer);
    var raw = "";
    for (var i = 0; i < bytes.length; i++) { raw += String.fromCharCode(bytes[i]); }
    return btoa(raw).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function post(url, csrf, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRF-Token": csrf },
      body: JSON.stringify(body || {})
    }).then(function (response) {
      return response.json().then(function (data) {
        if (!response.ok) { throw new Error((data.error && data.error.code) || "failed"); }
        return data;
      });
    });
  }

  function credentialJSON(credential) {
    var r = credential.response;
    var response = { clientDataJSON: toText(r.clientDataJSON) };
    if (r.attestationObject) {
      response.attestationObject = toText(r.attestationObject);
      response.transports = r.getTransports ? r.getTransports() : [];
    } else {
      response.authenticatorData = toText(r.authenticatorData);
      response.signature = toText(r.signature);
      if (r.userHandle) { response.userHandle = toText(r.userHandle); }
    }
    return {
      id: credential.id,
      rawId: toText(credential.rawId),
      type: credential.type,
      response: response,
      clientExtensionResults: credential.getClientExtensionResults(),
      authenticatorAttachment: credential.authenticatorAttachment || undefined
    };
  }

  function descriptors(list) {
    return (list || []).map(function (d) {
      return { type: d.type, id: toBytes(d.id), transports: d.transports };
    });
  }

  function failed(box) {
    var error = box.querySelector("[data-passkey-error]");
    error.hidden = false;
    error.setAttribute("tabindex", "-1");
    error.focus();
  }

  function setupLogin(box) {
    var button = box.querySelector("button");
    var csrf = box.getAttribute("data-csrf");
    box.hidden = false;
    button.addEventListener("click", function () {
      box.querySelector("[data-passkey-error]").hidden = true;
      button.disabled = true;
      post(box.getAttribute("data-options"), csrf).then(function (options) {
        options.challenge = toBytes(options.challenge);
        options.allowCredentials = descriptors(options.allowCredentials);
        return navigator.credentials.get({ publicKey: options });
      }).then(function (credential) {
        return post(box.getAttribute("data-finish"), csrf, credentialJSON(credential));
      }).then(function (done) {
        window.location.assign(done.next);
      }).catch(function () {
        button.disabled = false;
        failed(box);
      });
    });
  }

  function setupRegister(box) {
    var button = box.querySelector("button");
    var name = box.querySelector("input");
    var csrf = box.getAttribute("data-csrf");
    box.hidden = false;
    button.addEventListener("click", function () {
      box.querySelector("[data-passkey-error]").hidden = true;
      button.disabled = true;
      post(box.getAttribute("data-options"), csrf).then(function (options) {
        options.challenge = toBytes(options.challenge);
        options.user.id = toBytes(options.user.id);
        options.excludeCredentials = descriptors(options.excludeCredentials);
        return navigator.credentials.create({ publicKey: options });
      }).then(function (credential) {
        return post(box.getAttribute("data-finish"), csrf, {
          name: name.value, credential: credentialJSON(credential)
        });
      }).then(function (done) {
        window.location.assign(done.next);
      }).catch(function () {
        button.disabled = false;
        failed(box);
      });
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    if (!window.PublicKeyCredential || !navigator.credentials) { return; }
    document.querySelectorAll("[data-passkey-login]").forEach(setupLogin);
    document.querySelectorAll("[data-passkey-register]").forEach(setupRegister);
  });
})();
