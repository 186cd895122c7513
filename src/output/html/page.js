// Filters (host, tag, role, outcome) and highlighting of what held a task back. The page is
// laid out without this script; it only hides and marks elements. The location's hash keeps
// the state (#host=h1&outcome=changed&hl=n3), so a filtered view can be linked to.
(function () {
  var keys = ["host", "tag", "role", "outcome"];
  function wanted() {
    var f = {};
    keys.forEach(function (k) {
      var s = document.getElementById("f-" + k);
      if (s && s.value) f[k] = s.value;
    });
    return f;
  }
  function shows(el, f) {
    var d = el.dataset;
    if (f.host && d.host !== undefined && d.host !== f.host) return false;
    if (f.outcome && d.status !== undefined && d.status !== f.outcome) return false;
    if (f.role && d.role !== undefined && d.role !== f.role) return false;
    if (f.tag && d.tags !== undefined && d.tags.split(" ").indexOf(f.tag) < 0) return false;
    return true;
  }
  function filter() {
    var f = wanted();
    // The attribute, not the property: SVG elements (the graph's rows) have no `hidden`.
    document.querySelectorAll("[data-filter]").forEach(function (el) {
      el.toggleAttribute("hidden", !shows(el, f));
    });
    save();
  }
  function highlight(ids) {
    document.querySelectorAll(".hl").forEach(function (el) { el.classList.remove("hl"); });
    ids.forEach(function (id) {
      var el = document.getElementById(id);
      if (el) el.classList.add("hl");
    });
    document.querySelectorAll("tr[data-hl]").forEach(function (tr) {
      if (ids.length && tr.dataset.hl.split(" ")[0] === ids[0]) tr.classList.add("hl");
    });
    document.body.classList.toggle("highlighting", ids.length > 0);
    current = ids;
    save();
  }
  var current = [];
  function save() {
    var p = new URLSearchParams(wanted());
    if (current.length) p.set("hl", current[0]);
    var h = p.toString();
    if (window.history && history.replaceState) history.replaceState(null, "", h ? "#" + h : location.pathname);
  }
  function load() {
    var p = new URLSearchParams(location.hash.slice(1));
    keys.forEach(function (k) {
      var s = document.getElementById("f-" + k);
      if (s && p.get(k)) s.value = p.get(k);
    });
    filter();
    var hl = p.get("hl");
    var el = hl && document.getElementById(hl);
    if (el && el.dataset.hl) highlight(el.dataset.hl.split(" "));
  }
  keys.forEach(function (k) {
    var s = document.getElementById("f-" + k);
    if (s) s.addEventListener("change", filter);
  });
  document.addEventListener("click", function (e) {
    var el = e.target.closest("[data-hl]");
    highlight(el ? el.dataset.hl.split(" ") : []);
  });
  document.querySelectorAll(".wait[data-hl]").forEach(function (w) {
    w.addEventListener("mouseenter", function () { highlight(w.dataset.hl.split(" ")); });
  });
  load();
})();
