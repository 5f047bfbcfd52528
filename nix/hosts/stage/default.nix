# The staging host, serving stage.teipsum.store with Let's Encrypt staging certificates.
{ ... }:
{
  imports = [
    ../common.nix
    ../boot.nix
    ./hardware-configuration.nix
  ];
  networking.hostName = "teipsum-stage";
  networking.domain = "stage.teipsum.store";
}
