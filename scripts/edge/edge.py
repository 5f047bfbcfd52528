#!/usr/bin/env python3
"""Helpers of scripts/check-edge.sh: read, adapt and compare the nginx.conf
that the NixOS nginx module renders, and judge curl's responses.

    edge.py sub CONF LOG STEP KIND REGEX REPLACEMENT   one named adaptation (re.M)
    edge.py facts CONF                                 shell assignments: domain, upstream ports, ...
    edge.py invariants BEFORE AFTER LOG                add_header lines and location blocks unchanged
    edge.py residue CONF TMP                           host paths the adaptations did not map
    edge.py static CONF                                locations whose own add_header drop inherited ones
    edge.py judge CONF HEADERS_DUMP CASE STATUS [NAME[=VALUE]...]  one response (or a burst)
    edge.py report HEADERS_DUMP CASE                   informational: status, Location, headers
    edge.py mutate CONF KIND                           the selftest's defects
    edge.py api-errors CASES_TSV                       API errors are JSON; X-Request-Id reported
    edge.py groups CONF                                the http level's TLS key exchange groups
    edge.py store-text MODULE_DIR NAME OUT             text of a pkgs.writeText "NAME" in the nginx module

Text processing only (store-text asks nix-instantiate to evaluate a string):
no nginx needed.
"""

import json
import os
import re
import subprocess
import sys

# The security headers every response must carry, whatever the config says:
# the http-level add_header lines of the rendered config are added to these.
FLOOR = [
    "Strict-Transport-Security",
    "X-Content-Type-Options",
    "X-Frame-Options",
    "Referrer-Policy",
    "Content-Security-Policy",
    "Permissions-Policy",
    "Cross-Origin-Opener-Policy",
]


# ------------------------------------------------------------------ parsing


def tokens(text):
    """nginx tokens with their offsets: words (quotes kept), ';', '{', '}'."""
    i, n = 0, len(text)
    while i < n:
        c = text[i]
        if c.isspace():
            i += 1
        elif c == "#":
            while i < n and text[i] != "\n":
                i += 1
        elif c in ";{}":
            yield c, i, i + 1
            i += 1
        else:
            start = i
            while i < n and not text[i].isspace() and text[i] not in ";{}":
                if text[i] in "'\"":
                    q = text[i]
                    i += 1
                    while i < n and text[i] != q:
                        if text[i] == "\\":
                            i += 1
                        i += 1
                i += 1
            yield text[start:i], start, i


def parse(text):
    """A tree of directives: {name, args, start, end, children (None for simple ones), path}."""
    root = {"name": "", "args": [], "start": 0, "end": len(text), "children": [], "path": []}
    stack = [root]
    words, wstart = [], None
    for tok, s, e in tokens(text):
        if tok == ";":
            if words:
                stack[-1]["children"].append(
                    {"name": words[0], "args": words[1:], "start": wstart, "end": e, "children": None,
                     "path": [d["name"] for d in stack[1:]]}
                )
            words, wstart = [], None
        elif tok == "{":
            node = {"name": words[0] if words else "", "args": words[1:], "start": wstart if wstart is not None else s,
                    "end": None, "children": [], "path": [d["name"] for d in stack[1:]]}
            stack[-1]["children"].append(node)
            stack.append(node)
            words, wstart = [], None
        elif tok == "}":
            if len(stack) == 1:
                raise SystemExit("edge.py: unbalanced '}' at offset %d" % s)
            stack.pop()["end"] = e
        else:
            if wstart is None:
                wstart = s
            words.append(tok)
    if len(stack) != 1:
        raise SystemExit("edge.py: unclosed block '%s'" % stack[-1]["name"])
    return root


def walk(node):
    for child in node["children"] or []:
        yield child
        if child["children"] is not None:
            yield from walk(child)


def unquote(word):
    if len(word) >= 2 and word[0] == word[-1] and word[0] in "'\"":
        return word[1:-1]
    return word


