# Stand-ins for the flake packages when nixos-lite evaluates the generated modules.
{ pkgs, ... }:
{
  teipsum.package = pkgs.teipsum;
  teipsum.frontend = pkgs.teipsum-frontend;
  # In the flake: the nixpkgs-kafka input's (nixos-25.11) Kafka 3.9.
  teipsum.nixpkgsKafka.apacheKafka_3_9 = pkgs.apacheKafka_3_9;
}
