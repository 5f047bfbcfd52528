# One VM test per environment: boot a host built from the generated modules,
# wait for every unit, then walk a shopper through nginx over HTTPS (register,
# log in, an admin creates a product and its stock, order, confirmation,
# stock decremented) and check the security headers.
#
# There is no internet in the VM: ACME keeps its self-signed certificate
# (nixos-25.11 issues one until a real order succeeds), so curl runs with -k.
{ self, pkgs, lib }:
let
  test =
    env:
    let
      plan = (lib.importJSON ../generated/${env}/plan.json).plan;
      services = map (s: s.name) plan.services;
      zookeeper = plan.kafka.mode == "zookeeper";
    in
    pkgs.testers.runNixOSTest {
      name = "teipsum-${env}";
      nodes.machine =
        { ... }:
        {
          imports = [
            self.nixosModules.default
            self.nixosModules.${env}
          ];
          # The JVM, PostgreSQL and six services need room.
          virtualisation = {
            memorySize = 4096;
            diskSize = 8192;
            cores = 2;
          };
          networking.hosts."127.0.0.1" = [ plan.domain ];
          environment.systemPackages = [
            pkgs.curl
            pkgs.jq
          ];
        };
      testScript = ''
        import json
        import shlex

        domain = ${builtins.toJSON plan.domain}
        services = ${builtins.toJSON services}

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
                "curl", "-sk", "--resolve", f"{domain}:443:127.0.0.1",
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


        with subtest("every response carries the security headers"):
            for path in ["/", "/api/products", "/api/users/me", "/api/nothing"]:
                _, _, headers = api("GET", path)
                for header in [
                    "strict-transport-security: max-age=63072000; includesubdomains",
                    "x-content-type-options: nosniff",
                    "x-frame-options: deny",
                    "referrer-policy:",
                    "content-security-policy:",
                    "permissions-policy:",
                ]:
                    assert header in headers, f"{path}: no {header}"

        with subtest("a shopper and an admin register and log in"):
            for email in ["admin@teipsum.store", "ana@example.org"]:
                status, body, _ = api("POST", "/api/auth/register",
                                      {"email": email, "password": "correct horse battery", "display_name": "Tester"})
                assert status == 201, body
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
      '';
    };
in
{
  platform-stage = test "stage";
  platform-prod = test "prod";
}
