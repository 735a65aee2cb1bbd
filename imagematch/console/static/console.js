// imagematch console: progressive enhancement only; every page works without it.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";

  // Forms that ask first (data-confirm).
  document.addEventListener("submit", function (event) {
    var message = event.target.getAttribute("data-confirm");
    if (message && !window.confirm(message)) event.preventDefault();
  });

  // Jobs table: rows still pending or processing refresh themselves (every 1.5 s).
  function pollRows() {
    var rows = document.querySelectorAll("tr[data-inflight]");
    if (!rows.length) return;
    var ids = Array.prototype.map.call(rows, function (r) { return r.getAttribute("data-inflight"); });
    fetch("/ui/jobs/rows?ids=" + ids.join(","), { credentials: "same-origin" })
      .then(function (response) { return response.ok ? response.text() : ""; })
      .then(function (html) {
        if (!html) return;
        var body = document.createElement("tbody");
        body.innerHTML = html;
        Array.prototype.forEach.call(body.querySelectorAll("tr"), function (fresh) {
          var current = document.getElementById(fresh.id);
          if (current) current.replaceWith(fresh);
        });
      })
      .catch(function () {});
  }
  if (document.getElementById("job-rows")) window.setInterval(pollRows, 1500);

  // Jobs table: row selection for "Retry selected"; the highlighted row (a duplicate submit) in view.
  var selectAll = document.getElementById("select-all");
  var bulk = document.getElementById("bulk-form");
  function boxes() { return document.querySelectorAll('#job-rows input[name="ids"]'); }
  function countSelected() {
    var count = Array.prototype.filter.call(boxes(), function (b) { return b.checked; }).length;
    var label = document.getElementById("selected-count");
    if (label) label.textContent = count ? count + (count === 1 ? " job selected" : " jobs selected") : "None selected";
    var button = document.getElementById("retry-selected");
    if (button) button.disabled = !count;
  }
  if (selectAll) {
    selectAll.addEventListener("change", function () {
      Array.prototype.forEach.call(boxes(), function (b) { b.checked = selectAll.checked; });
      countSelected();
    });
    document.addEventListener("change", function (event) { if (event.target.name === "ids") countSelected(); });
    countSelected();
  }
  if (bulk) {
    bulk.addEventListener("submit", function () {
      var include = document.getElementById("include-permanent");
      document.getElementById("selected-include-permanent").value = include && include.checked ? "true" : "false";
    });
  }
  // Health chart on a narrow screen: show its right end (the current hour) first.
  Array.prototype.forEach.call(document.querySelectorAll(".chart-wrap"), function (wrap) {
    wrap.scrollLeft = wrap.scrollWidth;
  });
  var highlighted = document.querySelector("tr.highlight");
  if (highlighted) highlighted.scrollIntoView({ block: "center" });

  // Try page: drop, paste or pick a photo; the results panel is replaced in place.
  var form = document.getElementById("try-form");
  if (!form) return;
  var fileInput = document.getElementById("try-file");
  var zone = document.getElementById("dropzone");
  var results = document.getElementById("results");

  function send(submitter) {
    var action = submitter && submitter.getAttribute("formaction");
    if (action) return false; // "Submit as a job": a normal form post
    var data = new FormData(form);
    results.classList.add("busy");
    results.setAttribute("aria-busy", "true");
    var status = document.getElementById("try-status");
    if (status) status.textContent = "Matching…";
    fetch(form.action, {
      method: "POST", body: data, credentials: "same-origin",
      headers: { "X-Console-Fragment": "1", "X-CSRF-Token": csrf }
    })
      .then(function (response) { return response.text(); })
      .then(function (html) { results.innerHTML = html; })
      .catch(function () { results.innerHTML = '<p class="alert" role="alert">The server could not be reached.</p>'; })
      .then(function () {
        results.classList.remove("busy");
        results.removeAttribute("aria-busy");
        var done = document.getElementById("try-status");
        if (done) done.textContent = "";
      });
    return true;
  }
  form.addEventListener("submit", function (event) {
    if (send(event.submitter)) event.preventDefault();
  });
  function useFile(file) {
    if (!file) return;
    var transfer = new DataTransfer();
    transfer.items.add(file);
    fileInput.files = transfer.files;
    send(null);
  }
  fileInput.addEventListener("change", function () { if (fileInput.files.length) send(null); });
  ["dragenter", "dragover"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.add("over"); });
  });
  ["dragleave", "drop"].forEach(function (name) {
    zone.addEventListener(name, function (event) { event.preventDefault(); zone.classList.remove("over"); });
  });
  zone.addEventListener("drop", function (event) {
    useFile(event.dataTransfer.files[0]);
  });
  document.addEventListener("paste", function (event) {
    var items = (event.clipboardData || {}).items || [];
    for (var i = 0; i < items.length; i++) {
      if (items[i].kind === "file" && items[i].type.indexOf("image/") === 0) { useFile(items[i].getAsFile()); return; }
    }
  });
})();
