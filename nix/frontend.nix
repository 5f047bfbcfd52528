# The storefront: static files, no build step. Only what nginx serves is
# packaged (index.html and the content-hashed assets), not the screenshot,
# the README or the rehash script; and the API's OpenAPI document
# (docs/openapi.json, generated from the services' code), which the edge
# serves at /api/openapi.json from under this root (the plan's
# nginx.api_document).
{ lib, runCommand }:
runCommand "teipsum-frontend" {
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../frontend/index.html
      ../frontend/assets
      ../docs/openapi.json
    ];
  };
} ''
  cp -r "$src/frontend" "$out"
  chmod u+w "$out"
  mkdir "$out/api"
  cp "$src/docs/openapi.json" "$out/api/openapi.json"
''
