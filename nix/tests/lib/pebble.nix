# pebble, the ACME test server, as a test node module: what nixpkgs' ACME
# tests run (nixos/tests/common/acme/server), without its DNS resolver and
# its snakeoil files. `caCert` signs the certificate of pebble's own HTTPS
# endpoint (https://acme.test/dir), so clients trust the CA with
# `security.pki.certificateFiles = [ caCert ]`; the certificates pebble issues
# chain to a root it creates at start (https://acme.test:15000/roots/0).
{ pkgs }:
let
  domain = "acme.test";
  certs =
    pkgs.runCommand "pebble-test-ca"
      {
        nativeBuildInputs = [ pkgs.openssl ];
      }
      ''
        mkdir -p $out
        openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 3650 \
          -subj "/CN=TeIpsum test CA" -keyout ca.key -out $out/ca.pem \
          -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign
        openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes \
          -subj "/CN=${domain}" -keyout $out/${domain}.key -out server.csr
        printf 'subjectAltName=DNS:${domain}\nextendedKeyUsage=serverAuth\n' > server.ext
        openssl x509 -req -in server.csr -CA $out/ca.pem -CAkey ca.key -CAcreateserial \
          -days 3650 -extfile server.ext -out $out/${domain}.pem
      '';
  config = pkgs.writeText "pebble.json" (
    builtins.toJSON {
      pebble = {
        listenAddress = "0.0.0.0:443";
        managementListenAddress = "0.0.0.0:15000";
        certificate = "${certs}/${domain}.pem";
        privateKey = "${certs}/${domain}.key";
        # Where it validates HTTP-01 and TLS-ALPN-01 challenges.
        httpPort = 80;
        tlsPort = 443;
        strict = true;
      };
    }
  );
in
{
  inherit domain;
  caCert = "${certs}/ca.pem";
  server = {
    networking.firewall.allowedTCPPorts = [
      443
      15000
    ];
    networking.hosts."127.0.0.1" = [ domain ];
    systemd.services.pebble = {
      description = "Pebble ACME test server";
      wantedBy = [ "multi-user.target" ];
      after = [ "network.target" ];
      # Validate at once instead of after a random pause.
      environment.PEBBLE_VA_NOSLEEP = "1";
      serviceConfig = {
        ExecStart = "${pkgs.pebble}/bin/pebble -config ${config}";
        DynamicUser = true;
        AmbientCapabilities = [ "CAP_NET_BIND_SERVICE" ];
        CapabilityBoundingSet = [ "CAP_NET_BIND_SERVICE" ];
      };
    };
  };
}
