// Progressive enhancement only: every page works without this file.
// Buttons with data-confirm ask before they submit (cancel, erase, disable).
document.addEventListener("submit", function (event) {
  var button = event.submitter;
  if (button && button.dataset.confirm && !window.confirm(button.dataset.confirm)) {
    event.preventDefault();
  }
});
// Forms with data-live-count show how many subscribers the segment rules select, as they
// change. A count starts only after a pause in typing, and a newer one cancels the one
// still running. With many subscribers the first answer is a labelled estimate
// ("pending": the exact count runs on the server); the script asks again until the
// exact count replaces it.
document.querySelectorAll("form[data-live-count]").forEach(function (form) {
  var output = document.getElementById(form.dataset.liveCount);
  var timer = null;
  var running = null;
  function ask(query) {
    if (running) { running.abort(); }
    running = new AbortController();
    fetch(form.dataset.countUrl + "?" + query, { credentials: "same-origin", signal: running.signal })
      .then(function (r) { return r.json(); })
      .then(function (data) {
        if (!data || !output) { return; }
        output.textContent = data.text;
        if (data.pending) { timer = setTimeout(function () { ask(query); }, 2000); }
      })
      .catch(function () {});
  }
  form.addEventListener("input", function () {
    clearTimeout(timer);
    timer = setTimeout(function () {
      var body = new URLSearchParams(new FormData(form));
      body.delete("csrf_token");
      if (output) { output.textContent = "Counting…"; }
      ask(body.toString());
    }, 600);
  });
});
// Live pages (a send's progress, the dashboard while sending) reload themselves while the
// "Refresh every N seconds" box is ticked; without JavaScript the box stays hidden.
(function () {
  var box = document.getElementById("auto-refresh");
  if (!box) { return; }
  box.parentNode.hidden = false;
  var key = "console-auto-refresh";
  if (window.sessionStorage.getItem(key) === "off") { box.checked = false; }
  var seconds = parseInt(box.dataset.seconds, 10) || 5;
  var timer = null;
  function plan() {
    clearTimeout(timer);
    if (box.checked) { timer = setTimeout(function () { window.location.reload(); }, seconds * 1000); }
  }
  box.addEventListener("change", function () {
    window.sessionStorage.setItem(key, box.checked ? "on" : "off");
    plan();
  });
  plan();
})();
// A folder picker where the browser has one (webkitdirectory); without it, or without
// this script, the plain multiple-file field does the same job.
document.querySelectorAll("[data-folder-picker]").forEach(function (box) {
  var input = box.querySelector("input[data-directory]");
  if (!input || !("webkitdirectory" in input)) { return; }
  input.webkitdirectory = true;
  box.hidden = false;
});
