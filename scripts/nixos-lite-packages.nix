# Stand-ins for the flake packages when nixos-lite evaluates the generated modules.
{ pkgs, ... }: { teipsum.package = pkgs.teipsum; teipsum.frontend = pkgs.teipsum-frontend; }
