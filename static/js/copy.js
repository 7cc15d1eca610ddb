// Copy buttons: <button type="button" data-copy-target="ID"> copies the text of #ID.
// A static file rather than an inline script because the CSP allows only 'self' and nonces.
// Screen readers hear the result through #copy-status (aria-live) when the page has one.
(function () {
  "use strict";

  var RESET_AFTER_MS = 2000;

  function announce(text) {
    var region = document.getElementById("copy-status");
    if (!region) {
      return;
    }
    // Clear first so the same message is announced again on a second click.
    region.textContent = "";
    window.setTimeout(function () {
      region.textContent = text;
    }, 50);
  }

  function textOf(target) {
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) {
      return target.value;
    }
    return target.textContent.trim();
  }

  function select(target) {
    if (target instanceof HTMLInputElement || target instanceof HTMLTextAreaElement) {
      target.select();
      return;
    }
    var range = document.createRange();
    range.selectNodeContents(target);
    var selection = window.getSelection();
    selection.removeAllRanges();
    selection.addRange(range);
  }

  function showCopied(button) {
    if (button.dataset.copyLabel === undefined) {
      button.dataset.copyLabel = button.textContent;
    }
    button.textContent = "Copied";
    announce("Copied to clipboard");
    window.clearTimeout(button.copyResetTimer);
    button.copyResetTimer = window.setTimeout(function () {
      button.textContent = button.dataset.copyLabel;
    }, RESET_AFTER_MS);
  }

  // No clipboard API (plain HTTP, old browser, permission refused): select the text so the
  // user can copy it by hand, and try the legacy copy command on the way.
  function fallback(button, target) {
    select(target);
    var copied = false;
    try {
      copied = document.execCommand("copy");
    } catch (error) {
      copied = false;
    }
    if (copied) {
      showCopied(button);
    } else {
      announce("Text selected. Press Control+C, or Command+C, to copy it.");
    }
  }

  document.addEventListener("click", function (event) {
    var button = event.target.closest("button[data-copy-target]");
    if (!button) {
      return;
    }
    var target = document.getElementById(button.dataset.copyTarget);
    if (!target) {
      return;
    }
    event.preventDefault();
    var text = textOf(target);
    if (navigator.clipboard && window.isSecureContext) {
      navigator.clipboard.writeText(text).then(
        function () {
          showCopied(button);
        },
        function () {
          fallback(button, target);
        }
      );
    } else {
      fallback(button, target);
    }
  });
})();
