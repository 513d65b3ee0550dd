// /redoc: ReDoc on the server's own OpenAPI document. ReDoc writes its styles into <style> elements;
// it marks them with the nonce the page's policy admits (passed as data: browsers hide `nonce`
// attributes from scripts). A file, not an inline script, so script-src 'self' holds.
window.addEventListener("DOMContentLoaded", function () {
  var element = document.getElementById("redoc");
  Redoc.init(element.dataset.specUrl, { nonce: element.dataset.styleNonce }, element);
});
