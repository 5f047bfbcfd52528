# What every TeIpsum host shares: SSH for the operators, by key only.
{ config, lib, ... }:
let
  # nix/hosts/operators.pub: one OpenSSH public key per line; `#` starts a comment.
  lines = lib.splitString "\n" (builtins.readFile ./operators.pub);
  keys = lib.filter (line: line != "" && !lib.hasPrefix "#" line) (map lib.trim lines);
  isPublicKey =
    key:
    builtins.match "(ssh-ed25519|ssh-rsa|ecdsa-sha2-nistp(256|384|521)|sk-ssh-ed25519@openssh.com|sk-ecdsa-sha2-nistp256@openssh.com) [A-Za-z0-9+/]+=*( .*)?" key
    != null;
in
{
  options.teipsum.operatorKeys = lib.mkOption {
    type = lib.types.listOf lib.types.str;
    default = keys;
    description = "SSH public keys of the operators, who log in as root to deploy (nix/hosts/operators.pub by default).";
  };

  config = {
    services.openssh = {
      enable = true;
      settings = {
        PasswordAuthentication = false;
        KbdInteractiveAuthentication = false;
        PermitRootLogin = "prohibit-password";
      };
    };
    users.users.root.openssh.authorizedKeys.keys = config.teipsum.operatorKeys;

    # With password login off, a host without a key is locked the moment it
    # is switched to: refuse to build it.
    assertions = [
      {
        assertion = config.teipsum.operatorKeys != [ ];
        message = "teipsum: no operator SSH key. Put your public key (~/.ssh/id_ed25519.pub) in nix/hosts/operators.pub and `git add` it: password login is off, so without a key nobody can log in after the switch.";
      }
      {
        assertion = lib.all isPublicKey config.teipsum.operatorKeys;
        message = "teipsum: nix/hosts/operators.pub has a line that is not an OpenSSH public key: ${
          lib.concatStringsSep ", " (lib.filter (k: !isPublicKey k) config.teipsum.operatorKeys)
        }";
      }
    ];

    # Secrets: the token signing key is created on first boot in
    # /var/lib/teipsum/secrets (nix/modules/jwt-key.nix). Nothing else is secret:
    # services reach PostgreSQL by peer authentication, without passwords.

    time.timeZone = "UTC";
    nix.settings.experimental-features = [
      "nix-command"
      "flakes"
    ];
    # The release the hosts were first installed with; never change it on a
    # running host (it keeps state formats, e.g. PostgreSQL's, where they are).
    system.stateVersion = lib.mkDefault "26.05";
  };
}
