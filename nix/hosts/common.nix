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
    # With password login off, a host without a key is locked the moment it
    # is switched to: refuse to build it. (A throw where the keys are read,
    # not an entry of `assertions`: nixos-lite, which checks this flake here,
    # forces every assertion's message once a checked module sets one, and
    # nixpkgs' Prometheus module has a message that fails when forced while
    # its assertion holds.)
    users.users.root.openssh.authorizedKeys.keys =
      let
        keys = config.teipsum.operatorKeys;
        malformed = lib.filter (k: !isPublicKey k) keys;
      in
      if keys == [ ] then
        throw "teipsum: no operator SSH key. Put your public key (~/.ssh/id_ed25519.pub) in nix/hosts/operators.pub and `git add` it: password login is off, so without a key nobody can log in after the switch."
      else if malformed != [ ] then
        throw "teipsum: nix/hosts/operators.pub has a line that is not an OpenSSH public key: ${lib.concatStringsSep ", " malformed}"
      else
        keys;

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
