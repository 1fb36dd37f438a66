// The contest's big screen (hub/web/contests.py): poll the ranking every few
// seconds and redraw it; tick the countdown every second in between.
(function () {
  "use strict";
  var screen = document.getElementById("screen");
  var countdown = document.getElementById("countdown");
  var left = Number(countdown.dataset.left) || 0;

  function text(value) { return value === null || value === undefined ? "–" : String(value); }

  function cell(row, value, numeric) {
    var td = document.createElement("td");
    td.textContent = value;
    if (numeric) { td.className = "num"; }
    row.appendChild(td);
  }

  function draw(data) {
    var current = data.current;
    document.getElementById("current").hidden = !current;
    if (current) {
      document.getElementById("act-title").textContent = current.title;
      left = current.seconds_left;
      countdown.textContent = left;
      var row = data.rows.filter(function (r) { return r.act === current.act; })[0];
      document.getElementById("scores-in").textContent = row ? row.scores_in : 0;
    }
    document.getElementById("final").hidden = !data.final;
    if (data.frozen_at) {
      var at = document.getElementById("frozen-at");
      at.dateTime = data.frozen_at;
      at.textContent = new Date(data.frozen_at).toLocaleTimeString("zh-CN", {hour12: false});
    }
    var body = document.getElementById("rows");
    body.textContent = "";
    data.rows.forEach(function (r) {
      var tr = document.createElement("tr");
      tr.className = "rank-" + (r.rank || "");
      cell(tr, text(r.rank));
      cell(tr, r.title);
      cell(tr, r.performers);
      cell(tr, text(r.judge_mean), true);
      cell(tr, text(r.audience_mean) + " (" + r.audience_count + ")", true);
      cell(tr, text(r.total), true);
      body.appendChild(tr);
    });
  }

  function poll() {
    fetch(screen.dataset.url, {credentials: "same-origin", cache: "no-store"})
      .then(function (response) { return response.ok ? response.json() : null; })
      .then(function (data) { if (data) { draw(data); } })
      .catch(function () { /* the next poll tries again */ });
  }

  setInterval(function () {
    if (left > 0) { left -= 1; countdown.textContent = left; }
  }, 1000);
  setInterval(poll, Number(screen.dataset.poll) || 2000);
}());
