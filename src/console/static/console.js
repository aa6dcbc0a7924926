// Keycard console: the only script — "select all" for bulk release. Everything works without it.
document.addEventListener("change", function (e) {
  var all = e.target.closest("input[data-select-all]");
  if (!all) return;
  document.querySelectorAll("input[name='id']").forEach(function (box) { box.checked = all.checked; });
});
