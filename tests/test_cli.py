"""The ``infdepth`` command line: printed numbers checked against independent computation."""

from __future__ import annotations

import importlib
import json
import math
import re
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from scipy import integrate
from scipy.special import expit

from infdepth import cli
from infdepth.cli import build_parser, main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def field(out: str, key: str) -> str:
    match = re.search(rf"^{re.escape(key)}\s+(.*)$", out, flags=re.MULTILINE)
    assert match, f"no line {key!r} in:\n{out}"
    return match.group(1).strip()


def test_taxonomy_erf(capsys):
    code, out, _ = run(capsys, "taxonomy", "erf")
    assert code == 0
    b = 2 / 3
    c0 = b / math.asin(b)
    m = b / math.sqrt(1 - b * b) / math.asin(b)
    assert field(out, "kind") == "singular"
    assert float(field(out, "alpha")) == pytest.approx(2 * math.log(1 / c0) / math.log(m),
                                                       rel=1e-11)
    assert float(field(out, "c0")) == pytest.approx(c0, rel=1e-11)
    assert float(field(out, "m")) == pytest.approx(m, rel=1e-11)
    assert float(field(out, "dual_at_minus_one")) == -1.0
    assert float(field(out, "measured_alpha")) == pytest.approx(float(field(out, "alpha")),
                                                                abs=1e-6)
    assert "repelling" in field(out, "antipodal")


def test_taxonomy_sine_family_with_param(capsys):
    code, out, _ = run(capsys, "taxonomy", "sine_family", "--param", "a=2.676",
                       "--no-oscillation")
    assert code == 0
    a = 2.676
    alpha = 2 * math.log(math.sinh(a) / a) / math.log(a / math.tanh(a))
    assert float(field(out, "alpha")) == pytest.approx(alpha, rel=1e-11)
    assert field(out, "oscillation") == "None"


def test_taxonomy_polynomial_dual_majority_vote(capsys):
    code, out, _ = run(capsys, "taxonomy", "dual:0.3,0.2,0.5")
    assert code == 0
    assert field(out, "kind") == "majority_vote"
    assert field(out, "regime") == "interior"
    # 0.3 + 0.2 x + 0.5 x^2 = x  <=>  x = 0.6 (or 1)
    assert float(field(out, "fixed_point")) == pytest.approx(0.6, abs=1e-11)
    assert float(field(out, "multiplier")) == pytest.approx(0.2 + 2 * 0.5 * 0.6, abs=1e-11)


def test_taxonomy_softplus_json(capsys):
    code, out, _ = run(capsys, "taxonomy", "softplus", "--json")
    assert code == 0
    record = json.loads(out)
    assert record["kind"] == "psi_interpolation"

    # m = E[phi'(u)^2] / E[phi(u)^2] by adaptive quadrature, phi = softplus
    def gauss(f):
        return integrate.quad(lambda u: f(u) * math.exp(-u * u / 2) / math.sqrt(2 * math.pi),
                              -40, 40, limit=200, epsabs=1e-14)[0]

    m = gauss(lambda u: expit(u) ** 2) / gauss(lambda u: np.logaddexp(0, u) ** 2)
    assert record["m"] == pytest.approx(m, rel=1e-9)
    assert record["alpha"] is None


def _parse_dual(out: str) -> dict[int, float]:
    line = next(line for line in out.splitlines() if line.startswith("dual(xi) = "))
    terms = re.findall(r"([0-9.eE+-]+) xi\^(\d+)", line)
    return {int(k): float(c) for c, k in terms}


