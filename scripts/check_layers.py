#!/usr/bin/env python3
"""Checks flashlm's one-way layer rule on the source tree.

The rule has one source of truth: the flashlm_layer(<name> <dir> <deps>...) calls in
CMakeLists.txt. A file under src/<dir>/ (any depth, tests included) may include, by a
quoted "folder/..." path, only headers of its own layer or of a layer below it: one it
lists, or one those list (CMake links the lists transitively, so that is what resolves).
The application folder (--app, default cli) may include any layer, and nothing may
include it. An include of a folder that is no layer, or a folder under src/ that no
flashlm_layer() claims, is an error too, so a new folder cannot slip past the rule.

With --docs FILE it also checks the layer table of that file: a row per layer folder and
for the application, and no `src/...` path that does not exist.

Usage: check_layers.py [--root DIR] [--app cli] [--docs docs/ARCHITECTURE.md] [--stamp FILE]
Prints one line per violation and exits 1 when there is any, 0 otherwise.
CMake runs it before compiling any layer (target flashlm_check_layers) and as the
ctest test layer_rules; scripts/check_layers_test.py feeds it deliberate violations.
"""
import argparse
import os
import re
import sys

# flashlm_layer(name dir dep...) at the start of a line: the function's definition
# (`function(flashlm_layer name dir)`) does not match, nor does a call in a comment.
LAYER_CALL = re.compile(r"^\s*flashlm_layer\(\s*([^)]*)\)", re.MULTILINE)
INCLUDE = re.compile(r'^[ \t]*#[ \t]*include[ \t]*"([^"]+)"', re.MULTILINE)
SOURCE_EXT = (".h", ".hpp", ".cpp", ".cc", ".cu", ".cuh", ".inc")


def strip_comments(cmake):
    return "\n".join(line.split("#", 1)[0] for line in cmake.splitlines())


def parse_layers(cmake_text):
    """Returns {name: (dir, {layers below it})} in declaration order; raises ValueError on bad lists."""
    layers = {}
    for m in LAYER_CALL.finditer(strip_comments(cmake_text)):
        args = m.group(1).split()
        if len(args) < 2:
            raise ValueError("flashlm_layer(%s): needs a name and a folder" % m.group(1).strip())
        name, folder, deps = args[0], args[1], args[2:]
        if "${" in name or "${" in folder:
            continue  # the function definition itself, or a computed call the check cannot read
        if name in layers:
            raise ValueError("layer '%s' declared twice" % name)
        for d in deps:
            if d not in layers:
                # Declaring a dependency before it exists would also fail in CMake; here it
                # means the order in CMakeLists.txt is not the layer order.
                raise ValueError("layer '%s' uses '%s', which is not declared above it" % (name, d))
        below = set(deps)
        for d in deps:
            below |= layers[d][1]
        layers[name] = (folder.strip("/"), below)
    if not layers:
        raise ValueError("no flashlm_layer() calls found")
    return layers


def owner_of(rel_path, layers, app):
    """The layer whose folder holds rel_path (a path under src/), longest folder first."""
    best = None
    for name, (folder, _) in layers.items():
        if rel_path == folder or rel_path.startswith(folder + "/"):
            if best is None or len(folder) > len(layers[best][0]):
                best = name
    if best is None and (rel_path == app or rel_path.startswith(app + "/")):
        return app
    return best


