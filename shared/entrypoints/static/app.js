// apim-inventory's pages work without this script: it adds sorting by a column and a filter to each table.
"use strict";
document.querySelectorAll("table.sortable").forEach((table, n) => {
  const body = table.tBodies[0];
  if (!body) return;
  table.querySelectorAll("thead th").forEach((th, column) => {
    const button = document.createElement("button");
    button.type = "button";
    button.textContent = th.textContent;
    th.textContent = "";
    th.appendChild(button);
    th.setAttribute("aria-sort", "none");
    button.addEventListener("click", () => {
      const ascending = th.getAttribute("aria-sort") !== "ascending";
      table.querySelectorAll("thead th").forEach((other) => other.setAttribute("aria-sort", "none"));
      th.setAttribute("aria-sort", ascending ? "ascending" : "descending");
      const numeric = th.dataset.sort === "num";
      const key = (row) => (row.cells[column] ? row.cells[column].textContent.trim() : "");
      const rows = Array.from(body.rows).sort((a, b) => {
        const x = key(a), y = key(b);
        const order = numeric ? (parseFloat(x) || 0) - (parseFloat(y) || 0) : x.localeCompare(y);
        return ascending ? order : -order;
      });
      rows.forEach((row) => body.appendChild(row));
    });
  });
  if (body.rows.length > 5) {
    const label = document.createElement("label");
    label.className = "filter";
    label.textContent = "Filter ";
    const input = document.createElement("input");
    input.type = "search";
    input.id = "filter-" + n;
    label.htmlFor = input.id;
    label.appendChild(input);
    table.parentElement.before(label);
    input.addEventListener("input", () => {
      const wanted = input.value.toLowerCase();
      Array.from(body.rows).forEach((row) => { row.hidden = wanted !== "" && !row.textContent.toLowerCase().includes(wanted); });
    });
  }
});
