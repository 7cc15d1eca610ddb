// Account pages: <button data-print> prints the page; <form data-confirm="question"> asks
// before it is sent. A static file: the CSP allows no inline script.
(function () {
  "use strict";

  document.addEventListener("click", function (event) {
    if (event.target.closest("button[data-print]")) {
      event.preventDefault();
      window.print();
    }
  });
})();
