// agilekit funding calls: the application's draft saves itself as you type. Progressive enhancement: without this
// script the form works as before (its "Save draft" button). After a pause in typing (or on a `change`) the form's
// fields, except files and the boxes that remove stored files, are posted to the form's own address with the save
// action and `X-Autosave: 1`; the server answers 204 (stored), 422 (an amount it cannot read; the rest stored) or
// 409 (no longer a draft). The outcome is said in the polite status beside the buttons. It never submits the
// application, never blocks the form, sends no idempotency key, and stops once the form is sent.
(function () {
  "use strict";
  var form = document.getElementById("draft-form");
  var status = document.getElementById("draft-autosave-status");
  if (!form || !status || !window.fetch || !window.URLSearchParams) { return; }

  var PAUSE = 2000;
  var timer = null;
  var busy = false;
  var again = false;
  var stopped = false;
  var last = null;

  function say(text) { status.textContent = text; }

  function now() {
    var lang = document.documentElement.lang || undefined;
    try {
      return new Date().toLocaleTimeString(lang, { hour: "2-digit", minute: "2-digit" });
    } catch (e) {
      return new Date().toLocaleTimeString();
    }
  }

  // The fields as the Save button would send them, less the files, the removal boxes, the key and the buttons.
  function body() {
    var params = new URLSearchParams();
    var els = form.elements;
    for (var i = 0; i < els.length; i++) {
      var el = els[i];
      var type = (el.type || "").toLowerCase();
      if (!el.name || el.disabled || el.name === "key" || el.name === "remove" || el.name === "action") { continue; }
      if (type === "file" || type === "submit" || type === "button" || type === "reset" || type === "image") { continue; }
      if ((type === "checkbox" || type === "radio") && !el.checked) { continue; }
      if (el.tagName === "SELECT" && el.multiple) {
        for (var j = 0; j < el.options.length; j++) {
          if (el.options[j].selected) { params.append(el.name, el.options[j].value); }
        }
        continue;
      }
      params.append(el.name, el.value);
    }
    params.append("action", "save");
    return params.toString();
  }

  function save() {
    timer = null;
    if (stopped) { return; }
    if (busy) { again = true; return; }
    var data = body();
    if (data === last) { return; }
    busy = true;
    fetch(form.getAttribute("action") || window.location.pathname, {
      method: "POST",
      credentials: "same-origin",
      redirect: "manual",
      headers: { "Content-Type": "application/x-www-form-urlencoded", "X-Autosave": "1" },
      body: data
    }).then(function (r) {
      if (stopped) { return; }
      if (r.status === 204) {
        last = data;
        say(status.getAttribute("data-saved").replace("{time}", now()));
      } else if (r.status === 422) {
        last = data;
        say(status.getAttribute("data-not-read"));
      } else if (r.status === 409) {
        stopped = true;
        say(status.getAttribute("data-submitted"));
      } else {
        say(status.getAttribute("data-failed"));
      }
    }, function () {
      if (!stopped) { say(status.getAttribute("data-failed")); }
    }).then(function () {
      busy = false;
      if (again && !stopped) {
        again = false;
        schedule(0);
      }
    });
  }

  function schedule(delay) {
    if (stopped) { return; }
    if (timer !== null) { clearTimeout(timer); }
    timer = setTimeout(save, delay);
  }

  function ignored(target) {
    var type = (target && target.type || "").toLowerCase();
    return !target || !target.name || type === "file" || target.name === "remove";
  }

  form.addEventListener("input", function (e) {
    if (!ignored(e.target)) { schedule(PAUSE); }
  });
  form.addEventListener("change", function (e) {
    if (!ignored(e.target)) { schedule(0); }
  });
  // The form is being sent by one of its buttons: its own request saves (or submits) what is there.
  form.addEventListener("submit", function () {
    stopped = true;
    if (timer !== null) { clearTimeout(timer); timer = null; }
  });
  // Back from the browser's cache (the page shown again after leaving it): saving again.
  window.addEventListener("pageshow", function (e) {
    if (e.persisted) { stopped = false; last = null; }
  });
})();
