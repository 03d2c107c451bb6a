"""Lesson 13 (a quantized cache in a real model): matplotlib drawings of :mod:`.experiments`' results.

Each ``draw_*`` takes axes (or ``None`` for a new figure) and a result; it computes nothing.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.ticker import ScalarFormatter

from .._ui import MSE_COLOR, OUTLIER_COLOR, PROD_COLOR, ROTATED_COLOR, UNIFORM_COLOR
from .experiments import LABELS

__all__ = ["METHOD_COLORS", "draw_table", "draw_metrics_vs_bits", "draw_position_kl", "draw_setting", "draw_score_noise",
           "draw_split"]

#: one colour per method (the course's colours for uniform, MSE and Prod)
METHOD_COLORS = {"uniform": UNIFORM_COLOR, "kivi": "#937860", "mse": MSE_COLOR, "prod": PROD_COLOR,
                 "polar": "#c44e9b", "split": ROTATED_COLOR}


def _axes(axes, n, figsize):
    if axes is None:
        _, axes = plt.subplots(1, n, figsize=figsize)
    return np.atleast_1d(axes)


def _by_method(table):
    for method in table.methods:
        rs = sorted((r for r in table.results if r.method == method), key=lambda r: r.bits_per_coordinate)
        yield method, rs


def draw_table(ax, table):
    """The lesson's table as a grid: methods down, bits across; each cell colored by its mean KL.

    A cell gives the mean KL (nats), the perplexity change, the share of
    positions whose top-1 token is unchanged, and the stored bits per
    coordinate (side information included). Drawn, not printed: the last
    digits of a model run change with the CPU's BLAS kernel.
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(13, 0.95 * len(table.methods) + 1.2))
    methods = table.methods
    columns = sorted({r.bits for r in table.results})
    grid = np.full((len(methods), len(columns)), np.nan)
    for r in table.results:
        grid[methods.index(r.method), columns.index(r.bits)] = np.log10(r.kl_mean)
    ax.imshow(np.ma.masked_invalid(grid), cmap="RdYlGn_r", vmin=-2.5, vmax=0.5, aspect="auto")
    for r in table.results:
        i, j = methods.index(r.method), columns.index(r.bits)
        change = 100 * r.delta_perplexity / r.perplexity_ref
        change = f"{change:+.1f}%" if abs(change) < 10 else f"{change:+.0f}%"
        ax.text(j, i, f"KL {r.kl_mean:.2g}\nperplexity {change}\ntop-1 same {r.top1_agreement:.0%}\n"
                      f"{r.bits_per_coordinate:.2f} bits/coord", ha="center", va="center", fontsize=8)
    ax.set_xticks(range(len(columns)), [f"{b:g} bits" for b in columns])
    ax.set_yticks(range(len(methods)), [LABELS.get(m, m) for m in methods])
    ax.set_xticks(np.arange(len(columns) + 1) - 0.5, minor=True)
    ax.set_yticks(np.arange(len(methods) + 1) - 0.5, minor=True)
    ax.grid(which="minor", color="white", lw=2)
    ax.tick_params(which="minor", length=0)
    r0 = table.results[0]
    ax.set_title(f"the prompt's cache quantized ({r0.float16_nbytes:,} bytes in float16), {r0.kl.size} tokens "
                 f"read after it (exact perplexity {r0.perplexity_ref:.1f})\ncolour: mean KL, log scale")
    return ax


def draw_metrics_vs_bits(axes, table):
    """Perplexity, mean KL and top-1 agreement against the cache's bits per coordinate, one line per method.

    The x axis counts everything stored (codes and side information), so two
    points above the same x cost the same memory.
    """
    axes = _axes(axes, 3, (13, 3.6))
    ax_p, ax_kl, ax_t = axes
    for method, rs in _by_method(table):
        x = [r.bits_per_coordinate for r in rs]
        style = {"color": METHOD_COLORS.get(method, "k"), "marker": "o", "label": LABELS.get(method, method)}
        ax_p.plot(x, [r.perplexity for r in rs], **style)
        ax_kl.plot(x, [r.kl_mean for r in rs], **style)
        ax_t.plot(x, [100 * r.top1_agreement for r in rs], **style)
        for r in rs:
            ax_kl.annotate(f"{r.bits:g}", (r.bits_per_coordinate, r.kl_mean), xytext=(4, 3),
                           textcoords="offset points", fontsize=7, color=style["color"])
    ref = table.results[0].perplexity_ref
    ax_p.axhline(ref, color="k", ls="--", lw=1, label=f"exact cache ({ref:.1f})")
    ax_p.set_yscale("log")
    ax_p.yaxis.set_major_formatter(ScalarFormatter())
    ax_p.yaxis.set_minor_formatter(ScalarFormatter())
    ax_p.tick_params(axis="y", which="minor", labelsize=7)
    ax_p.set_ylabel("perplexity (log scale)")
    ax_p.set_title("perplexity of the 128 measured tokens")
    ax_kl.set_yscale("log")
    ax_kl.set_ylabel("mean KL(exact || quantized), nats")
    ax_kl.set_title("next-token distributions: KL (labels: bits)")
    ax_t.axhline(100, color="k", ls="--", lw=1)
    ax_t.set_ylabel("top-1 token unchanged (%)")
    ax_t.set_title("top-1 agreement")
    for ax in axes:
        ax.set_xlabel("bits per coordinate, side information included")
        ax.grid(alpha=0.3)
    ax_p.legend(fontsize=7)
    return axes


