// civicscore console: live updates of the review queue (server-sent events). Plain JavaScript, no build step.
// Every page works without it; with it, the queue refetches its rows whenever a recommendation changes.
(function () {
  "use strict";
  var queue = document.getElementById("queue");
  var status = document.getElementById("live-status");
  if (!queue || !status || !window.EventSource) { return; }
  var period = queue.getAttribute("data-period");
  var rowsUrl = queue.getAttribute("data-rows");
  var pending = null;
  var fetching = false;

  function say(text) { status.textContent = text; }

  function now() {
    var d = new Date(Date.now() + 7 * 3600 * 1000);  // Hanoi time, UTC+7 all year
    function two(n) { return (n < 10 ? "0" : "") + n; }
    return two(d.getUTCHours()) + ":" + two(d.getUTCMinutes()) + ":" + two(d.getUTCSeconds());
  }

  function refresh(changed) {
    if (fetching) { pending = pending || changed || []; return; }
    fetching = true;
    fetch(rowsUrl, { credentials: "same-origin", headers: { "Accept": "text/html" } })
      .then(function (response) {
        if (response.redirected || response.status === 401) { throw new Error("signed-out"); }
        if (!response.ok) { throw new Error("HTTP " + response.status); }
        return response.text();
      })
      .then(function (html) {
        queue.innerHTML = html;
        (changed || []).forEach(function (name) {
          var row = queue.querySelector('tr[data-recommendation="' + CSS.escape(name) + '"]');
          if (row) { row.classList.add("fresh"); }
        });
        say(status.getAttribute("data-live-updated").replace("{when}", now()));
      })
      .catch(function (err) {
        if (String(err.message) === "signed-out") { say(status.getAttribute("data-session-ended")); }
      })
      .finally(function () {
        fetching = false;
        if (pending) { var next = pending; pending = null; refresh(next); }
      });
  }

  var source = new EventSource(queue.getAttribute("data-live-source"));
  source.addEventListener("ready", function () { say(status.getAttribute("data-live-on")); });
  source.addEventListener("change", function (event) {
    var data = JSON.parse(event.data);
    if (data.period === period) { refresh([data.name]); }
  });
  source.addEventListener("end", function (event) {
    var data = JSON.parse(event.data);
    source.close();
    say(data.reason === "signed_out" ? status.getAttribute("data-session-ended") : status.getAttribute("data-live-off"));
  });
  source.onerror = function () { say(status.getAttribute("data-live-off")); };
  source.onopen = function () { say(status.getAttribute("data-live-on")); };
})();