def test_design_dimension(capsys):
    code, out, _ = run(capsys, "design", "--dimension", "2")
    assert code == 0
    c = _parse_dual(out)
    assert set(c) == {1, 4}  # smallest even k with 2/(k - 1) < 2
    c0, t = c[1], c[4]
    assert c0 + t == pytest.approx(1.0, abs=1e-11)
    # independent: alpha = 2 log(1/c0) / log(c0 + 4 t), from the printed 12-digit numbers
    assert 2 * math.log(1 / c0) / math.log(c0 + 4 * t) == pytest.approx(2.0, abs=1e-10)
    hermite = dict(re.findall(r"a_(\d+) = ([0-9.eE+-]+)", out))
    assert float(hermite["1"]) ** 2 == pytest.approx(c0, rel=1e-10)
    assert float(hermite["4"]) ** 2 == pytest.approx(t, rel=1e-10)
    assert "He_4(x) / sqrt(4!)" in out
    verification = next(line for line in out.splitlines() if line.startswith("verification"))
    alphas = [float(v) for v in re.findall(r"alpha = ([0-9.eE+-]+)", verification)]
    assert len(alphas) == 2
    assert abs(alphas[0] - 2) <= 1e-9  # limit()
    assert abs(alphas[1] - 2) <= 1e-3  # the engine's one-period slope
    assert "dual(-1) = " in out
    dual_minus_one = float(re.search(r"dual\(-1\) = ([0-9.eE+-]+)", out).group(1))
    assert dual_minus_one == pytest.approx(c0 * -1 + t, abs=1e-11)  # > -1: no antipodal pole


def test_design_sine_family(capsys):
    code, out, _ = run(capsys, "design", "--alpha", "3", "--family", "sine")
    assert code == 0
    a = float(re.search(r"dual\(xi\) = sinh\(([0-9.]+) xi\)", out).group(1))
    assert 2 * math.log(math.sinh(a) / a) / math.log(a / math.tanh(a)) == pytest.approx(
        3.0, abs=1e-10
    )
    # printed phi: sin(sqrt(a) x) / sqrt((1 - e^{-2a}) / 2)
    freq, norm = re.search(r"phi\(x\)\s+= sin\(([0-9.]+) x\) / ([0-9.]+)", out).groups()
    assert float(freq) == pytest.approx(math.sqrt(a), rel=1e-10)
    assert float(norm) == pytest.approx(math.sqrt(-math.expm1(-2 * a) / 2), rel=1e-10)


def test_plot_taxonomy(tmp_path, capsys):
    import matplotlib.image as mpimg

    target = tmp_path / "phase.png"
    code, out, _ = run(capsys, "plot", "taxonomy", "--output", str(target))
    assert code == 0 and str(target) in out
    data = target.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    image = mpimg.imread(target)
    assert image.shape[0] > 400 and image.shape[1] > 1000
    # the four region colours of plots._COLORS all appear
    from infdepth.plots import _COLORS

    pixels = (image[..., :3] * 255).round().astype(int).reshape(-1, 3)
    present = {tuple(p) for p in np.unique(pixels, axis=0)}
    for colour in _COLORS.values():
        rgb = np.array([int(colour[i: i + 2], 16) for i in (1, 3, 5)])
        assert any(np.max(np.abs(rgb - np.array(p))) <= 2 for p in present), colour


