/* wanmock dashboard: live regions over server-sent events, and forms over the control API.
   Data only ever reaches the page as text (textContent) or as HTML the server rendered with
   autoescaping; nothing here builds markup from values. No dependencies, no network but this
   server. */
"use strict";
(function () {
  var busy = false, again = false;

  function indicator(text, cls) {
    var el = document.getElementById("live");
    if (el) { el.textContent = text; el.className = "live " + cls; }
  }

  /* Someone is filling a field in this region: leave it alone until they are done. */
  function typing(region) {
    var el = document.activeElement;
    return !!el && region.contains(el) && /^(INPUT|SELECT|TEXTAREA)$/.test(el.tagName);
  }

  /* Details the reader opened (or closed) stay so when their region is swapped. */
  function keepOpen(old, next) {
    old.querySelectorAll("details[id]").forEach(function (d) {
      var twin = next.querySelector("#" + CSS.escape(d.id));
      if (twin) { twin.open = d.open; }
    });
  }

  /* Fetch this page again and swap each live region whose version changed. */
  function refresh() {
    if (busy) { again = true; return; }
    busy = true;
    fetch(location.href, { cache: "no-store" })
      .then(function (r) { return r.ok ? r.text() : Promise.reject(r.status); })
      .then(function (html) {
        var doc = new DOMParser().parseFromString(html, "text/html");
        doc.querySelectorAll("[data-live]").forEach(function (fresh) {
          var name = fresh.getAttribute("data-live");
          var old = document.querySelector('[data-live="' + CSS.escape(name) + '"]');
          if (old && old.getAttribute("data-version") !== fresh.getAttribute("data-version")
              && !typing(old)) {
            var next = document.importNode(fresh, true);
            keepOpen(old, next);
            old.replaceWith(next);
          }
        });
        var clock = doc.querySelector(".clock"), here = document.querySelector(".clock");
        if (clock && here) { here.textContent = clock.textContent; }
        document.body.setAttribute("data-version", doc.body.getAttribute("data-version") || "");
      })
      .catch(function () { /* the server went away: the stream says so */ })
      .then(function () {
        busy = false;
        if (again) { again = false; refresh(); }
      });
  }

  function listen() {
    var url = document.body.getAttribute("data-events");
    if (!url || !window.EventSource) { return; }
    var source = new EventSource(url);
    source.addEventListener("version", function (ev) {
      indicator("● live", "on");
      var version = JSON.parse(ev.data).version;
      if (version !== document.body.getAttribute("data-version")) { refresh(); }
    });
    source.addEventListener("error", function () { indicator("○ reconnecting", "off"); });
    window.addEventListener("pagehide", function () { source.close(); });
  }

  /* A form with data-api: its fields as a JSON object ("match.family" nests, data-type=number
     converts, empty fields are left out, data-path fields fill {name} in the URL). */
  function submitApi(form) {
    var url = form.getAttribute("data-api"), body = {}, hasBody = false;
    var method = form.getAttribute("data-method") || "POST";
    var out = form.querySelector("output");
    var question = form.getAttribute("data-confirm");
    if (question && !window.confirm(question)) { return; }
    form.querySelectorAll("input[name], select[name], textarea[name]").forEach(function (field) {
      var name = field.name, value = field.value.trim();
      if (field.hasAttribute("data-path")) {
        url = url.replace("{" + name + "}", encodeURIComponent(value));
        return;
      }
      if (value === "") { return; }
      var typed = field.getAttribute("data-type") === "number" ? Number(value) : value;
      var parts = name.split("."), node = body;
      for (var i = 0; i < parts.length - 1; i++) { node = node[parts[i]] = node[parts[i]] || {}; }
      node[parts[parts.length - 1]] = typed;
      hasBody = true;
    });
    var init = { method: method, headers: {} };
    if (method !== "GET" && method !== "DELETE") {
      init.headers["Content-Type"] = "application/json";
      init.body = JSON.stringify(hasBody ? body : {});
    }
    fetch(url, init).then(function (r) {
      return r.text().then(function (text) {
        if (out) {
          out.textContent = r.status + " " + text.slice(0, 600);
          out.className = r.ok ? "ok" : "bad";
        }
        if (r.ok) { refresh(); }
      });
    }).catch(function (err) {
      if (out) { out.textContent = "failed: " + err; out.className = "bad"; }
    });
  }

  document.addEventListener("submit", function (ev) {
    var form = ev.target;
    if (form.hasAttribute && form.hasAttribute("data-api")) {
      ev.preventDefault();
      submitApi(form);
    } else if (form.method === "get") {
      /* keep shared URLs short: empty filters stay out of the query string */
      form.querySelectorAll("input[name], select[name]").forEach(function (field) {
        if (field.value === "") { field.disabled = true; }
      });
    }
  });
  document.addEventListener("change", function (ev) {
    var form = ev.target.form;
    if (form && form.hasAttribute("data-autosubmit") && ev.target.tagName === "SELECT") {
      form.requestSubmit();
    }
  });
  document.addEventListener("DOMContentLoaded", listen);
})();
