# The storefront: static files, no build step. Only what nginx serves is
# packaged (index.html and the content-hashed assets), not the screenshot,
# the README or the rehash script.
{ lib, runCommand }:
runCommand "teipsum-frontend" {
  src = lib.fileset.toSource {
    root = ../frontend;
    fileset = lib.fileset.unions [
      ../frontend/index.html
      ../frontend/assets
    ];
  };
} ''
  cp -r "$src" "$out"
''
