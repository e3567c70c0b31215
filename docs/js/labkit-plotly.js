// Draw every plotly figure of a notebook page from its JSON (written by labkit.report.site), with the plotly.js
// bundled into the site: no CDN, works served and from file://.
document.addEventListener("DOMContentLoaded", function () {
  document.querySelectorAll("script.labkit-plotly-figure").forEach(function (node) {
    var target = node.previousElementSibling;
    var fig = JSON.parse(node.textContent);
    window.Plotly.newPlot(target, fig.data, fig.layout, fig.config);
  });
});
