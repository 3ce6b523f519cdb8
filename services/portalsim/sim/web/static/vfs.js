// The vfs family's single-page app: it draws every view in <app-root> and
// reads everything from /api/{mission}/. Moving between views changes the
// URL with history.pushState, without loading a page.
(function () {
  "use strict";
  var root = document.querySelector("app-root");
  var mission = location.pathname.split("/")[1];
  var seq = 0; // the view drawn last; answers for an older one are dropped

  function h(tag, attrs, kids) {
    var e = document.createElement(tag);
    Object.keys(attrs || {}).forEach(function (k) {
      if (k.slice(0, 2) === "on") { e.addEventListener(k.slice(2), attrs[k]); } else { e.setAttribute(k, attrs[k]); }
    });
    [].concat(kids === undefined ? [] : kids).forEach(function (c) {
      e.appendChild(typeof c === "string" ? document.createTextNode(c) : c);
    });
    return e;
  }

  function cookie(name) {
    var m = document.cookie.match(new RegExp("(?:^|; )" + name + "=([^;]*)"));
    return m ? decodeURIComponent(m[1]) : "";
  }

  function api(method, path, body) {
    var opts = { method: method, credentials: "same-origin", headers: { "Accept": "application/json", "X-XSRF-TOKEN": cookie("XSRF-TOKEN") } };
    if (body) { opts.headers["Content-Type"] = "application/json"; opts.body = JSON.stringify(body); }
    return fetch(path.charAt(0) === "/" ? path : "/api/" + mission + "/" + path, opts).then(function (resp) {
      return resp.json().catch(function () { return null; }).then(function (data) {
        if (resp.ok && data !== null) { return data; }
        var err = new Error("HTTP " + resp.status);
        err.status = resp.status;
        err.data = data;
        throw err;
      });
    });
  }

  function show(kids) { root.replaceChildren.apply(root, [].concat(kids)); }

  // failed draws the error a call answered instead of the view.
  function failed(mine) {
    return function (err) {
      if (mine !== seq) { return; }
      var e = (err.data && err.data.error) || {};
      var title = e.title, text = e.description, kids = [];
      if (err.status === 401) {
        kids.push(h("a", { href: "/" + mission + "/login" }, "Sign in again"));
      } else if (!title) {
        title = "Something went wrong";
        text = "An unexpected error occurred (" + err.message + "). Please try again later.";
      }
      if (e.code === "challenge") {
        kids.push(h("div", { "class": "challenge-widget" }, h("label", {}, [h("input", { type: "checkbox" }), " Verify you are human"])));
      }
      show(h("div", { "class": "error-page" }, [h("h1", {}, title), h("p", {}, text)].concat(kids)));
    };
  }

  function go(view) {
    history.pushState({}, "", "/" + mission + "/" + view);
    draw();
  }

  function cookieBanner() {
    if (cookie("cookie_choice")) { return; }
    var banner;
    function choose(v) { return function () { document.cookie = "cookie_choice=" + v + "; path=/; SameSite=Lax"; banner.remove(); }; }
    banner = h("div", { "class": "cookie-banner", role: "dialog", "aria-label": "Cookie preferences" }, [
      h("p", {}, "We use cookies to make this site work and to understand how it is used."),
      h("button", { type: "button", "class": "btn btn-brand", onclick: choose("all") }, "Accept All Cookies"),
      h("button", { type: "button", "class": "btn btn-outline", onclick: choose("none") }, "Reject All")
    ]);
    document.body.appendChild(banner);
  }

  var views = {
    login: function (mine) {
      var email = h("input", { type: "email", formcontrolname: "username", placeholder: "jane.doe@email.com", autocomplete: "username" });
      var password = h("input", { type: "password", formcontrolname: "password", placeholder: "**********", autocomplete: "current-password" });
      var consent = h("input", { type: "checkbox", formcontrolname: "consent" });
      var alert = h("div", { "class": "alert alert-danger", role: "alert", hidden: "" });
      function say(text) { alert.textContent = text; alert.hidden = !text; }
      var form = h("form", { novalidate: "", onsubmit: function (ev) {
        ev.preventDefault();
        if (!email.value || !password.value) { say("Please enter your email and password."); return; }
        if (!consent.checked) { say("Please accept the terms and conditions."); return; }
        say("");
        api("POST", "login", { username: email.value, password: password.value, consent: true }).then(function () {
          if (mine === seq) { go("dashboard"); }
        }, function (err) {
          if (mine !== seq) { return; }
          if (err.status === 401 || err.status === 400) { say(err.data.error.description); return; }
          failed(mine)(err);
        });
      } }, [
        h("div", { "class": "form-group" }, [h("label", {}, "Email*"), email]),
        h("div", { "class": "form-group" }, [h("label", {}, "Password*"), password]),
        h("label", { "class": "checkbox" }, [consent, " I agree to the terms and conditions and to the processing of my personal data"]),
        alert,
        h("button", { type: "submit", "class": "btn btn-brand" }, "Sign In")
      ]);
      show(h("div", { "class": "login-wrapper" }, [h("h1", {}, "Sign In"), form]));
      cookieBanner();
    },

    dashboard: function (mine) {
      api("GET", "dashboard").then(function (d) {
        if (mine !== seq) { return; }
        show(h("div", { "class": "dashboard" }, [
          h("h1", {}, "Welcome back"),
          h("p", {}, "Signed in as " + d.email + "."),
          h("p", {}, "You have no active bookings for " + d.missionName + "."),
          h("button", { type: "button", "class": "btn btn-brand", onclick: function () { go("application-detail"); } }, "Start New Booking"),
          h("button", { type: "button", "class": "btn btn-link", onclick: signOut }, "Sign Out")
        ]));
      }, failed(mine));
    },

    "application-detail": function (mine) {
      api("GET", "centres").then(function (centres) {
        if (mine !== seq) { return; }
        var step = 0; // the dropdown changed last; answers for an older change are dropped
        function select(name) { return h("select", { formcontrolname: name, disabled: "" }, h("option", { value: "" }, "Select")); }
        var centre = select("centre"), category = select("category"), sub = select("subcategory");
        var result = h("div", { "class": "result", "aria-live": "polite" });
        var next = h("button", { type: "button", "class": "btn btn-brand", disabled: "" }, "Continue");
        function fill(sel, options) {
          sel.replaceChildren(h("option", { value: "" }, "Select"));
          options.forEach(function (o) { sel.appendChild(h("option", { value: o.code }, o.name)); });
          sel.disabled = false;
        }
        function reset(sels) {
          sels.forEach(function (s) { s.replaceChildren(h("option", { value: "" }, "Select")); s.disabled = true; });
          result.replaceChildren();
          next.disabled = true;
        }
        function load(call, then) {
          var mine2 = ++step;
          result.replaceChildren(h("div", { "class": "spinner" }, "Loading…"));
          call.then(function (data) {
            if (mine !== seq || mine2 !== step) { return; }
            result.replaceChildren();
            then(data);
          }, function (err) { if (mine2 === step) { failed(mine)(err); } });
        }
        centre.addEventListener("change", function () {
          reset([category, sub]);
          if (centre.value) {
            load(api("GET", "categories?centre=" + encodeURIComponent(centre.value)), function (d) { fill(category, d); });
          }
        });
        category.addEventListener("change", function () {
          reset([sub]);
          if (category.value) {
            load(api("GET", "subcategories?centre=" + encodeURIComponent(centre.value) + "&category=" + encodeURIComponent(category.value)),
              function (d) { fill(sub, d); });
          }
        });
        sub.addEventListener("change", function () {
          reset([]);
          if (!sub.value) { return; }
          var where = centre.options[centre.selectedIndex].text;
          load(api("POST", "earliest", { centre: centre.value, category: category.value, subcategory: sub.value }), function (d) {
            var m = d.earliestDate && d.earliestDate.match(/^(\d\d)\/(\d\d)\/(\d{4})/);
            if (m) {
              result.replaceChildren(h("div", { "class": "alert alert-info" }, "Earliest available slot for " + where + " is " + m[2] + "-" + m[1] + "-" + m[3]));
              next.disabled = false;
            } else {
              result.replaceChildren(h("div", { "class": "alert alert-warning" }, "No appointment slots are currently available"));
            }
          });
        });
        fill(centre, centres);
        show(h("div", { "class": "booking" }, [
          h("h1", {}, "Appointment Details"),
          h("label", {}, ["Choose your Application Centre*", centre]),
          h("label", {}, ["Choose your appointment category*", category]),
          h("label", {}, ["Choose your sub-category*", sub]),
          result, next
        ]));
      }, failed(mine));
    },

    logout: function (mine) {
      api("POST", "/api/logout").catch(function () { return null; }).then(function () {
        if (mine !== seq) { return; }
        show(h("div", { "class": "login-wrapper" }, [h("h1", {}, "You have signed out"),
          h("a", { href: "/" + mission + "/login" }, "Sign in again")]));
      });
    }
  };

  function signOut() { go("logout"); }

  function draw() {
    var mine = ++seq;
    var view = views[location.pathname.split("/")[2]] || views.login;
    show(h("div", { "class": "app-loading" }, "Loading…"));
    view(mine);
  }

  window.addEventListener("popstate", draw);
  draw();
})();
