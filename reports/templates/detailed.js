/* Filters of detailed.html. Without JavaScript the form stays hidden and every requirement shows.
   Only textContent and DOM nodes are used: no string from the run is ever parsed as markup. */
(function () {
  "use strict";
  var form = document.getElementById("filters");
  var data = document.getElementById("facets");
  if (!form || !data) { return; }
  var facets = JSON.parse(data.textContent);
  var fields = form.elements;
  var shown = document.getElementById("shown");
  var sections = Array.prototype.slice.call(document.querySelectorAll("section.req"));
  var texts = new WeakMap();

  function fill(select, values) {
    values.forEach(function (entry) {
      var option = document.createElement("option");
      var pair = Array.isArray(entry) ? entry : [entry, entry];
      option.value = pair[0];
      option.textContent = pair[1];
      select.appendChild(option);
    });
  }

  function text(section) {
    var cached = texts.get(section);
    if (cached === undefined) {
      cached = section.textContent.toLowerCase();
      texts.set(section, cached);
    }
    return cached;
  }

  function apply() {
    var status = fields.status.value;
    var service = fields.service.value;
    var suite = fields.suite.value;
    var query = fields.q.value.trim().toLowerCase();
    var count = 0;
    var total = 0;
    sections.forEach(function (section) {
      var requirement = section.id !== "";
      var visible = (!status || section.dataset.status === status) && (!service || section.dataset.service === service);
      var items = section.querySelectorAll("article.item");
      var anyItem = false;
      Array.prototype.forEach.call(items, function (item) {
        var match = !suite || item.dataset.suite === suite;
        item.hidden = !match;
        anyItem = anyItem || match;
      });
      if (suite && !anyItem) { visible = false; }
      if (visible && query) { visible = text(section).indexOf(query) !== -1; }
      section.hidden = !visible;
      if (requirement) {
        total += 1;
        if (visible) { count += 1; }
      }
    });
    shown.textContent = count + " of " + total + " requirements shown";
  }

  var timer = null;
  function later() {
    window.clearTimeout(timer);
    timer = window.setTimeout(apply, 150);
  }

  fill(fields.status, facets.statuses);
  fill(fields.service, facets.services);
  fill(fields.suite, facets.suites);
  form.addEventListener("change", apply);
  form.addEventListener("input", later);
  form.addEventListener("submit", function (event) { event.preventDefault(); });
  form.addEventListener("reset", function () { window.setTimeout(apply, 0); });

  /* A link to evidence a filter hides clears the filters, then opens and shows its target. */
  document.addEventListener("click", function (event) {
    var link = event.target.closest ? event.target.closest("a[href^='#']") : null;
    if (!link) { return; }
    var target = document.getElementById(decodeURIComponent(link.getAttribute("href").slice(1)));
    if (!target) { return; }
    if (target.closest("[hidden]")) {
      form.reset();
      apply();
    }
    for (var node = target.parentElement; node; node = node.parentElement) {
      if (node.tagName === "DETAILS") { node.open = true; }
    }
  });

  form.hidden = false;
  apply();
})();
