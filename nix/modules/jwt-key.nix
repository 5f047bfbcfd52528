# The Ed25519 key pair that signs access tokens, created on first boot when
# the files are missing (as sshd does with its host keys). Only auth loads the
# private half; every service that checks tokens loads the public half.
# Hosts that get their secrets from sops-nix or agenix set
# `teipsum.jwtKey.generate = false` and point config.ncl at those files.
{ config, lib, ... }:
let
  cfg = config.teipsum.jwtKey;
in
{
  options.teipsum.jwtKey = {
    generate = lib.mkOption {
      type = lib.types.bool;
      default = true;
      description = "Create the token signing key pair on first boot if it does not exist.";
    };
    directory = lib.mkOption {
      type = lib.types.str;
      default = "/var/lib/teipsum/secrets";
      description = "Directory of the key files; must match the secret paths in config.ncl.";
    };
  };

  config = lib.mkIf cfg.generate {
    # Root-only: systemd reads the files for LoadCredential= before dropping
    # privileges, so no service user needs to.
    systemd.tmpfiles.rules = [ "d ${cfg.directory} 0700 root root -" ];

    systemd.services.teipsum-jwt-key = {
      description = "Create the TeIpsum token signing key";
      wantedBy = [ "multi-user.target" ];
      unitConfig.ConditionPathExists = "!${cfg.directory}/jwt-ed25519.key";
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${config.teipsum.package}/bin/teipsum keygen jwt --private ${cfg.directory}/jwt-ed25519.key --public ${cfg.directory}/jwt-ed25519.pub";
        UMask = "0077";
        ProtectSystem = "strict";
        ReadWritePaths = [ cfg.directory ];
        PrivateNetwork = true;
        PrivateTmp = true;
        NoNewPrivileges = true;
      };
    };
  };
}
