// The course book's figure browsers: plain controls that switch between the figures that
// `wavegms course` drew for every combination of values (wavegms/course/book/notebooks.py
// writes the markup). Without JavaScript the figure for the default values stays shown.
document.addEventListener("DOMContentLoaded", () => {
  for (const box of document.querySelectorAll(".wavegms-frames")) {
    const data = JSON.parse(box.querySelector(".wavegms-frames-data").textContent);
    const controls = Array.from(box.querySelectorAll("[data-control]"));
    const image = box.querySelector(".wavegms-frames-image");
    const show = () => {
      // Frames are stored in itertools.product order: the last control varies fastest.
      let index = 0;
      controls.forEach((control, k) => {
        const chosen = Number(control.value);
        index = index * data.labels[k].length + chosen;
        const shown = control.parentElement.querySelector("output");
        if (shown) shown.textContent = data.labels[k][chosen];
      });
      image.src = "data:image/png;base64," + data.frames[index];
    };
    controls.forEach((control) => control.addEventListener("input", show));
    box.querySelector(".wavegms-frames-controls").hidden = false;
  }
});
