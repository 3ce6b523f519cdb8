// Loads the free dates for the chosen centre and category. The page itself
// carries no dates: they come from the JSON endpoint, as on the real portal.
(function () {
  "use strict";
  var page = document.getElementById("slot-page");
  var form = document.getElementById("slot-form");
  var results = document.getElementById("slot-results");
  var mission = page.dataset.mission;
  var seq = 0;

  // Failures the portal answers instead of dates, shown with the same ids
  // as the full-page versions so a checker recognises them.
  var failures = {
    401: ["session-expired", "Your session has expired. Please sign in again."],
    403: ["account-blocked", "This account is blocked."],
    429: ["rate-limited", "Too many requests. Please try again later."],
    503: ["maintenance", "The appointment system is down for maintenance."]
  };

  function el(tag, attrs, text) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) { e.setAttribute(k, attrs[k]); });
    if (text) { e.textContent = text; }
    return e;
  }

  function show(state, nodes) {
    results.replaceChildren.apply(results, nodes);
    results.dataset.state = state;
  }

  function label(date) {
    var d = new Date(date + "T00:00:00Z");
    return d.toLocaleDateString("en-GB", { weekday: "short", day: "numeric", month: "short", year: "numeric", timeZone: "UTC" });
  }

  function render(data) {
    if (!data.slots.length) {
      show("loaded", [el("p", { id: "no-slots", "class": "hint" },
        "No appointment dates are available at " + data.centre + " for " + data.visa_category + ".")]);
      return;
    }
    var list = el("ul", { id: "slot-list" });
    data.slots.forEach(function (s) {
      var li = el("li", { "class": "slot", "data-date": s.date, "data-time": s.time || "" });
      li.appendChild(el("time", { datetime: s.time ? s.date + "T" + s.time : s.date }, label(s.date)));
      if (s.time) { li.appendChild(el("span", {}, s.time)); }
      list.appendChild(li);
    });
    show("loaded", [el("p", { "class": "summary" }, data.slots.length + " dates available at " +
      data.centre + " for " + data.visa_category + "."), list]);
  }

  form.addEventListener("submit", function (ev) {
    ev.preventDefault();
    var mine = ++seq;
    show("loading", [el("p", { "class": "hint" }, "Loading available dates…")]);
    var q = new URLSearchParams({ centre: form.centre.value, visa_category: form.visa_category.value });
    fetch("/api/missions/" + encodeURIComponent(mission) + "/slots?" + q, {
      credentials: "same-origin", headers: { Accept: "application/json" }
    }).then(function (resp) {
      if (mine !== seq) { return; }
      var f = failures[resp.status];
      if (resp.status === 403) {
        return resp.json().then(function (body) {
          if (body.error === "captcha_required") {
            show("error", [el("div", { id: "captcha-challenge", "class": "alert error" }, "Verify you are human to continue.")]);
          } else {
            show("error", [el("div", { id: f[0], "class": "alert error" }, f[1])]);
          }
        });
      }
      if (f) {
        show("error", [el("div", { id: f[0], "class": "alert error" }, f[1])]);
        return;
      }
      if (!resp.ok) { throw new Error("HTTP " + resp.status); }
      return resp.json().then(render);
    }).catch(function (err) {
      if (mine !== seq) { return; }
      show("error", [el("div", { id: "slot-error", "class": "alert error" },
        "Something went wrong while loading dates (" + err.message + ").")]);
    });
  });
})();
