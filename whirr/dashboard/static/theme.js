// Runs before the first paint (loaded in <head>): pick the saved theme, else the system's.
(function () {
  var saved = null;
  try { saved = localStorage.getItem("whirr-theme"); } catch (e) { /* private mode */ }
  var dark = window.matchMedia && window.matchMedia("(prefers-color-scheme: dark)").matches;
  document.documentElement.dataset.theme = saved || (dark ? "dark" : "light");
})();
