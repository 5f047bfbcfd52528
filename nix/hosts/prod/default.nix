# The production host, serving teipsum.store.
{ ... }:
{
  imports = [
    ../common.nix
    ../boot.nix
    ./hardware-configuration.nix
  ];
  networking.hostName = "teipsum-prod";
  networking.domain = "teipsum.store";
}
