# The options the generated modules read: which packages to run. The flake
# sets them to its own builds (with lib.mkDefault, so a host can pin others).
{ lib, ... }:
{
  options.teipsum = {
    package = lib.mkOption {
      type = lib.types.package;
      description = "The TeIpsum services and the `teipsum` CLI (bin/teipsum-<service>, bin/teipsum).";
    };
    nixpkgsKafka = lib.mkOption {
      type = lib.types.attrsOf lib.types.package;
      default = { };
      description = "Kafka packages from the older nixpkgs pinned for them (the flake's `nixpkgs-kafka` input), by attribute name: Kafka 3.9, the last with ZooKeeper, is no longer in the release the hosts run.";
    };
    frontend = lib.mkOption {
      type = lib.types.package;
      description = "The storefront's static files, served by nginx at the frontend route.";
    };
  };
}