def check(root, app="cli"):
    """Returns a list of violation messages for the tree at root."""
    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        try:
            layers = parse_layers(f.read())
        except ValueError as e:
            return ["CMakeLists.txt: " + str(e)]
    src = os.path.join(root, "src")
    errors = []
    for name, (folder, _) in layers.items():
        if not os.path.isdir(os.path.join(src, folder)):
            errors.append("CMakeLists.txt: layer '%s' names src/%s/, which does not exist" % (name, folder))
    for entry in sorted(os.listdir(src)):
        if os.path.isdir(os.path.join(src, entry)) and owner_of(entry, layers, app) is None:
            # A parent of a layer folder (src/kernels/ holding kernels/cpu/) is fine when
            # every source file in it belongs to some layer; that is checked per file below.
            if not any(folder.startswith(entry + "/") for folder, _ in layers.values()):
                errors.append("src/%s/: not a layer (declare it with flashlm_layer() in CMakeLists.txt)" % entry)
    for dirpath, _, files in os.walk(src):
        for fn in sorted(files):
            if not fn.endswith(SOURCE_EXT):
                continue
            path = os.path.join(dirpath, fn)
            rel = os.path.relpath(path, src).replace(os.sep, "/")
            me = owner_of(rel, layers, app)
            if me is None:
                errors.append("src/%s: belongs to no layer" % rel)
                continue
            allowed = None if me == app else {me} | layers[me][1]
            with open(path, encoding="utf-8", errors="replace") as f:
                text = f.read()
            for m in INCLUDE.finditer(text):
                inc = m.group(1)
                line = text.count("\n", 0, m.start()) + 1
                if os.path.exists(os.path.join(dirpath, inc)) and "/" not in inc:
                    continue  # a header beside the file: same folder, same layer
                if ".." in inc.split("/"):
                    errors.append("src/%s:%d: include \"%s\" climbs out of its folder; name it from src/" %
                                  (rel, line, inc))
                    continue
                if "/" not in inc:
                    errors.append("src/%s:%d: include \"%s\" is not beside the file; name it from src/" %
                                  (rel, line, inc))
                    continue
                target = owner_of(inc, layers, app)
                if target is None:
                    errors.append("src/%s:%d: include \"%s\" is in no layer" % (rel, line, inc))
                elif target == app and me != app:
                    errors.append("src/%s:%d: layer '%s' includes the application (\"%s\")" % (rel, line, me, inc))
                elif allowed is not None and target not in allowed:
                    errors.append("src/%s:%d: layer '%s' includes \"%s\" of layer '%s', which is not below it "
                                  "in flashlm_layer() (it may use: %s)" %
                                  (rel, line, me, inc, target, ", ".join(sorted(allowed - {me})) or "nothing"))
    return errors


DOC_PATH = re.compile(r"`(src/[^`*<>\s]+)`")


def check_docs(root, docs, app="cli"):
    """Every layer folder and the application folder has a table row (`| ... | `src/<dir>/` |`)
    in the docs file, and every `src/...` path the docs name exists."""
    with open(os.path.join(root, "CMakeLists.txt"), encoding="utf-8") as f:
        try:
            layers = parse_layers(f.read())
        except ValueError as e:
            return ["CMakeLists.txt: " + str(e)]
    with open(os.path.join(root, docs), encoding="utf-8") as f:
        text = f.read()
    rows = {m.group(1).strip("/") for m in re.finditer(r"^\|[^|\n]*\|\s*`src/([^`]+)`\s*\|", text, re.MULTILINE)}
    errors = []
    for folder in [f for f, _ in layers.values()] + [app]:
        if folder not in rows:
            errors.append("%s: the layer table has no row for `src/%s/`" % (docs, folder))
    for m in DOC_PATH.finditer(text):
        if not os.path.exists(os.path.join(root, m.group(1))):
            line = text.count("\n", 0, m.start()) + 1
            errors.append("%s:%d: names `%s`, which does not exist" % (docs, line, m.group(1)))
    return errors


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--root", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))
    ap.add_argument("--app", default="cli", help="folder under src/ of the executable (may use every layer)")
    ap.add_argument("--docs", help="also check this docs file (relative to the root) against the layers")
    ap.add_argument("--stamp", help="file to touch when the check passes (for the build's dependency tracking)")
    args = ap.parse_args()
    root = os.path.abspath(args.root)
    errors = check(root, args.app)
    if args.docs:
        errors += check_docs(root, args.docs, args.app)
    for e in errors:
        print("layer rule: " + e, file=sys.stderr)
    if errors:
        print("layer rule: %d violation(s); the allowed uses are the flashlm_layer() lists in CMakeLists.txt"
              % len(errors), file=sys.stderr)
        return 1
    if args.stamp:
        with open(args.stamp, "w", encoding="utf-8") as f:
            f.write("ok\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
