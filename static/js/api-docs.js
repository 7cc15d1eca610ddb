// Start Swagger UI on /api/docs/. A static file, not an inline script, so the page works under
// the site's Content-Security-Policy (script-src 'self').
"use strict";

(function () {
  const root = document.getElementById("swagger-ui");
  if (!root || typeof SwaggerUIBundle === "undefined") {
    return;
  }
  window.ui = SwaggerUIBundle({
    url: root.dataset.schemaUrl,
    dom_id: "#swagger-ui",
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
    deepLinking: true,
    // Never keep a key in localStorage: it would outlive the tab and be readable by any script.
    persistAuthorization: false,
    // No badge from validator.swagger.io: the page talks to this server only.
    validatorUrl: null,
  });
})();
