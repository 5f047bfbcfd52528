#!/usr/bin/env python3
"""Name the storefront's asset directory after its content.

Every script, stylesheet and picture of the storefront lives in one directory,
frontend/assets/<hash>/, and index.html refers to them as /assets/<hash>/...
nginx serves /assets/ with `Cache-Control: public, max-age=31536000,
immutable` and index.html with `no-cache`, so browsers keep the assets for a
year and still see a change at once: a changed file changes the hash, hence
every URL. The modules import each other relatively, so only index.html
names the directory.

    python3 frontend/rehash.py          # after editing an asset: rename the directory, rewrite index.html
    python3 frontend/rehash.py --check  # CI: exit 1 if the directory or index.html is stale

The hash is the first 12 hex digits of SHA-256 over every file of the
directory in path order, each as its length-prefixed relative path and
length-prefixed bytes: the same files give the same name on every machine.
Standard library only; no build step.

Exit codes: 0 up to date (or fixed), 1 stale (--check), 2 something to fix by hand.
"""

from __future__ import annotations

import argparse
import hashlib
import re
import sys
from pathlib import Path

HASH_LENGTH = 12
FRONTEND = Path(__file__).resolve().parent
ASSETS = FRONTEND / "assets"
INDEX = FRONTEND / "index.html"
# /assets/<directory>/ as index.html refers to it.
REFERENCE = re.compile(r"/assets/([^/\"'\s<>]+)/")
# Markup the Content-Security-Policy (no 'unsafe-inline') would block.
INLINE = [
    (re.compile(r"<style\b", re.I), "a <style> element"),
    (re.compile(r"\sstyle\s*=", re.I), "a style attribute"),
    (re.compile(r"\son[a-z]+\s*=", re.I), "an inline event handler (on...=)"),
    (re.compile(r"<script\b(?![^>]*\bsrc\s*=)[^>]*>", re.I), "an inline <script>"),
    (re.compile(r"javascript:", re.I), "a javascript: URL"),
]


class Problem(Exception):
    """Something the tool cannot decide for you."""


def asset_directory() -> Path:
    """The one directory under frontend/assets/."""
    if not ASSETS.is_dir():
        raise Problem(f"{ASSETS} does not exist")
    entries = sorted(ASSETS.iterdir())
    directories = [e for e in entries if e.is_dir() and not e.is_symlink()]
    others = [e.name for e in entries if e not in directories]
    if others:
        raise Problem(f"only one directory belongs in {ASSETS}; remove: {', '.join(others)}")
    if len(directories) != 1:
        found = ", ".join(d.name for d in directories) or "none"
        raise Problem(f"expected exactly one directory in {ASSETS}, found: {found}")
    return directories[0]


def files_of(directory: Path) -> list[tuple[str, Path]]:
    """Every file below `directory` as (relative POSIX path, path), in path order."""
    found = []
    for path in directory.rglob("*"):
        relative = path.relative_to(directory).as_posix()
        if any(part.startswith(".") for part in relative.split("/")):
            raise Problem(f"hidden file {path} would be served and hashed; remove it")
        if path.is_symlink():
            raise Problem(f"{path} is a symbolic link; copy the file instead")
        if path.is_file():
            found.append((relative, path))
    if not found:
        raise Problem(f"{directory} is empty")
    # Sorting the strings (code points), not Paths: the same order everywhere.
    return sorted(found, key=lambda item: item[0])


def content_hash(directory: Path) -> str:
    """The directory's name-to-be: a digest of its files' paths and bytes."""
    digest = hashlib.sha256()
    for relative, path in files_of(directory):
        name = relative.encode("utf-8")
        data = path.read_bytes()
        # Length prefixes keep ("ab", "c") and ("a", "bc") apart.
        digest.update(b"%d:%s\n%d:" % (len(name), name, len(data)))
        digest.update(data)
    return digest.hexdigest()[:HASH_LENGTH]


def inline_code(html: str) -> list[str]:
    """What in index.html the storefront's CSP would block."""
    without_comments = re.sub(r"<!--.*?-->", "", html, flags=re.S)
    return [what for pattern, what in INLINE if pattern.search(without_comments)]


def missing_files(html: str, directory: Path) -> list[str]:
    """Files index.html asks for under /assets/<name>/ that the directory lacks."""
    pattern = re.compile(r"/assets/%s/([^\"'\s<>?#]+)" % re.escape(directory.name))
    return sorted({m for m in pattern.findall(html) if not (directory / m).is_file()})


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(
        description="Name frontend/assets/<hash>/ after its content and point index.html at it.")
    parser.add_argument("--check", action="store_true",
                        help="change nothing; exit 1 if the directory name or index.html is stale")
    args = parser.parse_args(argv)
    try:
        directory = asset_directory()
        wanted = content_hash(directory)
        html = INDEX.read_text(encoding="utf-8")
    except (Problem, OSError) as error:
        print(f"rehash: {error}", file=sys.stderr)
        return 2

    blocked = inline_code(html)
    if blocked:
        print(f"rehash: {INDEX.name} has {', '.join(blocked)}, which the Content-Security-Policy blocks;"
              " move it to a file under assets/", file=sys.stderr)
        return 2
    referenced = sorted(set(REFERENCE.findall(html)))
    if not referenced:
        print(f"rehash: {INDEX.name} refers to nothing under /assets/", file=sys.stderr)
        return 2

    stale = []
    if directory.name != wanted:
        stale.append(f"assets/{directory.name}/ should be named assets/{wanted}/")
    if referenced != [wanted]:
        stale.append(f"{INDEX.name} refers to /assets/{', /assets/'.join(referenced)}/ instead of /assets/{wanted}/")

    if args.check:
        if stale:
            for line in stale:
                print(f"rehash: stale: {line}", file=sys.stderr)
            print("rehash: run `python3 frontend/rehash.py` and commit the result", file=sys.stderr)
            return 1
    elif stale:
        target = ASSETS / wanted
        if directory != target:
            directory.rename(target)
            directory = target
        rewritten = REFERENCE.sub(f"/assets/{wanted}/", html)
        if rewritten != html:
            INDEX.write_text(rewritten, encoding="utf-8")
            html = rewritten
        print(f"rehash: assets/{wanted}/ ({'; '.join(stale)})")

    missing = missing_files(html, ASSETS / wanted)
    if missing:
        print(f"rehash: {INDEX.name} refers to missing files: {', '.join(missing)}", file=sys.stderr)
        return 2
    if not stale:
        print(f"rehash: assets/{wanted}/ is up to date")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
