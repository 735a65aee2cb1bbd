// imagematch console: label an answer (issue #23) and triage the review queue (issue #24).
// Buttons live inside an element with data-job; labels go to POST/DELETE /v1/jobs/{id}/feedback.
(function () {
  "use strict";
  var csrf = (document.querySelector('meta[name="csrf-token"]') || {}).content || "";
  var VERDICTS = { confirmed: "Confirmed", corrected: "Corrected to", not_in_catalog: "Not in catalog", unusable: "Photo unusable" };

  function api(method, url, body) {
    var init = { method: method, credentials: "same-origin", headers: { "X-CSRF-Token": csrf, "Accept": "application/json" } };
    if (body) { init.body = JSON.stringify(body); init.headers["Content-Type"] = "application/json"; }
    return fetch(url, init).then(function (response) {
      if (response.status === 204) return null;
      return response.json().catch(function () { return {}; }).then(function (data) {
        if (!response.ok) throw new Error(typeof data.detail === "string" ? data.detail : "The label was not saved (HTTP " + response.status + ").");
        return data;
      });
    });
  }

  function showLabel(box, label) {
    var line = box.querySelector(".current-label");
    var text = box.querySelector(".label-text");
    if (!label) { line.hidden = true; text.textContent = ""; return; }
    text.textContent = "";
    var strong = document.createElement("strong");
    strong.textContent = VERDICTS[label.verdict] || label.verdict;
    text.appendChild(strong);
    if (label.product_id) text.appendChild(document.createTextNode(" " + label.product_id));
    var who = document.createElement("span");
    who.className = "muted";
    who.textContent = " by " + (label.agent_name || label.given_by || "you") + ", just now";
    text.appendChild(who);
    line.hidden = false;
  }

  function showError(box, message) {
    var alert = box.querySelector(".label-error");
    alert.textContent = message || "";
    alert.hidden = !message;
  }

  function scopeOf(element) { return element.closest("[data-job]"); }

  function label(scope, verdict, productId) {
    var box = scope.querySelector(".labeller");
    var job = scope.getAttribute("data-job");
    showError(box, "");
    scope.classList.add("busy");
    return api("POST", "/v1/jobs/" + job + "/feedback", { verdict: verdict, product_id: productId || null, comment: null })
      .then(function (saved) {
        showLabel(box, saved);
        scope.dispatchEvent(new CustomEvent("labelled", { bubbles: true, detail: saved }));
      })
      .catch(function (error) { showError(box, error.message); })
      .then(function () { scope.classList.remove("busy"); });
  }

  function undo(scope) {
    var box = scope.querySelector(".labeller");
    api("DELETE", "/v1/jobs/" + scope.getAttribute("data-job") + "/feedback")
      .then(function () { showLabel(box, null); })
      .catch(function (error) { showError(box, error.message); });
  }

  // The "Another product…" picker: search-as-you-type over GET /v1/products?q=.
  function openPicker(scope) {
    var picker = scope.querySelector(".picker");
    picker.hidden = false;
    scope.querySelector(".other").setAttribute("aria-expanded", "true");
    picker.querySelector("input").focus();
  }
  var pending = null;
  function search(input) {
    var list = input.parentNode.querySelector(".picker-list");
    window.clearTimeout(pending);
    pending = window.setTimeout(function () {
      var q = input.value.trim();
      if (!q) { list.innerHTML = ""; return; }
      fetch("/v1/products?limit=8&q=" + encodeURIComponent(q), { credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : { products: [] }; })
        .then(function (data) {
          list.innerHTML = "";
          (data.products || []).forEach(function (product) {
            var item = document.createElement("li");
            var button = document.createElement("button");
            button.type = "button";
            button.className = "picker-option";
            button.setAttribute("role", "option");
            button.setAttribute("data-product", product.id);
            button.textContent = (product.name || product.id) + " · " + product.id + (product.category ? " · " + product.category : "");
            item.appendChild(button);
            list.appendChild(item);
          });
          if (!list.children.length) list.innerHTML = '<li class="muted small">No product matches “' + q.replace(/[<&>"]/g, "") + "”.</li>";
          input.setAttribute("aria-expanded", "true");
        })
        .catch(function () {});
    }, 150);
  }

  document.addEventListener("click", function (event) {
    var target = event.target.closest("button");
    if (!target) return;
    var scope = scopeOf(target);
    if (!scope || !scope.querySelector(".labeller")) return;
    if (target.classList.contains("pick")) {
      label(scope, target.getAttribute("data-verdict"), target.getAttribute("data-product"));
    } else if (target.classList.contains("picker-option")) {
      var chosen = target.getAttribute("data-product");
      var inAnswer = Array.prototype.some.call(scope.querySelectorAll(".pick[data-product]"), function (b) {
        return b.getAttribute("data-product") === chosen;
      });
      var verdict = inAnswer ? "confirmed" : "corrected"; // "confirmed": one of our top-5 is right
      scope.querySelector(".picker").hidden = true;
      label(scope, verdict, chosen);
    } else if (target.classList.contains("other")) {
      openPicker(scope);
    } else if (target.classList.contains("undo")) {
      undo(scope);
    }
  });
  document.addEventListener("input", function (event) {
    if (event.target.classList.contains("picker-input")) search(event.target);
  });
  document.addEventListener("keydown", function (event) {
    var input = event.target;
    if (!input.classList || !input.classList.contains("picker-input")) return;
    if (event.key === "Escape") { input.closest(".picker").hidden = true; event.stopPropagation(); }
    if (event.key === "Enter" || event.key === "ArrowDown") {
      var option = input.parentNode.querySelector(".picker-option");
      if (option) { event.preventDefault(); if (event.key === "Enter") option.click(); else option.focus(); }
    }
  });

  // The review queue: one item at a time, keyboard triage, moves on once labelled.
  var review = document.getElementById("review");
  if (!review) return;
  review.classList.add("js");
  var remaining = document.getElementById("remaining");
  function items() { return Array.prototype.slice.call(review.querySelectorAll(".review-item")); }
  function current() { return review.querySelector(".review-item.current"); }
  function show(item) {
    items().forEach(function (each) { each.classList.toggle("current", each === item); });
    var done = document.getElementById("review-done");
    if (done) done.hidden = Boolean(item);
  }
  function step(delta) {
    var all = items(), at = all.indexOf(current());
    var next = all[Math.min(Math.max(at + delta, 0), all.length - 1)];
    if (next) show(next);
  }
  show(items()[0] || null);
  review.addEventListener("labelled", function (event) {
    var item = event.target.closest(".review-item");
    if (!item) return;
    var count = Math.max(0, parseInt(remaining.getAttribute("data-remaining"), 10) - 1);
    remaining.setAttribute("data-remaining", String(count));
    remaining.textContent = count + (count === 1 ? " photo" : " photos") + " to review";
    var all = items(), at = all.indexOf(item);
    var next = all[at + 1] || all[at - 1] || null;
    window.setTimeout(function () { item.remove(); show(next); }, 250);
  });
  document.addEventListener("keydown", function (event) {
    var tag = (event.target.tagName || "").toLowerCase();
    if (tag === "input" || tag === "textarea" || tag === "select" || event.ctrlKey || event.metaKey || event.altKey) return;
    var item = current();
    if (!item) return;
    var key = event.key;
    var picks = item.querySelectorAll(".pick[data-product]");
    if (key >= "1" && key <= "5" && picks[Number(key) - 1]) picks[Number(key) - 1].click();
    else if (key === "o") { event.preventDefault(); openPicker(item); }
    else if (key === "n") item.querySelector('.pick[data-verdict="not_in_catalog"]').click();
    else if (key === "u") item.querySelector('.pick[data-verdict="unusable"]').click();
    else if (key === "j") step(1);
    else if (key === "k") step(-1);
    else if (key === "Enter" && tag !== "button" && tag !== "a") window.location.href = "/ui/jobs/" + item.getAttribute("data-job");
    else return;
    event.preventDefault();
  });
})();
