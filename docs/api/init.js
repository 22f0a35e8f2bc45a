// Renders ../openapi.json (GET /api/openapi.json, served by the service) with Swagger UI.
// A build without Swagger UI vendored ships a stand-in bundle that defines no SwaggerUIBundle.
window.addEventListener("load", function () {
  var url = new URL("../openapi.json", window.location.href).href;
  if (typeof window.SwaggerUIBundle !== "function") {
    document.getElementById("swagger-ui").innerHTML =
      '<p>Swagger UI was not vendored into this build (run <code>npm ci</code> in docs/api ' +
      'before building). The document itself is at <a href="' + url + '">' + url + "</a>.</p>";
    return;
  }
  window.ui = window.SwaggerUIBundle({
    url: url,
    dom_id: "#swagger-ui",
    deepLinking: true,
    tryItOutEnabled: false
  });
});
