# The boot loader of every host: GRUB on the first virtio disk with a BIOS
# boot, as on the common KVM virtual server. nixos-generate-config writes the
# boot loader into configuration.nix, not into hardware-configuration.nix:
# a server that boots differently (UEFI: `boot.loader.systemd-boot.enable`,
# or another disk) sets it in nix/hosts/<env>/default.nix, which wins over
# these defaults.
{ lib, ... }:
{
  boot.loader.grub = {
    enable = lib.mkDefault true;
    device = lib.mkDefault "/dev/vda";
  };
}
