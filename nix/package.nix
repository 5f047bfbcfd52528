# The Rust workspace: the six services and the teipsum CLI.
{
  lib,
  rustPlatform,
  cmake,
  pkg-config,
  curl,
  zlib,
  # Cargo packages to build; all of them by default.
  cargoPackages ? [ ],
}:
let
  cargoToml = lib.importTOML ../Cargo.toml;
in
rustPlatform.buildRustPackage {
  pname = if cargoPackages == [ ] then "teipsum" else lib.concatStringsSep "+" cargoPackages;
  inherit (cargoToml.workspace.package) version;

  # Only what the build reads, so that editing the README or a test does not rebuild.
  src = lib.fileset.toSource {
    root = ../.;
    fileset = lib.fileset.unions [
      ../Cargo.toml
      ../Cargo.lock
      ../crates
      (lib.fileset.maybeMissing ../migrations)
    ];
  };
  cargoLock.lockFile = ../Cargo.lock;

  # The end-to-end tests and benchmarks (crates/e2e), the local stack
  # (crates/dev, `teipsum dev`, built on the testkit) and the OpenAPI
  # generator (crates/openapi, whose output is the committed
  # docs/openapi.json) are not part of a deployment.
  cargoBuildFlags =
    if cargoPackages == [ ] then
      [
        "--workspace"
        "--exclude"
        "teipsum-e2e"
        "--exclude"
        "teipsum-dev"
        "--exclude"
        "teipsum-openapi"
      ]
    else
      lib.concatMap (p: [ "-p" p ]) cargoPackages;

  # rdkafka builds the librdkafka it was tested with from source (cmake).
  nativeBuildInputs = [
    cmake
    pkg-config
  ];
  # curl is disabled in librdkafka, but librdkafka 2.12 includes <curl/curl.h>
  # under a macro that CMake always defines (upstream librdkafka #5135, #5204),
  # so its headers must be present; nothing links against it.
  buildInputs = [
    curl
    zlib
  ];
  dontUseCmakeConfigure = true;

  # The tests need PostgreSQL, a Kafka broker and nginx; they run in CI
  # (scripts/test.sh) and, against the real NixOS modules, in the VM checks.
  doCheck = false;

  meta = {
    description = "TeIpsum services and the teipsum compiler";
    license = lib.licenses.asl20;
    mainProgram = "teipsum";
    platforms = lib.platforms.linux;
  };
}
