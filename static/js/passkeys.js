// Around django-otp-webauthn's browser script: once a passkey is added, go where the page says
// (data-next on #passkey-ceremony). A static file: the CSP allows no inline script.
(function () {
  "use strict";

  document.addEventListener("otp_webauthn.register_complete", function () {
    var ceremony = document.getElementById("passkey-ceremony");
    var next = ceremony && ceremony.dataset.next;
    window.location.assign(next && next.charAt(0) === "/" ? next : "/account/security/");
  });
})();
