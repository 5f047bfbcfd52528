{
  description = "TeIpsum: a small e-commerce platform, declared in config.ncl and deployed on NixOS";

  # The supported NixOS release the hosts run (nix/toolchain: its rustc).
  inputs.nixpkgs.url = "github:NixOS/nixpkgs/nixos-26.05";
  # Kafka 3.9, the last Kafka with ZooKeeper, for `kafka.mode = 'zookeeper`
  # only (NixOS 26.05 ships Kafka 4, which removed ZooKeeper): nixos-25.11 is
  # the last release with it. Nothing else is taken from this input.
  inputs.nixpkgs-kafka.url = "github:NixOS/nixpkgs/nixos-25.11";

  outputs =
    { self, nixpkgs, ... }:
    let
      inherit (nixpkgs) lib;
      systems = [ "x86_64-linux" "aarch64-linux" ];
      forAllSystems = f: lib.genAttrs systems (system: f nixpkgs.legacyPackages.${system});
      # One host per environment for now; see nix/hosts/<env>/.
      host =
        env:
        let
          plan = (lib.importJSON ./nix/generated/${env}/plan.json).plan;
        in
        lib.nixosSystem {
          modules = [
            self.nixosModules.default
            self.nixosModules.${env}
            ./nix/hosts/${env}
            # The platform the spec gives the host (`hosts.<name>.system`);
            # a hardware-configuration.nix from nixos-generate-config agrees.
            { nixpkgs.hostPlatform = lib.mkDefault (builtins.head plan.hosts).system; }
          ];
        };
    in
    {
      packages = forAllSystems (pkgs: rec {
        # Every service binary and the teipsum CLI.
        teipsum = pkgs.callPackage ./nix/package.nix { };
        # Just the CLI, quicker to build: `nix run . -- check`.
        cli = pkgs.callPackage ./nix/package.nix { cargoPackages = [ "teipsum-cli" ]; };
        frontend = pkgs.callPackage ./nix/frontend.nix { };
        default = cli;
      });

      nixosModules = {
        # The options the generated modules read, the packages of this flake,
        # and the first-boot signing key.
        default = import ./nix/modules { inherit self; };
        # The compiler's output, one module per environment (`teipsum compile`).
        stage = ./nix/generated/stage;
        prod = ./nix/generated/prod;
      };

      nixosConfigurations = {
        stage = host "stage";
        prod = host "prod";
      };

      # NixOS VM tests, one attribute set per file in nix/tests/.
      checks = forAllSystems (
        pkgs:
        lib.concatMapAttrs
          (file: _: import ./nix/tests/${file} { inherit self pkgs lib; })
          (lib.filterAttrs (name: type: type == "regular" && lib.hasSuffix ".nix" name) (builtins.readDir ./nix/tests))
      );

      formatter = forAllSystems (pkgs: pkgs.nixfmt);

      devShells = forAllSystems (pkgs: {
        default = pkgs.mkShell {
          inputsFrom = [ self.packages.${pkgs.stdenv.hostPlatform.system}.teipsum ];
          packages = [
            pkgs.cargo-nextest
            pkgs.clippy
            pkgs.rustfmt
            pkgs.nickel
            pkgs.postgresql_15
            pkgs.nginx
            pkgs.jq
          ];
        };
      });
    };
}