@pytest.mark.parametrize(
    "argv,message",
    [
        (["design", "--alpha", "-1"], "positive"),
        (["design", "--alpha", "0.5", "--family", "sine"], "unreachable in the sine family"),
        (["taxonomy", "no_such_activation"], "unknown activation"),
        (["taxonomy", "relu", "--param", "slope"], "KEY=VALUE"),
        (["taxonomy", "hermite", "--param", "degree=1"], "no attracting point"),
        (["taxonomy", "dual:0,a,1"], "bad dual coefficients"),
    ],
)
def test_errors_are_reported(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("infdepth: error:") and message in err


@pytest.mark.parametrize("argv", [[], ["design"], ["plot"], ["design", "--alpha", "x"],
                                  ["design", "--alpha", "1", "--dimension", "1"]])
def test_usage_errors_exit_2(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2


def test_parser_is_extensible(capsys, monkeypatch):
    def _add_hello(subparsers):
        p = subparsers.add_parser("hello")
        p.set_defaults(func=lambda args: print("hello") or 0)

    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + [_add_hello])
    assert run(capsys, "hello")[1] == "hello\n"
    names = set(build_parser()._subparsers._group_actions[0].choices)
    assert {"taxonomy", "design", "plot"} <= names


def test_module_entry_point():
    result = subprocess.run(
        [sys.executable, "-m", "infdepth.cli", "taxonomy", "relu"],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert field(result.stdout, "kind") == "majority_vote"
    assert field(result.stdout, "regime") == "parabolic"


# ------------------------------------------------------------- one-line errors, start-up
@pytest.mark.parametrize(
    "argv,message",
    [
        (["taxonomy", "sine_family"], "needs the parameter 'a'"),
        (["taxonomy", "sine_family", "--param", "a=abc"], "must be a number, got 'abc'"),
        (["taxonomy", "relu", "--param", "foo=1"], "takes no parameters"),
        (["taxonomy", "leaky_relu", "--param", "foo=1"], "takes the parameters ['slope']"),
        (["design", "--alpha", "3", "--degree", "100000"], "degree must be at most"),
    ],
)
def test_parameter_errors_are_one_line(capsys, argv, message):
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert err.startswith("infdepth: error:") and message in err
    assert err.count("\n") == 1 and "Traceback" not in err


def _output_cases(tmp_path):
    existing = tmp_path / "a_file"
    existing.write_text("x")
    return [
        (["reproduce", "--quick", "-o", str(existing), "--sections", "taxonomy"],
         "is an existing file, not a folder"),
        (["reproduce", "--quick", "-o", str(existing / "sub"), "--sections", "taxonomy"],
         "cannot create the output folder"),
        (["reproduce", "--quick", "-o", str(tmp_path / "r"), "--seed", "-1",
          "--sections", "taxonomy"], "seed must be a non-negative integer"),
        (["plot", "taxonomy", "-o", str(tmp_path / "missing" / "x.png")], "does not exist"),
        (["plot", "taxonomy", "-o", str(tmp_path)], "is a folder"),
    ]


def test_output_path_errors_are_one_line(tmp_path, capsys):
    for argv, message in _output_cases(tmp_path):
        code, out, err = run(capsys, *argv)
        assert code == 2, argv
        assert err.startswith("infdepth: error:") and message in err, (argv, err)
        assert err.count("\n") == 1 and "Traceback" not in err
    assert not (tmp_path / "r").exists()  # validated before any work


def test_unexpected_errors_are_one_line(capsys, monkeypatch):
    def _add_boom(subparsers):
        p = subparsers.add_parser("boom")
        p.set_defaults(func=lambda args: {}["missing"])

    monkeypatch.setattr(cli, "SUBCOMMANDS", cli.SUBCOMMANDS + [_add_boom])
    monkeypatch.delenv("INFDEPTH_TRACEBACK", raising=False)
    code, out, err = run(capsys, "boom")
    assert code == 1
    assert err.startswith("infdepth: internal error: KeyError") and err.count("\n") == 1
    monkeypatch.setenv("INFDEPTH_TRACEBACK", "1")
    with pytest.raises(KeyError):
        main(["boom"])


def test_design_families_match():
    from infdepth.design import FAMILIES

    assert cli.DESIGN_FAMILIES == FAMILIES


def test_start_up_imports_neither_scipy_nor_sklearn():
    """`import infdepth`, `infdepth --help` and `--version` load no heavy dependency.

    (Timing is measured in benchmarks/README.md, not asserted; what makes it fast is
    that none of these modules is imported.)"""
    code = textwrap.dedent("""
        import sys, contextlib, io
        import infdepth
        assert not any(m.split(".")[0] in ("scipy", "sklearn", "numpy") for m in sys.modules)
        from infdepth.cli import main
        for argv in (["--help"], ["--version"], ["reproduce", "--help"], ["design", "--help"]):
            with contextlib.redirect_stdout(io.StringIO()):
                try:
                    main(argv)
                except SystemExit as exc:
                    assert exc.code == 0
        heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("scipy", "sklearn"))
        assert not heavy, heavy
        print("ok")
    """)
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"


def test_lazy_public_api():
    import infdepth

    namespace: dict = {}
    exec("from infdepth import *", namespace)
    assert sorted(infdepth.__all__) == sorted(infdepth._EXPORTS)
    for name in infdepth.__all__:
        assert namespace[name] is getattr(infdepth, name)
        assert name in dir(infdepth)
    assert infdepth.Kernel is importlib.import_module("infdepth.kernels").Kernel
    with pytest.raises(AttributeError, match="no attribute 'nosuch'"):
        infdepth.nosuch  # noqa: B018
