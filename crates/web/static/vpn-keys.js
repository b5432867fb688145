// agilekit VPN: generates a WireGuard key pair in the browser (WebCrypto X25519) so that the private key never
// reaches the server. Progressive enhancement: without this script, or in a browser without X25519, the page
// works as before (paste a public key, or let the server generate one).
(function () {
  "use strict";
  var STORE = "agilekit-vpn-key:";

  function b64urlToB64(s) {
    s = s.replace(/-/g, "+").replace(/_/g, "/");
    while (s.length % 4) { s += "="; }
    return s;
  }

  function generate() {
    return crypto.subtle.generateKey({ name: "X25519" }, true, ["deriveBits"]).then(function (pair) {
      return crypto.subtle.exportKey("jwk", pair.privateKey);
    }).then(function (jwk) {
      // WireGuard keys are the raw 32 bytes in standard base64: JWK's `d` (private) and `x` (public).
      return { priv: b64urlToB64(jwk.d), pub: b64urlToB64(jwk.x) };
    });
  }

  function remember(pub, priv) {
    try { sessionStorage.setItem(STORE + pub, priv); } catch (e) { /* private mode: the user copies the key */ }
  }

  function recall(pub) {
    try { return sessionStorage.getItem(STORE + pub); } catch (e) { return null; }
  }

  // The enrolment form: offer the button where the browser can make X25519 keys, and say so where it cannot
  // (an older browser, or a page not served over HTTPS: no WebCrypto there), pointing to the other two ways.
  var box = document.getElementById("vpn-browser-key");
  var button = document.getElementById("vpn-generate");
  var unsupported = document.getElementById("vpn-browser-key-unsupported");
  function cannot() {
    if (unsupported) { unsupported.hidden = false; }
  }
  if (box && button && !(window.crypto && crypto.subtle)) {
    cannot();
  } else if (box && button) {
    generate().then(function () {
      box.hidden = false;
    }, cannot);
    button.addEventListener("click", function () {
      generate().then(function (k) {
        var field = document.getElementById("f-public_key");
        var device = document.getElementById("f-key_mode-device");
        var out = document.getElementById("vpn-private-key");
        var result = document.getElementById("vpn-browser-key-result");
        if (field) { field.value = k.pub; }
        if (device) { device.checked = true; }
        if (out) { out.value = k.priv; }
        if (result) { result.hidden = false; }
        remember(k.pub, k.priv);
        if (out) { out.focus(); out.select(); }
      });
    });
  }

  // The device page: when this browser made the key, offer the file with the key filled in (built here).
  var pubEl = document.getElementById("vpn-public-key");
  var link = document.getElementById("vpn-download-with-key");
  var conf = document.getElementById("vpn-config");
  if (pubEl && link && conf) {
    var priv = recall(pubEl.getAttribute("data-public-key") || "");
    if (priv) {
      var text = conf.textContent.replace(/^# PrivateKey = .*$/m, "PrivateKey = " + priv);
      link.href = URL.createObjectURL(new Blob([text], { type: "text/plain" }));
      link.setAttribute("download", "agilekit-vpn.conf");
      link.hidden = false;
    }
  }
})();
