// ECP page behaviour. No inline scripts or handlers anywhere (Content-Security-Policy).
(function () {
  "use strict";

  // Bulk selection on the device lists: select all, count, enable the bulk buttons.
  function setUpBulk(form) {
    var boxes = Array.prototype.slice.call(form.querySelectorAll('input[type=checkbox][name=ids]'));
    var all = form.querySelector("[data-select-all]");
    var count = form.querySelector("#selected-count");
    var buttons = form.querySelectorAll("[data-needs-selection]");
    function refresh() {
      var n = boxes.filter(function (b) { return b.checked; }).length;
      if (count) { count.textContent = n ? n + " selected" : "None selected"; }
      buttons.forEach(function (b) { b.disabled = n === 0; });
      if (all) {
        all.checked = n > 0 && n === boxes.length;
        all.indeterminate = n > 0 && n < boxes.length;
      }
    }
    if (all) {
      all.addEventListener("change", function () {
        boxes.forEach(function (b) { b.checked = all.checked; });
        refresh();
      });
    }
    boxes.forEach(function (b) { b.addEventListener("change", refresh); });
    refresh();
  }

  // Forms that ask before they submit: <form data-confirm="Question?">.
  function setUpConfirm(form) {
    form.addEventListener("submit", function (event) {
      if (!window.confirm(form.getAttribute("data-confirm"))) { event.preventDefault(); }
    });
  }

  // Buttons that ask before they submit: <button data-confirm="Question?">. A bulk button
  // asks with the counts of the selection: {devices} and {users} in data-confirm-bulk.
  function setUpConfirmButtons() {
    document.addEventListener("click", function (event) {
      var button = event.target.closest("button[data-confirm], button[data-confirm-bulk]");
      if (!button) { return; }
      var question = button.getAttribute("data-confirm");
      var bulk = button.getAttribute("data-confirm-bulk");
      if (bulk) {
        var checked = Array.prototype.filter.call(
          button.form.querySelectorAll("input[type=checkbox][name=ids]"),
          function (b) { return b.checked; });
        var users = {};
        checked.forEach(function (b) { users[b.getAttribute("data-mailbox")] = true; });
        var n = checked.length, u = Object.keys(users).length;
        question = bulk
          .replace("{devices}", n + (n === 1 ? " device" : " devices"))
          .replace("{users}", u + (u === 1 ? " user" : " users"));
      }
      if (!window.confirm(question)) { event.preventDefault(); }
    });
  }

  // Rule form: the family picker follows the characteristic; a changed value
  // makes the shown preview stale, so Save waits for a new preview.
  function setUpRuleForm(form) {
    var characteristic = form.querySelector("[name=characteristic]");
    var query = form.querySelector("[name=query_string]");
    if (characteristic && query) {
      characteristic.addEventListener("change", function () {
        query.setAttribute("list", "values-" + characteristic.value);
      });
    }
    var save = form.querySelector("#save-rule");
    var stale = form.querySelector("#preview-stale");
    if (!save) { return; }
    var fields = form.querySelectorAll("input:not([type=hidden]), select, textarea");
    var initial = snapshot();
    function snapshot() {
      return Array.prototype.map.call(fields, function (f) {
        return f.type === "checkbox" || f.type === "radio" ? f.checked : f.value;
      }).join("\u001f");
    }
    function onChange() {
      var changed = snapshot() !== initial;
      save.disabled = changed;
      if (stale) { stale.classList.toggle("d-none", !changed); }
      var preview = form.querySelector("#rule-preview");
      if (preview) { preview.classList.toggle("ecp-stale", changed); }
    }
    fields.forEach(function (f) {
      f.addEventListener("input", onChange);
      f.addEventListener("change", onChange);
    });
  }

  // A rule change running as a job: poll its status, reload once it has finished.
  function setUpJob(job) {
    var url = job.getAttribute("data-job-status");
    if (!url) { return; }
    var elapsed = job.querySelector("#job-elapsed");
    // The bar's width is set here, not in a style attribute (Content-Security-Policy).
    var bar = job.querySelector("#job-progress");
    function show(percent) {
      if (!bar) { return; }
      bar.setAttribute("aria-valuenow", percent);
      var inner = bar.querySelector(".progress-bar");
      inner.style.width = percent + "%";
      inner.textContent = percent + " %";
    }
    if (bar) { show(parseInt(bar.getAttribute("aria-valuenow"), 10) || 0); }
    function poll() {
      fetch(url, { headers: { Accept: "application/json" }, credentials: "same-origin" })
        .then(function (response) { return response.ok ? response.json() : null; })
        .then(function (data) {
          if (data && (data.status === "done" || data.status === "failed")) {
            window.location.reload();
            return;
          }
          if (data && typeof data.progress === "number") { show(data.progress); }
          if (data && elapsed) {
            var m = Math.floor(data.elapsed / 60), s = data.elapsed % 60;
            elapsed.textContent = m ? m + " min " + s + " s" : s + " s";
          }
          window.setTimeout(poll, 2000);
        })
        .catch(function () { window.setTimeout(poll, 2000); });
    }
    window.setTimeout(poll, 2000);
  }

  // A form that came back with errors: the summary at the top takes the focus (a phone
  // scrolls to it, a screen reader reads it); its links put the cursor in their field.
  function setUpErrorSummary(summary) {
    summary.addEventListener("click", function (event) {
      var link = event.target.closest("a[data-field]");
      var field = link && document.getElementById(link.getAttribute("data-field"));
      if (!field) { return; }
      event.preventDefault();
      field.scrollIntoView({ block: "center", behavior: "instant" });
      field.focus();
    });
  }

  document.addEventListener("DOMContentLoaded", function () {
    var summaries = document.querySelectorAll("[data-error-summary]");
    summaries.forEach(setUpErrorSummary);
    if (summaries.length) { summaries[0].focus(); }
    document.querySelectorAll("form.ecp-bulk").forEach(setUpBulk);
    document.querySelectorAll("form[data-confirm]").forEach(setUpConfirm);
    setUpConfirmButtons();
    // The Undo offer goes away when it expires (the server refuses it then anyway).
    var undo = document.getElementById("undo");
    if (undo) {
      var seconds = parseInt(undo.getAttribute("data-undo-seconds"), 10) || 60;
      window.setTimeout(function () { undo.remove(); }, seconds * 1000);
    }
    var ruleForm = document.getElementById("rule-form");
    if (ruleForm) { setUpRuleForm(ruleForm); }
    var job = document.getElementById("job");
    if (job) { setUpJob(job); }
  });
})();