def block(name, node):
    return [c for c in node["children"] or [] if c["name"] == name]


def line_of(text, offset):
    s = text.rfind("\n", 0, offset) + 1
    e = text.find("\n", offset)
    return text[s: e if e >= 0 else len(text)]


def read(path):
    with open(path, encoding="utf-8") as f:
        return f.read()


def http_block(tree):
    https = block("http", tree)
    if len(https) != 1:
        raise SystemExit("edge.py: expected one http block, found %d" % len(https))
    return https[0]


def security_headers(tree):
    """(names in order, {name: set of configured values}) of the http level's add_header lines."""
    http = http_block(tree)
    names = list(FLOOR)
    for d in block("add_header", http):
        if d["args"] and d["args"][0] not in names:
            names.append(d["args"][0])
    values = {}
    for d in walk(tree):
        if d["name"] == "add_header" and len(d["args"]) >= 2:
            values.setdefault(d["args"][0].lower(), set()).add(unquote(d["args"][1]))
    return names, values


# ------------------------------------------------------------------ commands


def cmd_sub(conf, log, step, kind, regex, repl):
    """One named adaptation. Prints every line it changes; logs them to LOG
    (JSON lines) so that `invariants` can tell a path mapping from a rewrite."""
    text = read(conf)
    pattern = re.compile(regex, re.M)
    changes = []

    def replace(m):
        if "\n" in m.group(0):
            raise SystemExit("edge.py: step %s: a match may not span lines: %r" % (step, m.group(0)))
        new = m.expand(repl)
        start = text.rfind("\n", 0, m.start()) + 1
        end = text.find("\n", m.end())
        end = len(text) if end < 0 else end
        old_lines = text[start:end]
        new_lines = text[start:m.start()] + new + text[m.end():end]
        changes.append((old_lines, new_lines))
        return new

    out = pattern.sub(replace, text)
    if not changes:
        print("  %-22s not needed (no match for /%s/)" % (step, regex))
        return
    print("  %-22s %d change(s)" % (step, len(changes)))
    with open(log, "a", encoding="utf-8") as f:
        for old, new in changes:
            print("      - %s" % old.strip())
            print("      + %s" % (new.strip() if new.strip() else "(line removed)"))
            f.write(json.dumps({"step": step, "kind": kind, "old": old, "new": new}) + "\n")
    with open(conf, "w", encoding="utf-8") as f:
        f.write(out)


def cmd_facts(conf):
    """Shell assignments for check-edge.sh."""
    text = read(conf)
    tree = parse(text)
    http = http_block(tree)
    out = {}
    ssl_servers = [s for s in block("server", http)
                   if any("ssl" in d["args"][1:] for d in block("listen", s))]
    plain_servers = [s for s in block("server", http) if s not in ssl_servers]
    if len(ssl_servers) != 1:
        raise SystemExit("edge.py: expected one TLS server block, found %d" % len(ssl_servers))
    ssl = ssl_servers[0]
    names = [a for d in block("server_name", ssl) for a in d["args"]]
    out["DOMAIN"] = names[0]
    out["HTTPS_PORTS"] = " ".join(sorted({d["args"][0].rsplit(":", 1)[-1] for d in block("listen", ssl)}))
    out["HTTP_PORTS"] = " ".join(sorted({d["args"][0].rsplit(":", 1)[-1]
                                         for s in plain_servers for d in block("listen", s)}))
    out["HTTP_LISTEN"] = " ".join(d["args"][0] for s in plain_servers for d in block("listen", s))
    out["HTTPS_LISTEN"] = " ".join(d["args"][0] for d in block("listen", ssl))
    for u in block("upstream", http):
        servers = [d["args"][0] for d in block("server", u)]
        out["UPSTREAM_" + u["args"][0]] = " ".join(servers)
    limits = [d for d in block("client_max_body_size", http)]
    out["BODY_LIMIT"] = limits[-1]["args"][0] if limits else "1m"
    locs = {" ".join(l["args"]): l for l in block("location", ssl)}
    # Which upstream serves a location (proxy_pass http://NAME)
    for path, l in locs.items():
        for d in block("proxy_pass", l):
            out["ROUTE_" + re.sub(r"[^A-Za-z0-9]", "_", path)] = d["args"][0].split("//", 1)[-1]
    names, _ = security_headers(tree)
    out["SECURITY_HEADERS"] = " ".join(names)
    for k, v in out.items():
        print("%s=%s" % (k, shquote(v)))


