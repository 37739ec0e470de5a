"""Figures. Needs matplotlib (``pip install infdepth[plot]``), imported lazily.

:func:`plot_taxonomy` draws the phase diagram of docs/theory.md section 4. The infinite-depth
kind depends on three numbers only, dual(0), c0 = dual'(0) and m = dual'(1)
(:func:`infdepth.taxonomy.classify`), so two panels show every normalized dual:

* left, the slice dual(0) = 0 (a1 xi + a2 xi^2 + a3 xi^3 + ... ), axes (c0, m): the
  singular class with contour lines of alpha = 2 log(1/c0) / log m, the nearest-neighbour
  class on the edge c0 = 0, the region no dual can reach (m < 2 - c0) hatched, and the
  cubic slice a0 = 0 (2 - c0 <= m <= 3 - 2 c0) outlined;
* right, duals with dual(0) > 0, axes (dual(0), m): majority vote (m > 1), the parabolic
  line m = 1 (majority vote only at huge depth) and psi interpolation (m < 1); the
  unreachable region m < 1 - dual(0) hatched and the quadratic slice a3 = 0
  (1 - a0 <= m <= 2 - 2 a0) outlined.

Region colours are computed by calling :func:`~infdepth.taxonomy.classify` on the grid,
and the marked activations by :func:`~infdepth.taxonomy.limit`.
"""

from __future__ import annotations

import math

import numpy as np

from .taxonomy import KINDS, classify, limit, singular_exponent

__all__ = ["plot_taxonomy", "plot_resnet_taxonomy", "resnet_phase_data", "require_matplotlib",
           "TAXONOMY_MARKERS"]

_COLORS = {
    "singular": "#c6dbef",
    "nearest_neighbor": "#08519c",
    "majority_vote": "#fdd0a2",
    "psi_interpolation": "#c7e9c0",
}

#: (label, builder) of the activations marked on the phase diagram.
TAXONOMY_MARKERS: tuple[tuple[str, str, dict], ...] = (
    ("relu", "relu", {}),
    ("abs", "abs", {}),
    ("erf", "erf", {}),
    ("tanh", "tanh", {}),
    ("gelu", "gelu", {}),
    ("silu", "silu", {}),
    ("softplus", "softplus", {}),
    ("sigmoid", "sigmoid", {}),
    ("sin, a=2.676", "sine_family", {"a": 2.676}),
    ("sin, a=6.135", "sine_family", {"a": 6.13539}),
    ("sin, a=13.83", "sine_family", {"a": 13.8258}),
    ("xi^2", "hermite", {"degree": 2}),
    ("xi^3", "hermite", {"degree": 3}),
)
#: Paper duals (docs/theory.md sections 4-5) as coefficient lists.
_PAPER_DUALS = (
    ("paper D=1", [0, 0.5, 0, 0, 0, 0, 0, 0.5]),
    ("paper D=2", [0, 0.5, 0, 0.5]),
    ("paper D=4", [0, 0.25, 0.5, 0.25]),
    ("paper D=8", [0, 1 / 16, 7 / 8, 1 / 16]),
    ("0.3 + 0.2xi + 0.5xi^2", [0.3, 0.2, 0.5]),
    ("0.5 + 0.3xi + 0.2xi^2", [0.5, 0.3, 0.2]),
)


#: Label offsets (points) of markers that would otherwise overlap a neighbour or a
#: contour label; the others get (3, 3), staggered upwards when crowded.
_LABEL_OFFSETS = {
    "xi^2": (5, -10),
    "erf": (-16, 5),
    "tanh": (4, -9),
}


def _legend_star():
    from matplotlib.lines import Line2D

    return Line2D([], [], marker="*", color="k", linestyle="none",
                  label="design_activation(dimension=D)")


def require_matplotlib():
    """Import matplotlib (Agg canvas); a clear ImportError if it is missing."""
    try:
        import matplotlib  # noqa: F401
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(
            "plotting needs matplotlib: pip install 'infdepth[plot]' (or pip install matplotlib)"
        ) from exc
    return Figure, FigureCanvasAgg


def _marker_records():
    from .activations import Activation, activation

    out = []
    for label, name, params in TAXONOMY_MARKERS:
        out.append((label, limit(activation(name, **params), oscillation=False)))
    for label, coefficients in _PAPER_DUALS:
        act = Activation.from_dual_coefficients(coefficients, name=label)
        out.append((label, limit(act, oscillation=False)))
    from .design import design_activation

    for dimension in (1, 2, 3):
        act = design_activation(dimension=dimension)
        out.append((f"designed D={dimension}", limit(act, oscillation=False)))
    return out


