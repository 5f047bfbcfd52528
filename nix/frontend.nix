# The storefront: static files, no build step.
{ lib, runCommand }:
runCommand "teipsum-frontend" {
  src = lib.fileset.toSource {
    root = ../frontend;
    fileset = ../frontend;
  };
} ''
  cp -r "$src" "$out"
''
