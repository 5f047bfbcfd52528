# The hand-written part of a TeIpsum host: the options the generated modules
# read, set to this flake's packages, and the first-boot signing key.
{ self }:
{ lib, pkgs, ... }:
let
  packages = self.packages.${pkgs.stdenv.hostPlatform.system};
in
{
  imports = [
    ./teipsum.nix
    ./jwt-key.nix
  ];
  # mkDefault: a host may pin other builds.
  teipsum.package = lib.mkDefault packages.teipsum;
  teipsum.frontend = lib.mkDefault packages.frontend;
  # Only for `kafka.mode = 'zookeeper`; nothing else comes from that nixpkgs.
  teipsum.nixpkgsKafka.apacheKafka_3_9 =
    lib.mkDefault self.inputs.nixpkgs-kafka.legacyPackages.${pkgs.stdenv.hostPlatform.system}.apacheKafka_3_9;
}
