// Passkey ceremonies of form#passkey-register, form#passkey-challenge and the identify page's
// passwordless form#passwordless-signin (DESIGN §10): reads the options the server put in
// script#passkey-options (or #passkey-signin-options), asks navigator.credentials, puts the
// credential (its JSON, base64url-encoded) into the hidden field `credential` and submits.
(function () {
  "use strict";
  var passwordless = document.getElementById("passwordless-signin");
  var form = passwordless || document.getElementById("passkey-register") || document.getElementById("passkey-challenge");
  var button = document.getElementById(passwordless ? "passkey-signin" : "passkey-start");
  var data = document.getElementById(passwordless ? "passkey-signin-options" : "passkey-options");
  var status = document.getElementById("passkey-status");
  if (!form || !button || !data) {
    return;
  }
  var register = form.id === "passkey-register";

  function say(text) {
    if (status) {
      status.textContent = text;
      status.hidden = false;
    }
  }

  function fromB64u(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) {
      s += "=";
    }
    var bin = atob(s);
    var out = new Uint8Array(bin.length);
    for (var i = 0; i < bin.length; i++) {
      out[i] = bin.charCodeAt(i);
    }
    return out.buffer;
  }

  function toB64u(buf) {
    var bytes = new Uint8Array(buf);
    var bin = "";
    for (var i = 0; i < bytes.length; i++) {
      bin += String.fromCharCode(bytes[i]);
    }
    return btoa(bin).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function ids(list) {
    (list || []).forEach(function (c) {
      c.id = fromB64u(c.id);
    });
  }

  button.addEventListener("click", function (ev) {
    ev.preventDefault();
    if (!window.PublicKeyCredential || !navigator.credentials) {
      say("This browser does not support passkeys.");
      return;
    }
    var pk = JSON.parse(data.textContent).publicKey;
    pk.challenge = fromB64u(pk.challenge);
    var ask;
    if (register) {
      pk.user.id = fromB64u(pk.user.id);
      ids(pk.excludeCredentials);
      ask = navigator.credentials.create({ publicKey: pk });
    } else {
      ids(pk.allowCredentials);
      ask = navigator.credentials.get({ publicKey: pk });
    }
    ask.then(function (cred) {
      var r = cred.response;
      var out = { id: cred.id, rawId: toB64u(cred.rawId), type: cred.type, extensions: {}, response: {} };
      out.response.clientDataJSON = toB64u(r.clientDataJSON);
      if (register) {
        out.response.attestationObject = toB64u(r.attestationObject);
      } else {
        out.response.authenticatorData = toB64u(r.authenticatorData);
        out.response.signature = toB64u(r.signature);
        out.response.userHandle = r.userHandle ? toB64u(r.userHandle) : null;
      }
      form.elements.credential.value = toB64u(new TextEncoder().encode(JSON.stringify(out)));
      form.submit();
    }).catch(function () {
      say("The passkey was not used (cancelled or not available). Try again.");
    });
  });
})();
