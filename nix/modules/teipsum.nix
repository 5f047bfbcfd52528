# The options the generated modules read: which packages to run. The flake
# sets them to its own builds (with lib.mkDefault, so a host can pin others).
{ lib, ... }:
{
  options.teipsum = {
    package = lib.mkOption {
      type = lib.types.package;
      description = "The TeIpsum services and the `teipsum` CLI (bin/teipsum-<service>, bin/teipsum).";
    };
    frontend = lib.mkOption {
      type = lib.types.package;
      description = "The storefront's static files, served by nginx at the frontend route.";
    };
  };
}
