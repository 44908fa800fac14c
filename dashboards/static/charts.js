// Draw every element carrying a plotly figure in data-figure (JSON made by dashboards/figures.py).
(function () {
  "use strict";
  if (typeof Plotly === "undefined") { return; }
  document.querySelectorAll("[data-figure]").forEach(function (el) {
    var fig = JSON.parse(el.getAttribute("data-figure"));
    Plotly.newPlot(el, fig.data, fig.layout, {responsive: true, displaylogo: false}).then(function () {
      el.setAttribute("data-rendered", "1");
    });
  });
})();
