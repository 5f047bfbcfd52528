# The hand-written part of a TeIpsum host: the options the generated modules
# read, set to this flake's packages, and the first-boot signing key.
{ self }:
{ config, lib, pkgs, ... }:
let
  packages = self.packages.${pkgs.stdenv.hostPlatform.system};
  auth = config.systemd.services.teipsum-auth or null;
  # `teipsum-promote-admin --email <address>`, for root on the host: the one
  # way to make an account an administrator. It runs `teipsum-auth
  # promote-admin` as the auth unit would: as its user (peer authentication
  # to its database) with exactly its environment.
  promoteAdmin = pkgs.writeShellScriptBin "teipsum-promote-admin" ''
    exec ${pkgs.util-linux}/bin/runuser -u ${auth.serviceConfig.User} -- \
      ${pkgs.coreutils}/bin/env -i ${
        lib.escapeShellArgs (
          lib.mapAttrsToList (name: value: "${name}=${toString value}") (
            lib.filterAttrs (_: value: value != null) auth.environment
          )
        )
      } \
      ${config.teipsum.package}/bin/teipsum-auth promote-admin "$@"
  '';
in
{
  imports = [
    ./teipsum.nix
    ./jwt-key.nix
  ];
  # mkDefault: a host may pin other builds.
  teipsum.package = lib.mkDefault packages.teipsum;
  teipsum.frontend = lib.mkDefault packages.frontend;
  # The operator's commands on the host: `teipsum-promote-admin`,
  # `teipsum topics apply`, and Kafka's own tools (kafka-consumer-groups.sh)
  # of the broker that runs, whichever nixpkgs it comes from.
  environment.systemPackages = [
    config.teipsum.package
  ]
  ++ lib.optional (auth != null) promoteAdmin
  ++ lib.optional config.services.apache-kafka.enable config.services.apache-kafka.package;
  # Only for `kafka.mode = 'zookeeper`; nothing else comes from that nixpkgs.
  teipsum.nixpkgsKafka.apacheKafka_3_9 =
    lib.mkDefault self.inputs.nixpkgs-kafka.legacyPackages.${pkgs.stdenv.hostPlatform.system}.apacheKafka_3_9;
}
