// lookalike UI: drag-and-drop uploads and the score slider. Plain JavaScript, no framework.
"use strict";

document.addEventListener("DOMContentLoaded", () => {
  const form = document.getElementById("search");
  const input = document.getElementById("image");
  if (form && input) {
    input.addEventListener("change", () => { if (input.files.length) form.submit(); });
    for (const name of ["dragenter", "dragover"]) {
      form.addEventListener(name, (event) => { event.preventDefault(); form.classList.add("over"); });
    }
    form.addEventListener("dragleave", () => form.classList.remove("over"));
    form.addEventListener("drop", (event) => {
      event.preventDefault();
      form.classList.remove("over");
      if (event.dataTransfer.files.length) {
        input.files = event.dataTransfer.files;
        form.submit();
      }
    });
  }

  const slider = document.getElementById("threshold");
  if (slider) {
    const value = document.getElementById("threshold-value");
    const shown = document.getElementById("shown");
    const cards = document.querySelectorAll(".results .card");
    const apply = () => {
      const minimum = parseFloat(slider.value);
      let count = 0;
      for (const card of cards) {
        const keep = parseFloat(card.dataset.score) >= minimum - 1e-9;
        card.classList.toggle("hidden", !keep);
        if (keep) count += 1;
      }
      value.textContent = minimum.toFixed(2);
      shown.textContent = String(count);
    };
    slider.addEventListener("input", apply);
    apply();
  }
});
