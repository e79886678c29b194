// Keyboard-only labeling: digits answer the questions in order, Enter submits, s skips, Backspace steps back,
// r / c jump to the rationale / correction, Esc leaves a text box. Hand-written, no dependencies.
(function () {
  var form = document.getElementById("answer");
  if (!form) return;
  var dims = Array.prototype.slice.call(form.querySelectorAll("fieldset.dim"));
  var at = 0;
  function show() { dims.forEach(function (d, i) { d.classList.toggle("active", i === at); }); }
  function typing(e) { var t = e.target.tagName; return t === "TEXTAREA" || t === "INPUT" && e.target.type !== "radio"; }
  document.addEventListener("keydown", function (e) {
    if (e.ctrlKey || e.metaKey || e.altKey) return;
    if (typing(e)) { if (e.key === "Escape") { e.target.blur(); } return; }
    if (/^[1-9]$/.test(e.key) && at < dims.length) {
      var n = parseInt(e.key, 10), top = parseInt(dims[at].dataset.top, 10);
      if (n > top) return;
      dims[at].querySelectorAll("input[type=radio]")[n - 1].checked = true;
      at = Math.min(at + 1, dims.length); show(); e.preventDefault();
    } else if (e.key === "Backspace") { at = Math.max(0, at - 1); show(); e.preventDefault(); }
    else if (e.key === "Enter") { HTMLFormElement.prototype.submit.call(form); e.preventDefault(); }
    else if (e.key === "s") { var sk = document.getElementById("skip"); if (sk) { HTMLFormElement.prototype.submit.call(sk); e.preventDefault(); } }
    else if (e.key === "r" || e.key === "c") {
      var box = document.getElementById(e.key === "r" ? "rationale" : "correction");
      if (box) { box.focus(); e.preventDefault(); }
    }
  });
  show();
})();
