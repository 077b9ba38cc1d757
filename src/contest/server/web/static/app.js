// The job page's grid. A click (or Enter/Space) on a cell loads that target's events in that
// step into the detail panel; the arrow keys move between cells. One listener each for the
// whole page (a grid holds hundreds of cells and is redrawn live), no inline script (a
// Content-Security-Policy may forbid them).
"use strict";

function cellUrl(button) {
  var table = button.closest("table.grid");
  var col = Number(button.dataset.col);
  var step = table.tHead.rows[0].cells[col + 1].dataset.step;
  return table.dataset.cellUrl + "&step=" + encodeURIComponent(step) +
    "&target=" + encodeURIComponent(button.closest("tr").dataset.target);
}

document.addEventListener("click", function (event) {
  var button = event.target.closest("table.grid td.cell button");
  if (!button) return;
  button.closest("table.grid").querySelectorAll('button[aria-pressed="true"]').forEach(
    function (b) { b.removeAttribute("aria-pressed"); });
  button.setAttribute("aria-pressed", "true");
  htmx.ajax("GET", cellUrl(button), { target: "#detail", swap: "innerHTML" }).then(function () {
    // on a narrow screen the panel is below the grid: bring it into view
    if (!window.matchMedia("(min-width: 70rem)").matches) {
      document.getElementById("detail").scrollIntoView({ block: "start" });
    }
  });
});

var MOVES = { ArrowLeft: [0, -1], ArrowRight: [0, 1], ArrowUp: [-1, 0], ArrowDown: [1, 0] };

document.addEventListener("keydown", function (event) {
  var move = MOVES[event.key];
  var button = move && event.target.closest && event.target.closest("table.grid td.cell button");
  if (!button) return;
  var row = button.closest("tr");
  var rows = row.parentElement.rows;
  var r = row.sectionRowIndex + move[0];
  var c = Number(button.dataset.col) + move[1];
  if (r < 0 || r >= rows.length) return;
  var next = rows[r].querySelector('button[data-col="' + c + '"]');
  if (next) {
    next.focus();
    event.preventDefault();
  }
});