def shquote(s):
    return "'" + s.replace("'", "'\\''") + "'"


def locations(text):
    tree = parse(text)
    return [(l["path"], text[l["start"]:l["end"]]) for l in walk(tree) if l["name"] == "location"]


def add_headers(text):
    tree = parse(text)
    return [(d["path"], text[d["start"]:d["end"]]) for d in walk(tree) if d["name"] == "add_header"]


def cmd_invariants(before, after, log):
    """The security-header add_header lines and the location blocks survive the
    adaptations byte for byte; inside a location only the lines a *path* step
    changed (and logged) may differ, exactly as logged."""
    b, a = read(before), read(after)
    allowed = set()
    if os.path.exists(log):
        for line in open(log, encoding="utf-8"):
            c = json.loads(line)
            if c["kind"] == "path":
                allowed.add((c["old"], c["new"]))
    ok = True
    hb, ha = add_headers(b), add_headers(a)
    if hb != ha:
        ok = False
        print("  FAIL add_header lines changed by the adaptations (%d before, %d after)" % (len(hb), len(ha)))
        for x in hb:
            if x not in ha:
                print("      - %s" % x[1])
        for x in ha:
            if x not in hb:
                print("      + %s" % x[1])
    else:
        print("  ok   %d add_header lines identical before and after" % len(hb))
    lb, la = locations(b), locations(a)
    if len(lb) != len(la):
        ok = False
        print("  FAIL %d location blocks before, %d after" % (len(lb), len(la)))
    else:
        mapped = 0
        for (pb, tb), (pa, ta) in zip(lb, la):
            if tb == ta and pb == pa:
                continue
            xs, ys = tb.split("\n"), ta.split("\n")
            same = pb == pa and len(xs) == len(ys) and all(
                x == y or (x, y) in allowed for x, y in zip(xs, ys))
            if same:
                mapped += 1
                continue
            ok = False
            print("  FAIL location block changed: %s" % tb.split("\n", 1)[0].strip())
        if ok:
            print("  ok   %d location blocks identical before and after (%d differ only by a mapped path)"
                  % (len(lb), mapped))
    sys.exit(0 if ok else 1)


HOST_PATHS = ["/nix/store/", "/var/lib/acme", "/var/cache/nginx", "/run/nginx", "/var/log/nginx",
              "/etc/nginx/", "/var/lib/nginx"]


def cmd_residue(conf, tmp):
    """Paths outside TMP that an adaptation did not map: findings. Debian's own
    /etc/nginx/{mime.types,fastcgi.conf,uwsgi_params} are the documented targets."""
    text = read(conf)
    documented = {"/etc/nginx/mime.types", "/etc/nginx/fastcgi.conf", "/etc/nginx/uwsgi_params"}
    bad = []
    for m in re.finditer(r"(?<![\w.])(/[^\s;'\"]+)", text):
        p = m.group(1)
        if p.startswith(tmp) or p in documented:
            continue
        if any(p.startswith(h) for h in HOST_PATHS):
            bad.append(line_of(text, m.start()).strip())
    for line in bad:
        print("  FINDING unmapped host path: %s" % line)
    sys.exit(1 if bad else 0)


