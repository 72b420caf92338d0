// reportgen: a click on a gallery image opens it larger with its labels, in a dialog
// (Escape, the close button or a click beside it closes it). Without JavaScript the link
// opens the image file itself.
(function () {
  "use strict";
  var dialog = null;
  function open(link) {
    if (!dialog) {  // made on first use: a page nobody clicks holds no empty image
      dialog = document.createElement("dialog");
      dialog.className = "lightbox";
      dialog.setAttribute("aria-label", "Larger view");
      dialog.innerHTML = '<form method="dialog"><button type="submit" aria-label="Close">' +
        '×</button></form><img alt=""><p></p>';
      dialog.addEventListener("click", function (e) { if (e.target === dialog) dialog.close(); });
      document.body.appendChild(dialog);
    }
    var thumb = link.querySelector("img"), big = dialog.querySelector("img");
    big.src = link.getAttribute("href");
    big.alt = thumb ? thumb.alt : "";
    dialog.querySelector("p").textContent = link.getAttribute("data-caption");
    dialog.showModal();
  }
  document.addEventListener("click", function (e) {
    var link = e.target.closest ? e.target.closest("a[data-caption]") : null;
    if (!link || e.ctrlKey || e.metaKey || e.shiftKey || e.button !== 0) return;
    e.preventDefault();
    open(link);
  });
})();
