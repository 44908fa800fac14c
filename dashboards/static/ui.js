// Small behaviours without inline scripts (the CSP forbids them): auto-submitting filter selects,
// "select all" on the unregistered table, and site/target choices that follow the chosen project/kind.
(function () {
  "use strict";
  // Filter forms: leave empty fields out of the URL so links stay short and shareable.
  document.querySelectorAll("form.filters[method='get']").forEach(function (form) {
    form.addEventListener("submit", function () {
      Array.prototype.forEach.call(form.elements, function (el) {
        if (el.name && el.value === "") { el.disabled = true; }
      });
    });
  });
  document.querySelectorAll("select.autosubmit").forEach(function (sel) {
    sel.addEventListener("change", function () { if (sel.form) { sel.form.requestSubmit(); } });
  });
  var all = document.getElementById("select-all");
  if (all) {
    all.addEventListener("change", function () {
      document.querySelectorAll("input.row-select").forEach(function (box) { box.checked = all.checked; });
    });
  }
  function follow(masterId, slaveId, attr) {
    var master = document.getElementById(masterId), slave = document.getElementById(slaveId);
    if (!master || !slave) { return; }
    function update() {
      var first = null;
      Array.prototype.forEach.call(slave.options, function (opt) {
        var owner = opt.getAttribute(attr);
        var show = owner === null || owner === master.value;
        opt.hidden = !show; opt.disabled = !show;
        if (show && first === null && owner !== null) { first = opt; }
      });
      var cur = slave.options[slave.selectedIndex];
      if (!cur || cur.disabled) { slave.value = first ? first.value : ""; }
    }
    master.addEventListener("change", update);
    update();
  }
  follow("assign-project", "assign-site", "data-project");
  follow("schedule-kind", "schedule-target", "data-kind");
})();