def cmd_static(conf):
    """Report every location that has add_header lines of its own but lacks one
    of the http-level security headers (nginx inherits add_header only when a
    level has none), and every security add_header without `always`."""
    text = read(conf)
    tree = parse(text)
    names, _ = security_headers(tree)
    problems = 0
    for d in walk(tree):
        if d["name"] == "add_header" and d["args"] and d["args"][0] in names and d["args"][-1] != "always":
            problems += 1
            print("  static: no `always` (not sent on 4xx/5xx): %s" % text[d["start"]:d["end"]])
    for node in walk(tree):
        if node["children"] is None or node["name"] not in ("server", "location", "if"):
            continue
        own = {d["args"][0] for d in block("add_header", node) if d["args"]}
        if own:
            missing = [n for n in names if n not in own]
            if missing:
                problems += 1
                print("  static: %s %s sets its own add_header and drops %s"
                      % (node["name"], " ".join(node["args"]), ", ".join(missing)))
    if not problems:
        print("  static: every add_header level repeats the %d security headers, all with `always`" % len(names))
    # Other array directives follow the same rule (a level with one of its own
    # inherits none): reported, not judged.
    http = http_block(tree)
    for directive in ("ssl_conf_command", "proxy_set_header"):
        top = block(directive, http)
        if not top:
            continue
        for node in walk(http):
            if node["children"] is None or node["name"] not in ("server", "location"):
                continue
            own = block(directive, node)
            if not own or directive == "proxy_set_header" and block("include", node):
                continue
            lost = [" ".join(d["args"]) for d in top
                    if not any(unquote(o["args"][0]).lower() == unquote(d["args"][0]).lower() for o in own)]
            if lost:
                where = node["name"] + " " + " ".join(node["args"] or
                                                      [a for d in block("server_name", node) for a in d["args"]])
                print("  warn: %s has its own %s (%s), so the http-level %s not inherited: %s"
                      % (where.strip(), directive, "; ".join(" ".join(o["args"]) for o in own), 
                         "one is" if len(lost) == 1 else "ones are", "; ".join(lost)))
    sys.exit(1 if problems else 0)


def cmd_groups(conf):
    """The key exchange groups the http level configures (ssl_conf_command
    Groups or ssl_ecdh_curve), one per line; nothing if neither is set."""
    http = http_block(parse(read(conf)))
    for d in block("ssl_conf_command", http):
        if d["args"][:1] == ["Groups"]:
            print("\n".join(unquote(d["args"][1]).split(":")))
            return
    for d in block("ssl_ecdh_curve", http):
        print("\n".join(d["args"][0].split(":")))


def parse_dump(path):
    """curl -D output -> list of (status, {lower-name: [values]}) blocks (interim 1xx skipped)."""
    blocks, cur = [], None
    for raw in open(path, encoding="latin-1"):
        line = raw.rstrip("\r\n")
        if line.startswith("HTTP/"):
            cur = (int(line.split()[1]), {})
            blocks.append(cur)
        elif cur and ":" in line:
            k, v = line.split(":", 1)
            cur[1].setdefault(k.strip().lower(), []).append(v.strip())
    return [b for b in blocks if b[0] >= 200]