def draw_position_kl(ax, result, reference):
    """KL of each measured position's next-token distribution; red crosses where the top-1 token changed."""
    if ax is None:
        _, ax = plt.subplots(figsize=(9, 3))
    pos = reference.n_prompt + np.arange(result.kl.size)
    color = METHOD_COLORS.get(result.method, "k")
    ax.bar(pos, result.kl, width=1.0, color=color)
    changed = ~result.same_top1
    ax.plot(pos[changed], np.zeros(changed.sum()), "x", color=OUTLIER_COLOR, ms=5,
            label=f"top-1 changed ({changed.sum()} of {changed.size})")
    ax.set_xlim(pos[0] - 1, pos[-1] + 1)
    ax.set_xlabel("position in the text (the prompt is before)")
    ax.set_ylabel("KL, nats")
    ax.set_title(f"{result.label}: KL at each position")
    ax.legend(fontsize=8, loc="upper left")
    return ax


def draw_setting(axes, table, method, bits):
    """The widget's figure: the setting's per-position KL, and where it sits among all the settings."""
    axes = _axes(axes, 2, (12, 3.4))
    result = table.get(method, bits)
    draw_position_kl(axes[0], result, table.reference)
    ax = axes[1]
    for m, rs in _by_method(table):
        ax.plot([r.bits_per_coordinate for r in rs], [r.kl_mean for r in rs], marker="o", ms=4, alpha=0.35,
                color=METHOD_COLORS.get(m, "k"), label=LABELS.get(m, m))
    ax.plot([result.bits_per_coordinate], [result.kl_mean], marker="o", ms=12, mfc="none", mew=2,
            color=METHOD_COLORS.get(method, "k"))
    ax.set_yscale("log")
    ax.set_xlabel("bits per coordinate, side information included")
    ax.set_ylabel("mean KL, nats")
    ax.set_title(f"mean KL {result.kl_mean:.2g} at {result.bits_per_coordinate:.2f} bits per coordinate")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    return axes


def draw_score_noise(axes, noise):
    """Left: the score errors of one layer, MSE against Prod keys. Right: attention-row error per layer."""
    axes = _axes(axes, 2, (12, 3.4))
    ax_h, ax_l = axes
    lo = min(np.percentile(noise.sample[k], 0.5) for k in noise.sample)
    hi = max(np.percentile(noise.sample[k], 99.5) for k in noise.sample)
    bins = np.linspace(lo, hi, 80)
    for name, color in (("mse", MSE_COLOR), ("prod", PROD_COLOR)):
        mean, std = noise.score_error[name][noise.sample_layer]
        ax_h.hist(noise.sample[name], bins=bins, density=True, histtype="step", lw=1.8, color=color,
                  label=f"{LABELS[name]}: mean {mean:+.2f}, std {std:.2f}")
        ax_l.plot(noise.layers, noise.weight_error[name], marker="o", ms=3, color=color,
                  label=f"{LABELS[name]}: mean {noise.weight_error[name].mean():.2f}")
    ax_h.axvline(0, color="k", lw=0.8)
    ax_h.set_xlabel("score error (s_hat - s) / std(s)")
    ax_h.set_ylabel("density")
    ax_h.set_title(f"layer {noise.sample_layer}, keys at {noise.bits} bits: score errors")
    ax_h.legend(fontsize=7)
    ax_l.set_xlabel("layer")
    ax_l.set_ylabel("0.5 sum |w_hat - w|")
    ax_l.set_title("attention weights: distance from the exact row")
    ax_l.set_ylim(bottom=0)
    ax_l.legend(fontsize=7)
    ax_l.grid(alpha=0.3)
    return axes


def draw_split(axes, analysis):
    """Left: energy share of the outlier half, keys and values, per layer. Right: the keys' error per layer."""
    axes = _axes(axes, 2, (12, 3.4))
    ax_s, ax_e = axes
    ax_s.plot(analysis.layers, 100 * analysis.energy_share["keys"], marker="o", ms=3, color=OUTLIER_COLOR,
              label=f"keys (mean {100 * analysis.energy_share['keys'].mean():.0f}%)")
    ax_s.plot(analysis.layers, 100 * analysis.energy_share["values"], marker="o", ms=3, color=MSE_COLOR,
              label=f"values (mean {100 * analysis.energy_share['values'].mean():.0f}%)")
    ax_s.axhline(50, color="k", ls=":", lw=1, label="no outliers (50%)")
    ax_s.set_xlabel("layer")
    ax_s.set_ylabel("share of sum x^2 (%)")
    ax_s.set_title("energy in the loudest half of the channels")
    ax_s.set_ylim(0, 100)
    ax_s.legend(fontsize=7)
    for what, color in (("keys", OUTLIER_COLOR), ("values", MSE_COLOR)):
        ratio = analysis.same_storage_ratio(what)
        total = analysis.same_storage_ratio(what, total=True)
        ax_e.plot(analysis.layers, ratio, marker="o", ms=3, color=color,
                  label=f"{what}: all layers {total:.2f}")
    ax_e.axhline(1, color="k", ls="--", lw=1, label="as good as TurboQuantMSE")
    bpc = list(analysis.bits_per_coordinate.values())[1]
    ax_e.set_xlabel("layer")
    ax_e.set_ylabel("error ratio")
    ax_e.set_title(f"split {analysis.bits + 0.5:g} ({bpc:.2f} bits/coord) / TurboQuantMSE at the same storage")
    ax_e.legend(fontsize=7)
    ax_e.grid(alpha=0.3)
    return axes
