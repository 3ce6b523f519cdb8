// Fills the date and time of the schedule page from the days and times
// endpoints when a location is chosen. The page carries no dates itself.
(function () {
  "use strict";
  var form = document.getElementById("appointment-form");
  var facility = document.getElementById("appointments_consulate_appointment_facility_id");
  var date = document.getElementById("appointments_consulate_appointment_date");
  var time = document.getElementById("appointments_consulate_appointment_time");
  var flash = form.querySelector(".flash");
  var base = location.pathname.replace(/\/$/, "");
  var seq = 0;

  function say(text, cls) {
    flash.textContent = text;
    flash.className = "flash " + (cls || "");
    flash.hidden = !text;
  }

  function getJSON(url) {
    return fetch(url, {
      credentials: "same-origin",
      headers: { "Accept": "application/json, text/javascript, */*; q=0.01", "X-Requested-With": "XMLHttpRequest" }
    }).then(function (resp) {
      return resp.json().catch(function () { return null; }).then(function (body) {
        if (!resp.ok || body === null || body.error) {
          var msg = body && body.error ? (body.error.description || body.error) : "Something went wrong (HTTP " + resp.status + ").";
          throw new Error(msg);
        }
        return body;
      });
    });
  }

  function choose() {
    var mine = ++seq;
    date.value = "";
    time.replaceChildren(new Option("", ""));
    if (!facility.value) { say(""); return; }
    say("Loading…", "loading");
    getJSON(base + "/days/" + facility.value + ".json?appointments[expedite]=false").then(function (days) {
      if (mine !== seq) { return; }
      if (!days.length) {
        say("There are no available appointments at the selected location. Please try again later.", "notice");
        return;
      }
      date.value = days[0].date;
      return getJSON(base + "/times/" + facility.value + ".json?date=" + days[0].date + "&appointments[expedite]=false").then(function (t) {
        if (mine !== seq) { return; }
        t.available_times.forEach(function (x) { time.appendChild(new Option(x, x)); });
        say("");
      });
    }).catch(function (err) {
      if (mine === seq) { say(err.message, "error"); }
    });
  }

  facility.addEventListener("change", choose);
})();