def cmd_judge(conf, dump, case, want, extra):
    """One line: the case, the status, the security headers found/missing.
    WANT is a status (or several, comma-separated); EXTRA are more required
    headers as NAME or NAME=VALUE (checked on responses with a wanted status).
    With several responses in DUMP (a burst), at least one must have a wanted
    status and every one of them must carry the security headers."""
    tree = parse(read(conf))
    names, values = security_headers(tree)
    wants = [int(w) for w in want.split(",")]
    responses = parse_dump(dump)
    if not responses:
        print("FAIL %-38s no response" % case)
        sys.exit(1)
    missing, wrong = {}, []  # missing: header -> statuses it was missing on

    for status, headers in responses:
        for n in names:
            vs = headers.get(n.lower())
            if not vs:
                missing.setdefault(n, set()).add(status)
            elif len(vs) > 1:
                w = "%s sent %d times" % (n, len(vs))
                wrong += [w] if w not in wrong else []
            elif n.lower() in values and vs[0] not in values[n.lower()]:
                w = "%s=%r not a configured value" % (n, vs[0])
                wrong += [w] if w not in wrong else []
        if status in wants:
            for e in extra:
                n, _, v = e.partition("=")
                got = headers.get(n.lower())
                if not got:
                    missing.setdefault(n, set()).add(status)
                elif v and got[0] != v:
                    w = "%s=%r, want %r" % (n, got[0], v)
                    wrong += [w] if w not in wrong else []
    statuses = [r[0] for r in responses]
    hit = next((s for s in statuses if s in wants), None)
    if len(responses) == 1:
        status_ok, shown = hit is not None, "status %d" % statuses[0]
    else:
        status_ok = hit is not None
        shown = "statuses %s of %d responses" % (summarize(statuses), len(responses))
    found = sum(1 for n in names if all(h.get(n.lower()) for _, h in responses))
    ok = status_ok and not missing and not wrong
    print("%s %-38s %s (want %s): %d/%d security headers%s%s%s"
          % ("ok  " if ok else "FAIL", case, shown, want, found, len(names),
             " on every response" if len(responses) > 1 and not missing else "",
             "; MISSING " + ", ".join(
                 n + ("" if len(responses) == 1 else " (on %s)" % "/".join(map(str, sorted(st))))
                 for n, st in missing.items()) if missing else "",
             "; WRONG " + "; ".join(wrong) if wrong else ""))
    sys.exit(0 if ok else 1)


def summarize(statuses):
    counts = {}
    for s in statuses:
        counts[s] = counts.get(s, 0) + 1
    return ", ".join("%d×%d" % (c, s) for s, c in sorted(counts.items()))


def cmd_report(dump, case):
    """Informational: status, Location and the headers of a response (port 80)."""
    responses = parse_dump(dump)
    if not responses:
        print("info %-38s no response" % case)
        return
    status, headers = responses[-1]
    present = [n for n in FLOOR if n.lower() in headers]
    print("info %-38s status %d%s; security headers present: %s"
          % (case, status, ", Location: " + headers["location"][0] if "location" in headers else "",
             ", ".join(present) if present else "none"))


def bodies(dump):
    """The bodies curl wrote next to DUMP (response-N.headers): response-N.body-#1
    for one URL, response-N.body-1..K for a URL glob, in request order."""
    stem = dump[: -len(".headers")] + ".body-"
    single = stem + "#1"
    if os.path.exists(single):
        return [single]
    found, i = [], 1
    while os.path.exists(stem + str(i)):
        found.append(stem + str(i))
        i += 1
    return found


def cmd_api_errors(cases):
    """The API error responses nginx produced (cases naming /api/): each must
    be JSON (Content-Type application/json, a body {"error", "message"} of
    strings) as docs/api.md promises; X-Request-Id is reported."""
    ok = True
    for line in open(cases, encoding="utf-8"):
        dump, case = line.rstrip("\n").split("\t", 1)
        if "/api/" not in case:
            continue
        responses = parse_dump(dump)
        files = bodies(dump)
        seen = set()
        for i, (status, headers) in enumerate(responses):
            if status < 400:
                continue
            ctype = headers.get("content-type", ["none"])[0]
            problem = None
            if not ctype.startswith("application/json"):
                problem = "Content-Type %s" % ctype
            elif i >= len(files):
                problem = "no body saved"
            else:
                try:
                    body = json.loads(read(files[i]))
                except ValueError:
                    body = None
                if not (isinstance(body, dict) and isinstance(body.get("error"), str)
                        and isinstance(body.get("message"), str)):
                    problem = "body %r" % read(files[i])[:80]
            if problem:
                ok = False
                if status not in seen:
                    print("FAIL %-38s %d is not a JSON error (docs/api.md): %s" % (case, status, problem))
            elif status not in seen:
                rid = "with" if "x-request-id" in headers else "no"
                print("ok   %-38s %d: JSON error %s, %s X-Request-Id"
                      % (case, status, json.loads(read(files[i]))["error"], rid))
            seen.add(status)
    sys.exit(0 if ok else 1)


