# One VM test per environment: boot a host built from the generated modules
# beside a test ACME CA, wait for every unit, check that the first
# certificate is ordered from that CA and served, then walk a shopper
# through nginx over HTTPS (register, log in, an admin creates a product and
# its stock, order, confirmation, stock decremented), check the security
# headers, and that no unit failed.
#
# The CA is pebble, the ACME test server that nixpkgs' own ACME tests run
# (nixos/tests/common/acme/server), set up the same way but self-contained:
# its HTTPS listener uses a test certificate made in ./lib/pebble.nix, and it
# validates HTTP-01 against the host under test through /etc/hosts.
{
  self,
  pkgs,
  lib,
}:
let
  pebble = import ./lib/pebble.nix { inherit pkgs; };
  # Addresses of our own on the test network, beside the framework's, so that
  # each node can name the other without the framework's internals.
  addresses = {
    machine = "192.168.1.200";
    acme = "192.168.1.201";
  };
  test =
    env:
    let
      plan = (lib.importJSON ../generated/${env}/plan.json).plan;
      services = map (s: s.name) plan.services;
      zookeeper = plan.kafka.mode == "zookeeper";
      monitoring = plan.monitoring;
      # The alert receiver's URL file an operator writes (README, step 3);
      # nothing listens there in the test, so no alert is delivered.
      webhookPort = 9999;
    in
    pkgs.testers.runNixOSTest {
      name = "teipsum-${env}";
      nodes.acme = {
        imports = [ pebble.server ];
        networking.interfaces.eth1.ipv4.addresses = [
          {
            address = addresses.acme;
            prefixLength = 24;
          }
        ];
        # HTTP-01: pebble fetches the challenge from the domain's port 80.
        networking.hosts.${addresses.machine} = [ plan.domain ];
      };
      nodes.machine =
        { ... }:
        {
          imports = [
            self.nixosModules.default
            self.nixosModules.${env}
          ];
          # The JVMs, PostgreSQL and six services need room; the JVM heaps
          # are capped below the generated 1 GiB so that all of it fits.
          virtualisation = {
            # 2 GiB more with Prometheus, Grafana, Loki and Vector.
            memorySize = if monitoring != null then 6144 else 4096;
            diskSize = 8192;
            cores = 2;
          };
          services.apache-kafka.jvmOptions = lib.mkForce [
            "-Xms256m"
            "-Xmx384m"
          ];
          services.zookeeper.extraCmdLineOptions = lib.mkForce [
            "-Xms64m"
            "-Xmx128m"
          ];
          networking.interfaces.eth1.ipv4.addresses = [
            {
              address = addresses.machine;
              prefixLength = 24;
            }
          ];
          networking.hosts = {
            "127.0.0.1" = [ plan.domain ];
            ${addresses.acme} = [ pebble.domain ];
          };
          # The test CA instead of Let's Encrypt, trusted by lego and curl.
          security.acme.defaults.server = lib.mkForce "https://${pebble.domain}/dir";
          security.pki.certificateFiles = [ pebble.caCert ];
          environment.systemPackages = [
            pkgs.curl
            pkgs.jq
            pkgs.openssl
          ];
          # What the operator writes before the first switch (README, step 3).
          systemd.tmpfiles.rules = lib.optional (monitoring != null) "f /var/lib/teipsum/secrets/alert-webhook-url 0600 root root - http://127.0.0.1:${toString webhookPort}/";
        };
      testScript = ''
        import json
        import shlex

        domain = ${builtins.toJSON plan.domain}
        pebble_domain = ${builtins.toJSON pebble.domain}
        services = ${builtins.toJSON services}

        acme.start()
        acme.wait_for_unit("pebble.service")
        acme.wait_for_open_port(443)

        machine.start()
        machine.wait_for_unit("postgresql.target")
        ${lib.optionalString zookeeper ''machine.wait_for_unit("zookeeper.service")''}
        machine.wait_for_unit("apache-kafka.service")
        machine.wait_for_unit("teipsum-topics.service")
        machine.wait_for_unit("teipsum-jwt-key.service")
        for service in services:
            machine.wait_for_unit(f"teipsum-{service}.service")
        machine.wait_for_unit("nginx.service")
        machine.wait_for_open_port(443)


        def api(method, path, body=None, token=None):
            """One request through nginx; returns (status, json body, headers)."""
            cmd = [
                "curl", "-s", "--cacert", "/tmp/pebble-root.pem", "--resolve", f"{domain}:443:127.0.0.1",
                "-o", "/tmp/body", "-D", "/tmp/headers", "-w", "%{http_code}",
                "-X", method, f"https://{domain}{path}",
            ]
            if token:
                cmd += ["-H", f"Authorization: Bearer {token}"]
            if body is not None:
                cmd += ["-H", "Content-Type: application/json", "--data", json.dumps(body)]
            status = int(machine.succeed(" ".join(shlex.quote(c) for c in cmd)))
            text = machine.succeed("cat /tmp/body")
            headers = machine.succeed("cat /tmp/headers").lower()
            return status, (json.loads(text) if text.strip().startswith(("{", "[")) else text), headers


        def until(what, check, tries=120):
            for _ in range(tries):
                result = check()
                if result:
                    return result
                machine.sleep(1)
            raise Exception(f"timed out waiting for {what}")


        with subtest("the first certificate is ordered from the ACME CA and served"):
            machine.wait_until_succeeds(
                f"openssl x509 -noout -issuer -in /var/lib/acme/{domain}/cert.pem | grep -i pebble",
                timeout=300,
            )
            # nginx reloads once the order is done; then it serves the CA's certificate.
            machine.wait_until_succeeds(
                f"echo | openssl s_client -connect 127.0.0.1:443 -servername {domain} 2>/dev/null"
                " | openssl x509 -noout -issuer | grep -i pebble",
                timeout=120,
            )
            # From here on curl checks the whole chain, up to pebble's root.
            machine.succeed(
                f"curl -sf https://{pebble_domain}:15000/roots/0 -o /tmp/pebble-root.pem"
            )

        with subtest("every response carries the security headers"):
            for path in ["/", "/api/products", "/api/users/me", "/api/nothing"]:
                _, _, headers = api("GET", path)
                for header in [
                    "strict-transport-security: max-age=63072000\r",
                    "x-content-type-options: nosniff",
                    "x-frame-options: deny",
                    "referrer-policy:",
                    "content-security-policy:",
                    "permissions-policy:",
                ]:
                    assert header in headers, f"{path}: no {header}"

        with subtest("a shopper and an admin register and log in; only the host makes an admin"):
            for email in ["admin@teipsum.store", "ana@example.org"]:
                status, body, _ = api("POST", "/api/auth/register",
                                      {"email": email, "password": "correct horse battery", "display_name": "Tester"})
                assert status == 201, body
                assert body["role"] == "customer", body
            machine.fail("teipsum-promote-admin --email nobody@example.org")
            machine.succeed("teipsum-promote-admin --email admin@teipsum.store")
            tokens = {}
            for email in ["admin@teipsum.store", "ana@example.org"]:
                status, body, _ = api("POST", "/api/auth/login", {"email": email, "password": "correct horse battery"})
                assert status == 200, body
                tokens[email] = body["access_token"]
            admin, ana = tokens["admin@teipsum.store"], tokens["ana@example.org"]

        with subtest("the admin creates a product and its stock"):
            status, product, _ = api("POST", "/api/admin/products/", {
                "name": "VM Mug", "description": "Tested in a VM", "sku": "VM-MUG-1",
                "price": {"amount_minor": 1500, "currency": "EUR"}, "category": "kitchen",
                "image_urls": [], "active": True,
            }, admin)
            assert status == 201, product
            status, level, _ = api("PUT", f"/api/admin/inventory/{product['id']}", {"quantity": 3}, admin)
            assert status == 200, level
            until("the catalog to show the product", lambda: api("GET", f"/api/products/{product['id']}")[0] == 200)

        with subtest("the shopper orders and the order is confirmed"):
            def place():
                status, order, _ = api("POST", "/api/orders/",
                                       {"items": [{"product_id": product["id"], "quantity": 2}]}, ana)
                return order if status == 201 else None
            order = until("the order service to know the product", place)
            def settled():
                _, current, _ = api("GET", f"/api/orders/{order['id']}", token=ana)
                return current if current["status"] != "PLACED" else None
            assert until("confirmation", settled)["status"] == "CONFIRMED"

        with subtest("the stock is decremented"):
            _, level, _ = api("GET", f"/api/admin/inventory/{product['id']}", token=admin)
            assert (level["quantity"], level["reserved"]) == (1, 2), level
            until("the catalog to show the stock left",
                  lambda: api("GET", f"/api/products/{product['id']}")[1]["stock"]["quantity"] == 1)

        with subtest("services are Type=notify units that answer on loopback only"):
            for service in services:
                machine.succeed(f"systemctl show -p Type teipsum-{service}.service | grep -q notify")
            machine.fail("ss -tlnH | grep -E ':(9090|9093|9096|9098|8100|8110) ' | grep -v 127.0.0.1")

        ${lib.optionalString (monitoring != null) ''
          with subtest("monitoring: every target up, every rule group loaded"):
              for unit in ["prometheus", "alertmanager"]:
                  machine.wait_for_unit(f"{unit}.service")
              prometheus = "http://127.0.0.1:${toString monitoring.prometheus.port}"
              machine.wait_until_succeeds(
                  f"curl -sf {prometheus}/api/v1/targets | jq -e '.data.activeTargets | length > 0 and all(.health == \"up\")'",
                  timeout=180,
              )
              machine.succeed(f"curl -sf {prometheus}/api/v1/rules | jq -e '.data.groups | length == ${toString (builtins.length monitoring.rules)}'")
        ''}
        ${lib.optionalString (monitoring != null && monitoring.grafana != null) ''
          with subtest("Grafana runs with the generated dashboards"):
              machine.wait_for_unit("grafana.service")
              grafana = "http://127.0.0.1:${toString monitoring.grafana.port}"
              machine.wait_until_succeeds(f"curl -sf {grafana}/api/health", timeout=120)
              machine.succeed(
                  "curl -sf -u \"admin:$(cat ${(lib.findFirst (c: c.name == "admin-password") null monitoring.grafana.credentials).path})\""
                  f" '{grafana}/api/search?type=dash-db' | jq -e 'length == ${toString (builtins.length monitoring.grafana.dashboards)}'"
              )
        ''}
        ${lib.optionalString (monitoring != null && monitoring.logs != null) ''
          with subtest("the order's log lines reach Loki with its id"):
              machine.wait_for_unit("loki.service")
              machine.wait_for_unit("vector.service")
              loki = "http://127.0.0.1:${toString monitoring.logs.port}"
              query = shlex.quote('{job="journal"} | json | order_id="' + order["id"] + '"')
              machine.wait_until_succeeds(
                  f"curl -sfG {loki}/loki/api/v1/query_range --data-urlencode query={query} --data-urlencode since=1h"
                  " | jq -e '.data.result | length > 0'",
                  timeout=120,
              )
        ''}
        with subtest("teipsum status reads every section on the host"):
            # Tonight's dumps, now: the status reads their files.
            for database in ${builtins.toJSON plan.postgres.backup.databases}:
                machine.succeed(f"systemctl start postgresqlBackup-{database}.service")
            code, text = machine.execute("teipsum status --env ${plan.environment} --json")
            report = json.loads(text)
            print("teipsum status: problems:", report["problems"])
            assert code in (0, 5), code
            assert all(s["ready"] == {"ok": 200} for s in report["services"]), report["services"]
            assert all("ok" in u["state"] for u in report["units"]), report["units"]
            assert all("ok" in d["size_bytes"] and "ok" in d["outbox"] for d in report["databases"]), report["databases"]
            assert "ok" in report["consumer_groups"], report["consumer_groups"]
            assert all("ok" in b["age_secs"] for b in report["backups"]), report["backups"]

        with subtest("no unit failed"):
            failed = machine.succeed("systemctl list-units --state=failed --no-legend --plain")
            assert failed.strip() == "", f"failed units:\n{failed}"
      '';
    };
in
{
  platform-stage = test "stage";
  platform-prod = test "prod";
}
