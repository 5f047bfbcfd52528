# The machine itself: disks, boot loader, kernel modules. This default fits
# a KVM virtual server with one virtio disk (/dev/vda) and a BIOS boot, the
# common VPS. On a real server replace the whole file with what
#   nixos-generate-config --show-hardware-config
# prints there (README, "Deploying to a new server").
{ lib, ... }:
{
  boot.loader.grub = {
    enable = lib.mkDefault true;
    device = lib.mkDefault "/dev/vda";
  };
  boot.initrd.availableKernelModules = [
    "virtio_pci"
    "virtio_scsi"
    "virtio_blk"
    "ahci"
    "sd_mod"
  ];
  fileSystems."/" = lib.mkDefault {
    device = "/dev/disk/by-label/nixos";
    fsType = "ext4";
  };
}