def cmd_mutate(conf, kind):
    """The selftest's defects, applied to the rendered config before adapting."""
    text = read(conf)
    if kind == "drop-always":
        # The http-level X-Frame-Options loses `always`: nginx then adds it to
        # 2xx/3xx only, so 404, 413, 429, 502 go out without it.
        new, n = re.subn(r'^(\s*add_header X-Frame-Options "DENY") always;', r"\1;", text, count=1, flags=re.M)
        what = "removed `always` from the first `add_header X-Frame-Options` line"
    elif kind == "location-header":
        # A location gets one add_header of its own, so it no longer inherits
        # the http-level security headers.
        new, n = re.subn(r"^(\s*)(location /api/auth/ \{\n)", r'\1\2\1  add_header X-Selftest "1" always;\n',
                         text, count=1, flags=re.M)
        what = "added `add_header X-Selftest \"1\" always;` to `location /api/auth/`"
    else:
        raise SystemExit("edge.py: unknown mutation %s" % kind)
    if n != 1:
        raise SystemExit("edge.py: mutation %s did not apply" % kind)
    with open(conf, "w", encoding="utf-8") as f:
        f.write(new)
    print("  selftest defect: %s" % what)


def cmd_store_text(module_dir, name, out):
    """The text of `pkgs.writeText "NAME" ''...''` in the nginx module's files,
    evaluated by nix-instantiate (so indentation stripping and escapes are
    Nix's own). nixos-lite's stub keeps only a fake /nix/store path for it in
    nginx.conf; an include of it needs the file."""
    for fn in sorted(os.listdir(module_dir)):
        if not fn.endswith(".nix"):
            continue
        src = read(os.path.join(module_dir, fn))
        m = re.search(r'writeText\s+"%s"\s+\'\'' % re.escape(name), src)
        if not m:
            continue
        i = m.end()
        while True:
            j = src.index("''", i)
            nxt = src[j + 2: j + 3]
            if nxt in ("'", "$", "\\"):
                i = j + 3
                continue
            break
        literal = src[m.end() - 2: j + 2]
        if "${" in literal.replace("''${", ""):
            raise SystemExit("edge.py: %s in %s interpolates Nix values; cannot materialize" % (name, fn))
        p = subprocess.run(["nix-instantiate", "--eval", "--strict", "--json", "-E", literal],
                           capture_output=True, text=True)
        if p.returncode != 0:
            sys.stderr.write(p.stderr)
            raise SystemExit("edge.py: nix-instantiate could not evaluate the text of %s" % name)
        text = json.loads(p.stdout)
        with open(out, "w", encoding="utf-8") as f:
            f.write(text)
        print("      (text of pkgs.writeText \"%s\" from nginx/%s, %d lines)" % (name, fn, text.count("\n")))
        return
    raise SystemExit("edge.py: no pkgs.writeText \"%s\" in %s" % (name, module_dir))


def main(argv):
    if len(argv) < 2:
        print(__doc__)
        sys.exit(2)
    cmd, args = argv[1], argv[2:]
    if cmd == "sub":
        cmd_sub(*args)
    elif cmd == "facts":
        cmd_facts(*args)
    elif cmd == "invariants":
        cmd_invariants(*args)
    elif cmd == "residue":
        cmd_residue(*args)
    elif cmd == "static":
        cmd_static(*args)
    elif cmd == "judge":
        cmd_judge(args[0], args[1], args[2], args[3], args[4:])
    elif cmd == "report":
        cmd_report(*args)
    elif cmd == "mutate":
        cmd_mutate(*args)
    elif cmd == "api-errors":
        cmd_api_errors(*args)
    elif cmd == "groups":
        cmd_groups(*args)
    elif cmd == "store-text":
        cmd_store_text(*args)
    else:
        print(__doc__)
        sys.exit(2)


if __name__ == "__main__":
    main(sys.argv)
