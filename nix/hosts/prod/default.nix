# The production host, serving teipsum.store.
{ ... }:
{
  imports = [ ../common.nix ];
  networking.hostName = "teipsum-prod";
  networking.domain = "teipsum.store";
}
