// /docs: Swagger UI on the server's own OpenAPI document. A file, not an inline script, so the
// pages' Content-Security-Policy (script-src 'self') holds; no validator badge (it would call out).
window.addEventListener("DOMContentLoaded", function () {
  window.ui = SwaggerUIBundle({
    url: document.getElementById("swagger-ui").dataset.specUrl,
    dom_id: "#swagger-ui",
    validatorUrl: null,
    deepLinking: true,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout",
  });
});
