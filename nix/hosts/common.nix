# What every TeIpsum host shares: a small VPS with SSH keys only.
{ lib, ... }:
{
  boot.loader.grub.enable = lib.mkDefault true;
  boot.loader.grub.device = lib.mkDefault "/dev/sda";
  fileSystems."/" = lib.mkDefault {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
  boot.initrd.availableKernelModules = [ "virtio_pci" "virtio_scsi" "virtio_blk" "ahci" "sd_mod" ];

  services.openssh = {
    enable = true;
    settings = {
      PasswordAuthentication = false;
      KbdInteractiveAuthentication = false;
      PermitRootLogin = "prohibit-password";
    };
  };
  # Operators' keys; without one the host is only reachable on its console.
  users.users.root.openssh.authorizedKeys.keys = lib.mkDefault [ ];

  # Secrets: the token signing key is created on first boot in
  # /var/lib/teipsum/secrets (nix/modules/jwt-key.nix). Nothing else is secret:
  # services reach PostgreSQL by peer authentication, without passwords.

  time.timeZone = "UTC";
  nix.settings.experimental-features = [ "nix-command" "flakes" ];
  system.stateVersion = "25.11";
}
