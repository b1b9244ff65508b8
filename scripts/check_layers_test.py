#!/usr/bin/env python3
"""Tests of scripts/check_layers.py: small trees in a temp folder, each with one
deliberate violation that must fail the check (exit 1, naming the file), beside a clean
tree that must pass; and the real tree, which must pass."""
import os
import subprocess
import sys
import tempfile
import unittest

HERE = os.path.dirname(os.path.abspath(__file__))
SCRIPT = os.path.join(HERE, "check_layers.py")

CMAKE = """
function(flashlm_layer name dir)
endfunction()
flashlm_layer(base   base)
flashlm_layer(kernels kernels/cpu base)
# A comment naming flashlm_layer(fake fake) is not a declaration.
flashlm_layer(models models kernels)
flashlm_layer(engine engine models)
"""


def write(root, rel, text):
    path = os.path.join(root, rel)
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)


def clean_tree(root):
    write(root, "CMakeLists.txt", CMAKE)
    write(root, "src/base/status.h", "#pragma once\n")
    write(root, "src/kernels/cpu/ops.h", '#include "base/status.h"\n')
    write(root, "src/kernels/cpu/avx2/ops_avx2.cpp", '#include "kernels/cpu/ops.h"\n')
    write(root, "src/models/model.h", '#include "kernels/cpu/ops.h"\n#include "model_impl.h"\n')
    write(root, "src/models/model_impl.h", "#pragma once\n")
    # engine lists only models: base is below it through models and kernels.
    write(root, "src/engine/runner.cpp", '#include "models/model.h"\n#include "base/status.h"\n#include <vector>\n')
    write(root, "src/cli/main.cpp", '#include "engine/runner.h"\n#include "base/status.h"\n')


class CheckLayersTest(unittest.TestCase):
    def run_check(self, root):
        p = subprocess.run([sys.executable, SCRIPT, "--root", root], capture_output=True, text=True)
        return p.returncode, p.stderr

    def expect_violation(self, mutate, needle):
        with tempfile.TemporaryDirectory() as root:
            clean_tree(root)
            mutate(root)
            rc, err = self.run_check(root)
            self.assertEqual(rc, 1, err)
            self.assertIn(needle, err)

    def test_clean_tree_passes(self):
        with tempfile.TemporaryDirectory() as root:
            clean_tree(root)
            rc, err = self.run_check(root)
            self.assertEqual(rc, 0, err)

    def test_upward_include_fails(self):
        self.expect_violation(lambda r: write(r, "src/kernels/cpu/matmul.cpp", '#include "models/model.h"\n'),
                              "src/kernels/cpu/matmul.cpp:1: layer 'kernels' includes \"models/model.h\"")

    def test_upward_include_from_isa_subfolder_fails(self):
        self.expect_violation(lambda r: write(r, "src/kernels/cpu/avx2/x.cpp", '\n#include "engine/runner.h"\n'),
                              "src/kernels/cpu/avx2/x.cpp:2: layer 'kernels' includes \"engine/runner.h\"")

    def test_upward_include_from_test_fails(self):
        self.expect_violation(lambda r: write(r, "src/base/status_test.cpp", '#include "kernels/cpu/ops.h"\n'),
                              "src/base/status_test.cpp:1: layer 'base'")

    def test_including_the_application_fails(self):
        self.expect_violation(lambda r: write(r, "src/engine/x.cpp", '#include "cli/common.h"\n'),
                              "includes the application")

    def test_include_of_unknown_folder_fails(self):
        self.expect_violation(lambda r: write(r, "src/models/x.cpp", '#include "tensor/tensor.h"\n'),
                              "include \"tensor/tensor.h\" is in no layer")

    def test_undeclared_folder_fails(self):
        self.expect_violation(lambda r: write(r, "src/tensor/tensor.h", "#pragma once\n"),
                              "src/tensor/: not a layer")

    def test_relative_climb_fails(self):
        self.expect_violation(lambda r: write(r, "src/base/x.cpp", '#include "../engine/runner.h"\n'),
                              "climbs out of its folder")

    def test_missing_layer_folder_fails(self):
        self.expect_violation(lambda r: write(r, "CMakeLists.txt", CMAKE + "flashlm_layer(server server engine)\n"),
                              "names src/server/, which does not exist")

    def test_dependency_declared_out_of_order_fails(self):
        bad = CMAKE.replace("flashlm_layer(base   base)\n", "") + "flashlm_layer(base base)\n"
        self.expect_violation(lambda r: write(r, "CMakeLists.txt", bad), "not declared above it")

    def test_new_layer_is_picked_up_from_cmake(self):
        # A layer inserted between kernels and models: models may use it once it lists
        # it, and the new layer may not reach up into models.
        cmake = CMAKE.replace("flashlm_layer(models models kernels)",
                              "flashlm_layer(backend backend kernels)\nflashlm_layer(models models backend)")
        with tempfile.TemporaryDirectory() as root:
            clean_tree(root)
            write(root, "CMakeLists.txt", cmake)
            write(root, "src/backend/backend.h", '#include "kernels/cpu/ops.h"\n')
            write(root, "src/models/uses_backend.cpp", '#include "backend/backend.h"\n')
            rc, err = self.run_check(root)
            self.assertEqual(rc, 0, err)
            write(root, "src/backend/bad.cpp", '#include "models/model.h"\n')
            rc, err = self.run_check(root)
            self.assertEqual(rc, 1, err)
            self.assertIn("layer 'backend' includes \"models/model.h\"", err)

    def run_docs(self, root, table):
        write(root, "docs/ARCH.md", "# Layers\n\n| layer | folder | owns |\n|---|---|---|\n" + table)
        p = subprocess.run([sys.executable, SCRIPT, "--root", root, "--docs", "docs/ARCH.md"],
                           capture_output=True, text=True)
        return p.returncode, p.stderr

    def test_docs_table(self):
        rows = ["| %s | `src/%s/` | x |\n" % (n, d) for n, d in
                [("base", "base"), ("kernels", "kernels/cpu"), ("models", "models"), ("engine", "engine"), ("cli", "cli")]]
        with tempfile.TemporaryDirectory() as root:
            clean_tree(root)
            rc, err = self.run_docs(root, "".join(rows))
            self.assertEqual(rc, 0, err)
            rc, err = self.run_docs(root, "".join(rows[:1] + rows[2:]))
            self.assertEqual(rc, 1, err)
            self.assertIn("no row for `src/kernels/cpu/`", err)
            rc, err = self.run_docs(root, "".join(rows) + "\nSee `src/models/gone.h`.\n")
            self.assertEqual(rc, 1, err)
            self.assertIn("names `src/models/gone.h`, which does not exist", err)

    def test_repository_passes(self):
        p = subprocess.run([sys.executable, SCRIPT, "--root", os.path.join(HERE, ".."), "--docs",
                            "docs/ARCHITECTURE.md"], capture_output=True, text=True)
        self.assertEqual(p.returncode, 0, p.stderr)


if __name__ == "__main__":
    unittest.main()