def plot_taxonomy(output=None, *, resolution: int = 200, dpi: int = 130):
    """Draw the infinite-depth phase diagram; save it to ``output`` (PNG) if given.

    Returns the matplotlib ``Figure`` (an Agg canvas is attached, no pyplot state used).
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    from matplotlib.colors import ListedColormap
    from matplotlib.patches import Patch

    fig = Figure(figsize=(13, 5.6))
    FigureCanvasAgg(fig)
    ax_s, ax_m = fig.subplots(1, 2)
    codes = {kind: i for i, kind in enumerate(KINDS)}
    cmap = ListedColormap([_COLORS[k] for k in KINDS])

    # ---- left panel: dual(0) = 0, axes (c0, m)
    c0 = np.linspace(0.0, 1.0, resolution)
    log_m = np.linspace(0.0, math.log(20.0), resolution)
    C, LM = np.meshgrid(c0, log_m)
    M = np.exp(LM)
    region = np.full(C.shape, np.nan)
    alpha = np.full(C.shape, np.nan)
    for idx in np.ndindex(C.shape):
        c, m = float(C[idx]), float(M[idx])
        if m < 2 - c or m <= 1 or c >= 1:
            continue  # no normalized dual with dual(0) = 0 has these invariants
        kind, _, _ = classify(0.0, c, m)
        region[idx] = codes[kind]
        if kind == "singular":
            alpha[idx] = singular_exponent(c, m)
    ax_s.pcolormesh(C, M, region, cmap=cmap, vmin=-0.5, vmax=len(KINDS) - 0.5,
                    shading="auto")
    # label positions (c0, m) on each contour c0 = m^(-alpha/2), inside the feasible region
        # (placed away from the marker labels: alpha=8 clear of xi^2, alpha=4 of paper D=8)
    label_m = {0.5: 4.0, 1: 8.0, 2: 5.0, 3: 2.5, 4: 3.4, 8: 2.5}
    levels = sorted(label_m)
    cs = ax_s.contour(C, M, alpha, levels=levels, colors="k", linewidths=0.7, alpha=0.7)
    ax_s.clabel(cs, fmt=lambda v: f"alpha={v:g}", fontsize=7, inline_spacing=2,
                manual=[(m ** (-a / 2), m) for a, m in label_m.items()])
    edge = np.linspace(0, 1, 50)
    ax_s.fill_between(edge, 1.0, 2 - edge, hatch="//", facecolor="0.9", edgecolor="0.6",
                      linewidth=0)
    ax_s.plot(edge, 2 - edge, "k-", lw=0.8)
    ax_s.plot(edge, 3 - 2 * edge, "k--", lw=0.8, label="cubic duals a0 = 0 (between lines)")
    ax_s.plot([0, 0], [2, 20], color=_COLORS["nearest_neighbor"], lw=6, solid_capstyle="butt")
    ax_s.set_yscale("log")
    ax_s.set_xlim(-0.02, 1.0)
    ax_s.set_ylim(1.0, 20.0)
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter

    # a log axis labelled at 1 and 10 only reads badly: label every usual value
    ax_s.yaxis.set_major_locator(FixedLocator([1, 1.5, 2, 3, 4, 6, 10, 15, 20]))
    ax_s.yaxis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    ax_s.yaxis.set_minor_formatter(NullFormatter())
    ax_s.text(0.02, 1.05, "no dual: m < 2 - c0", fontsize=7, color="0.3")
    ax_s.set_xlabel("c0 = dual'(0)")
    ax_s.set_ylabel("m = dual'(1)")
    ax_s.set_title("dual(0) = 0: singular, contours of alpha; c0 = 0: 1-NN", fontsize=9)

    # ---- right panel: dual(0) > 0, axes (dual(0), m)
    v0 = np.linspace(1e-3, 1.0, resolution)
    m_axis = np.linspace(0.0, 3.0, resolution)
    V, M2 = np.meshgrid(v0, m_axis)
    region2 = np.full(V.shape, np.nan)
    for idx in np.ndindex(V.shape):
        v, m = float(V[idx]), float(M2[idx])
        if m < 1 - v or m <= 0 or (v >= 1):
            continue
        kind, _, _ = classify(v, 0.5, m)
        region2[idx] = codes[kind]
    ax_m.pcolormesh(V, M2, region2, cmap=cmap, vmin=-0.5, vmax=len(KINDS) - 0.5,
                    shading="auto")
    ax_m.fill_between(edge, 0.0, 1 - edge, hatch="//", facecolor="0.9", edgecolor="0.6",
                      linewidth=0)
    ax_m.axhline(1.0, color="#d94801", lw=2.5, label="m = 1: parabolic (ReLU family)")
    ax_m.plot(edge, 2 - 2 * edge, "k--", lw=0.8, label="quadratic duals a3 = 0 (below line)")
    ax_m.set_xlim(0.0, 1.0)
    ax_m.set_ylim(0.0, 3.0)
    ax_m.set_xlabel("dual(0) = E[phi]^2")
    ax_m.set_ylabel("m = dual'(1)")
    ax_m.set_title("dual(0) > 0: majority vote (m >= 1), psi interpolation (m < 1)",
                   fontsize=9)

    # ---- markers
    placed: list[tuple[float, float]] = []
    for label, rec in _marker_records():
        m = min(rec.m, 19.0) if math.isfinite(rec.m) else 19.0
        if rec.value_at_zero == 0:
            style = "*" if label.startswith("designed") else "o"
            ax_s.plot(rec.c0, m, style, color="k", ms=6 if style == "*" else 4)
            # stagger labels of markers that sit close together
            crowd = sum(1 for c, mm in placed if abs(c - rec.c0) < 0.12
                        and abs(math.log(mm / m)) < 0.08)
            placed.append((rec.c0, m))
            offset = _LABEL_OFFSETS.get(label, (3, 3 + 8 * crowd))
            ax_s.annotate(label, (rec.c0, m), fontsize=7, xytext=offset,
                          textcoords="offset points")
        else:
            ax_m.plot(rec.value_at_zero, min(m, 2.95), "o", color="k", ms=4)
            ax_m.annotate(label, (rec.value_at_zero, min(m, 2.95)), fontsize=7,
                          xytext=(3, 3), textcoords="offset points")
    handles = [Patch(facecolor=_COLORS[k], edgecolor="k", label=k) for k in KINDS]
    handles.append(Patch(facecolor="0.9", hatch="//", edgecolor="0.6",
                         label="no normalized dual"))
    handles.append(_legend_star())
    fig.legend(handles=handles, loc="lower center", ncol=6, fontsize=8, frameon=False)
    ax_s.legend(loc="upper right", fontsize=7)
    ax_m.legend(loc="upper right", fontsize=7)
    fig.suptitle("Infinitely deep networks: which classifier each dual activation becomes",
                 fontsize=11)
    fig.subplots_adjust(bottom=0.17, top=0.88, wspace=0.22)
    if output is not None:
        fig.savefig(output, dpi=dpi)
    return fig


# ----------------------------------------------------------------------------- ResNets
def resnet_phase_data(activation="relu", kind: str = "nngp", *, gammas=None,
                      depths=(10, 100, 1000, 10_000), xi: float = 0.0) -> dict:
    """k_L(xi) of the ResNet against the branch exponent gamma, for growing L.

    Returns ``{"gammas", "depths", "values" (len(depths) x len(gammas)), "limit" (the
    gamma = 1/2 ODE value), "xi"}``. As L grows, gamma > 1/2 tends to the input kernel
    (k = xi), gamma = 1/2 to the ODE kernel and gamma < 1/2 degenerates (docs/resnet.md §6).
    """
    from .activations import activation as _activation
    from .resnet import resnet_state

    act = _activation(activation) if isinstance(activation, str) else activation
    gammas = np.linspace(0.0, 1.0, 21) if gammas is None else np.asarray(gammas, dtype=float)
    x = np.array([float(xi)])
    values = np.array([[resnet_state(act, kind, L, x, branch_exponent=g).kernel(kind)[0][0]
                        for g in gammas] for L in depths])
    limit_value = resnet_state(act, kind, math.inf, x).kernel(kind)[0][0]
    return {"gammas": gammas, "depths": tuple(depths), "values": values,
            "limit": float(limit_value), "xi": float(xi)}


def plot_resnet_taxonomy(output=None, *, activations=("relu", "erf"), kind: str = "nngp",
                         depths=(10, 100, 1000, 10_000), xi: float = 0.0, dpi: int = 130):
    """Phase diagram of infinitely deep ResNets by branch exponent gamma (PNG if ``output``).

    One panel per activation: k_L(xi) against gamma for growing depths L, with the three
    phases shaded: gamma < 1/2 degenerate, gamma = 1/2 the ODE kernel (dashed line),
    gamma > 1/2 the input kernel k = xi (dotted line). Returns the ``Figure``.
    """
    Figure, FigureCanvasAgg = require_matplotlib()
    fig = Figure(figsize=(5.5 * len(activations), 4.4))
    FigureCanvasAgg(fig)
    for i, act in enumerate(activations):
        data = resnet_phase_data(act, kind, depths=depths, xi=xi)
        ax = fig.add_subplot(1, len(activations), i + 1)
        ax.axvspan(0, 0.5, color=_COLORS["majority_vote"], alpha=0.5, lw=0)
        ax.axvspan(0.5, 1.0, color=_COLORS["psi_interpolation"], alpha=0.5, lw=0)
        for L, row in zip(data["depths"], data["values"], strict=True):
            ax.plot(data["gammas"], row, "-o", ms=3, label=f"L = {L}")
        ax.axhline(data["limit"], color="k", ls="--", lw=1, label="gamma = 1/2, L = inf (ODE)")
        ax.axhline(xi, color="k", ls=":", lw=1, label="input kernel xi")
        ax.axvline(0.5, color="k", lw=0.8)
        ax.set_xlabel("branch exponent gamma (beta_L = L^-gamma)")
        ax.set_ylabel(f"{kind.upper()} k_L(xi = {xi:g})")
        ax.set_title(f"{act}: degenerate | ODE kernel | input kernel", fontsize=9)
        ax.legend(fontsize=7, loc="best")
    fig.suptitle("Infinitely deep ResNets: which kernel each branch exponent gives", fontsize=11)
    fig.subplots_adjust(top=0.85, bottom=0.13, wspace=0.25)
    if output is not None:
        fig.savefig(output, dpi=dpi)
    return fig
