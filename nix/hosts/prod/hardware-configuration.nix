# The machine itself: disks and kernel modules, as
#   nixos-generate-config --show-hardware-config
# prints them on the server; replace this whole file with that output. Until
# then the host is a common KVM virtual server with one virtio disk. (The
# boot loader is not hardware: it is in ../boot.nix.)
{ lib, ... }:
{
  boot.initrd.availableKernelModules = [
    "virtio_pci"
    "virtio_scsi"
    "virtio_blk"
    "ahci"
    "sd_mod"
  ];
  fileSystems."/" = {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
}
