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
    # The key files belong to a user of their own, not to root: systemd reads
    # them for LoadCredential= as PID 1, so no service user needs access, and
    # the oneshot that creates them needs no privilege at all. `Z` hands files
    # an older release created as root to that user (modes are kept).
    users.users.teipsum-keys = {
      isSystemUser = true;
      group = "teipsum-keys";
      description = "Owner of the TeIpsum signing key";
    };
    users.groups.teipsum-keys = { };
    systemd.tmpfiles.rules = [
      "d ${cfg.directory} 0700 teipsum-keys teipsum-keys -"
      "Z ${cfg.directory} - teipsum-keys teipsum-keys -"
    ];

    systemd.services.teipsum-jwt-key = {
      description = "Create the TeIpsum token signing key";
      wantedBy = [ "multi-user.target" ];
      after = [ "systemd-tmpfiles-setup.service" ];
      # Runs when either half is missing: a lost public key is derived again
      # from the private one (which is never replaced), otherwise every
      # service that loads it would fail to start.
      unitConfig.ConditionPathExists = [
        "|!${cfg.directory}/jwt-ed25519.key"
        "|!${cfg.directory}/jwt-ed25519.pub"
      ];
      serviceConfig = {
        Type = "oneshot";
        RemainAfterExit = true;
        ExecStart = "${config.teipsum.package}/bin/teipsum keygen jwt --private ${cfg.directory}/jwt-ed25519.key --public ${cfg.directory}/jwt-ed25519.pub";
        User = "teipsum-keys";
        Group = "teipsum-keys";
        UMask = "0077";
        # Writes only the key directory; reaches nothing.
        ProtectSystem = "strict";
        ReadWritePaths = [ cfg.directory ];
        ProtectHome = true;
        PrivateTmp = true;
        PrivateDevices = true;
        PrivateNetwork = true;
        PrivateUsers = true;
        PrivateMounts = true;
        IPAddressDeny = [ "any" ];
        RestrictAddressFamilies = [ "none" ];
        NoNewPrivileges = true;
        CapabilityBoundingSet = [ "" ];
        AmbientCapabilities = [ "" ];
        ProtectClock = true;
        ProtectHostname = true;
        ProtectKernelTunables = true;
        ProtectKernelModules = true;
        ProtectKernelLogs = true;
        ProtectControlGroups = true;
        ProtectProc = "invisible";
        ProcSubset = "pid";
        RestrictNamespaces = true;
        RestrictRealtime = true;
        RestrictSUIDSGID = true;
        LockPersonality = true;
        MemoryDenyWriteExecute = true;
        RemoveIPC = true;
        KeyringMode = "private";
        DevicePolicy = "closed";
        SystemCallArchitectures = "native";
        SystemCallFilter = [
          "@system-service"
          "~@privileged"
          "~@resources"
        ];
        SystemCallErrorNumber = "EPERM";
      };
    };
  };
}
