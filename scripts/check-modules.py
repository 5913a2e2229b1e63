#!/usr/bin/env python3
"""Dependencies flow one way, inside each crate as between crates: fails,
naming the loop, where a module of a crate imports (`crate::m`) a module
that imports it back, directly or through others. The crate root (lib.rs,
main.rs) is where the crate's shared items live and is left out; so are
tests modules.

    scripts/check-modules.py             # every crate of the workspace
    scripts/check-modules.py extract     # one crate's folder
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")


def modules(src):
    """Module path -> its code, tests left out."""
    out = {}
    for folder, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(folder, f), src)[:-3]
            name = rel.removesuffix("/mod").replace("/", "::")
            if name in ("lib", "main") or name.startswith("bin::"):
                continue
            with open(os.path.join(folder, f), encoding="utf-8") as fh:
                out[name] = fh.read().split("#[cfg(test)]")[0]
    return out


def imports(name, code, names):
    """The crate's modules that `name` names through `crate::`."""
    deps = set()
    for m in re.finditer(r"crate::(\{[^}]*\}|[a-z_0-9]+(?:::[a-z_0-9]+)*)", code):
        text = m.group(1)
        paths = re.findall(r"[a-z_0-9]+(?:::[a-z_0-9]+)*", text) if text.startswith("{") else [text]
        for p in paths:
            parts = p.split("::")
            for k in range(len(parts), 0, -1):
                q = "::".join(parts[:k])
                # A submodule naming its own parent is the parent's business.
                if q in names and q != name and not name.startswith(q + "::"):
                    deps.add(q)
                    break
    return deps


def cycles(graph):
    found = set()

    def walk(node, stack):
        for nxt in sorted(graph.get(node, ())):
            if nxt in stack:
                loop = stack[stack.index(nxt):]
                i = loop.index(min(loop))
                found.add(tuple(loop[i:] + loop[:i]))
            elif len(stack) < len(graph):
                walk(nxt, stack + [nxt])

    for n in sorted(graph):
        walk(n, [n])
    return sorted(found)


def main():
    crates = sys.argv[1:] or ["extract", "classify"] + [
        os.path.join("crates", c) for c in sorted(os.listdir(os.path.join(ROOT, "crates")))
    ]
    bad = 0
    for crate in crates:
        mods = modules(os.path.join(ROOT, crate, "src"))
        graph = {n: imports(n, code, set(mods)) for n, code in mods.items()}
        for loop in cycles(graph):
            print(f"check-modules: {crate}: import cycle {' -> '.join(loop + (loop[0],))}", file=sys.stderr)
            bad += 1
    if bad:
        sys.exit(1)
    print(f"check-modules: no import cycle in {len(crates)} crates")


if __name__ == "__main__":
    main()
