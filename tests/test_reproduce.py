"""Tests for ``infdepth reproduce`` (infdepth.reproduce): its core on tiny sizes."""

from __future__ import annotations

import argparse
import csv
import json
import math

import numpy as np
import pytest

from infdepth import reproduce
from infdepth.reproduce import QUICK, Sizes, fit_slope, sizes_for
from infdepth.reproduce import depth as reproduce_depth

TINY = Sizes(
    dimensions=(2, 3),
    n_train=400,
    n_test=800,
    finite_depths=(20,),
    finite_n_train=250,
    consistency_dimensions=(2,),
    consistency_ns=(40, 160, 640),
    consistency_seeds=3,
    consistency_n_test=1000,
    consistency_solve_cap=160,
    consistency_relu_depth=20,
    regression_dimension=3,
    regression_n_train=150,
    regression_n_test=300,
    regression_depths=(1, 30, 1000),
    regression_seeds=1,
)


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("reproduce")
    summary = reproduce.run(out, sizes=TINY, seed=0, progress=False, verbose=False,
                            sections=("synthetic", "consistency", "depth"))
    return out, summary


def _number(text: str) -> float:
    return float(text)


def test_outputs_exist_and_contain_numbers(tiny_run):
    out, summary = tiny_run
    for name in ("summary.json", "summary.md", "synthetic.csv", "synthetic.json",
                 "synthetic.png", "consistency.csv", "consistency_runs.csv", "consistency.png",
                 "depth.csv", "depth.png"):
        path = out / name
        assert path.exists() and path.stat().st_size > 0, name
    on_disk = json.loads((out / "summary.json").read_text())
    assert on_disk["meta"]["sizes"]["n_train"] == TINY.n_train
    for section in ("synthetic", "consistency", "depth"):
        assert "skipped" not in on_disk[section] and "error" not in on_disk[section], section
    rows = list(csv.DictReader((out / "synthetic.csv").open()))
    # Bayes, majority, 1-NN, Hilbert + 8 activations x (1 finite depth + inf), per dimension
    # ... plus softplus with an explicit ridge at the finite depth and at depth inf
    assert len(rows) == len(TINY.dimensions) * (4 + 8 * 2 + 2)
    # every infinite-depth regime is present, each computed by its own limit rule
    rules = {r["activation"]: r["rule"] for r in rows if r["depth"] == "inf"
             and r["activation"] != "-"}
    assert rules["relu"] == rules["gelu"] == "majority_vote"
    assert rules["softplus"] == "psi_interpolation"  # dual'(1) < 1: the fourth regime
    assert rules["erf"] == "singular"
    for row in rows:
        assert row["error"] == "", (row["method"], row["error"])
        acc = _number(row["accuracy"])
        assert 0.0 <= acc <= 1.0 and math.isfinite(_number(row["excess_error"]))
    means = list(csv.DictReader((out / "consistency.csv").open()))
    assert means and all(math.isfinite(_number(r["mean_excess_error"])) for r in means)
    depth = list(csv.DictReader((out / "depth.csv").open()))
    assert len(depth) == len(TINY.regression_depths) * len(reproduce_depth.DEPTH_RIDGES)
    assert all(math.isfinite(_number(r["mse_posterior"])) for r in depth)
    assert "| d |" in (out / "summary.md").read_text()
    assert (out / "synthetic.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_bayes_beats_everything_up_to_sampling_error(tiny_run):
    _, summary = tiny_run
    rows = summary["synthetic"]["rows"]
    for d in TINY.dimensions:
        per = [r for r in rows if r["dimension"] == d]
        bayes = next(r for r in per if r["method"] == "Bayes (exact)")["accuracy"]
        for r in per:
            # the accuracies differ only where the predictions differ from Bayes's
            sd = math.sqrt(max(r["disagreement"], 1 / TINY.n_test) / TINY.n_test)
            assert r["accuracy"] <= bayes + 4 * sd, (d, r["method"], r["accuracy"], bayes)
            assert r["excess_error"] >= 0


def test_designed_activation_at_depth_inf_is_close_to_bayes_on_d2(tiny_run):
    _, summary = tiny_run
    head = summary["headline"]["bayes_vs_designed"]["2"]
    rows = [r for r in summary["synthetic"]["rows"] if r["dimension"] == 2]
    majority = next(r for r in rows if r["method"] == "majority vote")
    # 400 training points: the Hilbert-type rule is already far closer to Bayes than the
    # trivial rule (excess ~0.16) and than 1-NN (~0.09 at this size)
    assert head["designed_depth_inf_excess_error"] < 0.06
    assert head["bayes_accuracy"] - head["designed_depth_inf_accuracy"] < 0.07
    assert majority["excess_error"] > 2 * head["designed_depth_inf_excess_error"]


def test_consistency_slopes_are_negative(tiny_run):
    _, summary = tiny_run
    slopes = summary["consistency"]["slopes"]["2"]
    designed = next(v for k, v in slopes.items() if k.startswith("designed"))
    hilbert = next(v for k, v in slopes.items() if k.startswith("Hilbert"))
    assert designed < 0 and hilbert < 0
    assert summary["headline"]["consistency_slopes"]["2"] == slopes


def test_depth_section_regression_error_grows(tiny_run):
    _, summary = tiny_run
    main = [m for m in summary["depth"]["means"] if m["ridge"] == reproduce_depth.DEPTH_MAIN_RIDGE]
    shallow, deep = main[0], main[-1]
    assert deep["mse_smooth"] > 10 * shallow["mse_smooth"]
    # deep networks output ~0 off the training points: MSE of the zero function
    zero = summary["depth"]["limit"][0]["mse_smooth_zero_output"]
    assert deep["mse_smooth"] == pytest.approx(zero, rel=1e-6)
    assert deep["max_abs_output"] < 1e-100
    # the sign is still a good classifier
    assert deep["accuracy"] > 0.8


def test_fit_slope():
    n = np.array([1e2, 1e3, 1e4])
    assert fit_slope(n, 3 * n**-0.5) == pytest.approx(-0.5)
    assert math.isnan(fit_slope(n, [0.0, 0.0, 1.0]))


def test_sizes_presets_and_scaling():
    assert sizes_for(quick=True) == QUICK
    small = sizes_for(quick=False, scale=0.01)
    assert small.n_train == 100 and small.consistency_ns[0] >= 20
    assert sizes_for(quick=True, n_train=123).n_train == 123
    with pytest.raises(ValueError, match="unknown size"):
        sizes_for(bogus=1)
    with pytest.raises(ValueError, match="scale"):
        QUICK.scaled(0)
    with pytest.raises(ValueError, match="unknown sections"):
        reproduce.run("unused", sections=("nope",))


def test_cli_arguments_mount_on_a_subparser():
    parser = argparse.ArgumentParser(prog="infdepth")
    sub = parser.add_subparsers(dest="command")
    reproduce.add_arguments(sub.add_parser("reproduce"))
    args = parser.parse_args(["reproduce", "--quick", "--output", "x", "--seed", "3"])
    assert args.quick and args.output == "x" and args.seed == 3
    assert args.func is reproduce.run_from_args
    with pytest.raises(SystemExit) as exc:
        reproduce.main(["--help"])
    assert exc.value.code == 0


def test_taxonomy_section(tmp_path):
    summary = reproduce.run(tmp_path, quick=True, progress=False, verbose=False,
                            sections=("taxonomy",))
    assert "error" not in summary["taxonomy"], summary["taxonomy"]
    assert (tmp_path / summary["taxonomy"]["plot"]).stat().st_size > 0


# ------------------------------------------------------------------ the report itself
def _table_widths(md: str) -> list[tuple[int, int]]:
    """(header cells, row cells) for every markdown table row, unescaped pipes only."""
    out, header = [], None
    for line in md.splitlines():
        if not line.startswith("|"):
            header = None
            continue
        cells = len(line.replace("\\|", "").split("|")) - 2
        if header is None:
            header = cells
        out.append((header, cells))
    return out


def test_summary_markdown_tables_and_figures(tiny_run):
    out, summary = tiny_run
    md = (out / "summary.md").read_text()
    widths = _table_widths(md)
    assert widths and all(h == c for h, c in widths), "a markdown table row is broken"
    assert "max \\|f\\|" in md  # the depth table's header, escaped
    for png in (f for f in summary["files"] if f.endswith(".png")):
        assert f"]({png})" in md, f"{png} is not embedded in summary.md"


def test_effective_ranks_and_explicit_ridge_rows(tiny_run):
    out, summary = tiny_run
    rows = list(csv.DictReader((out / "synthetic.csv").open()))
    for row in rows:
        solved = row["solver"] not in ("", "None")
        assert (row["effective_rank"] != "") == solved, row["method"]
        if solved:
            assert int(row["effective_rank"]) == (int(row["n_train"])
                                                  - int(row["discarded_directions"]))
    plain = [r for r in rows if r["activation"] == "softplus" and "ridge" not in r["method"]]
    ridged = [r for r in rows if r["activation"] == "softplus" and "ridge" in r["method"]]
    assert len(ridged) == len(plain) == 2 * len(TINY.dimensions)
    # the pseudo-inverse keeps few directions; the explicit ridge keeps (and solves) all
    assert all(int(r["effective_rank"]) < int(r["n_train"]) // 2 for r in plain)
    assert all(int(r["effective_rank"]) == int(r["n_train"]) for r in ridged)
    md = summary["synthetic"].get("markdown") or (out / "summary.md").read_text()
    assert "d=2 rank" in md and "docs/theory.md section 4.3" in md


def test_consistency_error_bars_caps_and_full_sizes(tiny_run):
    out, summary = tiny_run
    cons = summary["consistency"]
    for r in cons["means"]:
        assert r["seeds"] == TINY.consistency_seeds
        assert r["stderr_excess_error"] == pytest.approx(
            r["std_excess_error"] / math.sqrt(r["seeds"]), rel=1e-12)
    assert all(math.isfinite(v) for v in cons["slope_errors"]["2"].values())
    md = (out / "summary.md").read_text()
    assert "| cap |" in md and "fitted only up to n = 160" in md  # no silent nan cells
    assert " +- " in md and "nan" not in md.split("## 2. Consistency")[1].split("## 3.")[0]
    # the full run extends the vote rules to 10^6 training points, 5 seeds
    assert max(reproduce.FULL.consistency_ns) == 10**6
    assert reproduce.FULL.consistency_seeds >= 5
    assert reproduce.FULL.consistency_solve_cap <= 10**4


def test_no_time_estimate_and_sections_respected(tmp_path, capsys):
    reproduce.run(tmp_path, quick=False, progress=False, verbose=True,
                  sections=("taxonomy",))
    printed = capsys.readouterr().out
    assert "Estimated" not in printed and "minutes" not in printed
    assert "sections: taxonomy" in printed and "[1]" not in printed


def test_module_entry_point_errors_are_one_line(tmp_path, capsys):
    existing = tmp_path / "a_file"
    existing.write_text("x")
    assert reproduce.main(["-o", str(existing), "--sections", "taxonomy"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("infdepth reproduce: error:") and err.count("\n") == 1


def test_resnet_section_against_explicit_gram_solves(tmp_path):
    """Section 5 on tiny sizes. ResNet rows: the accuracy of kernel interpolation with the
    ResNet NTK, recomputed here from the explicit Gram matrix (numpy's pseudo-inverse with
    the classifier's cutoff, n * 1e-12, instead of the classifier's Cholesky/eigh path);
    nearly singular directions may flip a point or two, hence 2 / n_test. MLP relu at depth
    infinity: the majority vote, whose accuracy is the test frequency of the majority class."""
    from sklearn.model_selection import train_test_split

    from infdepth import Kernel, SphereProjection
    from infdepth.data import load_dataset
    from infdepth.reproduce import resnet as reproduce_resnet

    sizes = Sizes(resnet_dimensions=(3,), resnet_n_train=60, resnet_n_test=300,
                  resnet_real_sets=("wine",), resnet_mlp_depths=(1, 10), resnet_depths=(1, 10),
                  resnet_phase_depths=(10,))
    result = reproduce_resnet.section_resnet(sizes, seed=0, progress=False, log=print)
    rows = {(r["data"], r["activation"], r["architecture"], r["depth"]): r
            for r in result["rows"]}
    assert len(rows) == 2 * 2 * (3 + 3)
    X, y = load_dataset("wine")
    Xtr, Xte, ytr, yte = train_test_split(X, y, test_size=0.3, stratify=y, random_state=0)
    proj = SphereProjection().fit(Xtr)
    Ptr, Pte = proj.transform(Xtr), proj.transform(Xte)
    classes = np.unique(ytr)
    Y = (ytr[:, None] == classes[None, :]).astype(float)
    for act in ("relu", "erf"):
        for depth in (1, 10, math.inf):
            kern = Kernel(act, "ntk", depth, architecture="resnet")
            K, k = kern(Ptr), kern(Pte, Ptr)
            coef = np.linalg.pinv((K + K.T) / 2, rcond=len(ytr) * 1e-12, hermitian=True) @ Y
            accuracy = np.mean(classes[np.argmax(k @ coef, axis=1)] == yte)
            row = rows[("wine", act, "resnet", depth)]
            assert abs(row["accuracy"] - accuracy) <= 2 / len(yte), (act, depth)
    majority = classes[np.argmax([np.sum(ytr == c) for c in classes])]
    assert rows[("wine", "relu", "mlp", math.inf)]["rule"] == "majority_vote"
    assert rows[("wine", "relu", "mlp", math.inf)]["accuracy"] == np.mean(yte == majority)
    files = reproduce_resnet.report_resnet(result, sizes, tmp_path, lambda *a: None)
    assert "resnet.csv" in files and (tmp_path / "resnet.csv").stat().st_size > 0
    # the taxonomy table: sigmoid's rho* is the root of (1 + (2/pi) arcsin r) / 2 = r
    # (its limit at large variance is a step with a mean), erf's limit correlation is 0
    tax = {(r["activation"], r["branch_exponent"]): r for r in result["taxonomy"]}
    sigmoid = tax[("sigmoid", 0.0)]
    r = sigmoid["limit_correlation"]
    assert sigmoid["rule"] == "majority_vote"
    assert abs((1 + 2 / np.pi * np.arcsin(r)) / 2 - r) < 1e-12
    assert tax[("erf", 0.25)]["rule"] == "singular" and tax[("erf", 0.25)]["limit_correlation"] == 0
    assert {tax[(a, 0.5)]["kind"] for a in ("relu", "erf", "sin")} == {"ode_kernel"}
    assert "[5b]" not in result["markdown"] and "Which classifier" in result["markdown"]
