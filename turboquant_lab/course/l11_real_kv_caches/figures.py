"""Lesson 11 (real KV caches): matplotlib drawings of the results of :mod:`.experiments`.

A ``draw_*`` function only draws what it is given; it computes nothing of its own.
"""
from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np

from .._ui import (EXACT_COLOR, MSE_COLOR, NORMAL_COLOR, OUTLIER_COLOR, ROTATED_COLOR, UNIFORM_COLOR,
                   axes_or_new)
from .experiments import METHOD_NAMES

__all__ = ["METHOD_COLORS", "draw_channel_profiles", "draw_rope_pairs", "draw_rotated_law",
           "draw_error_vs_storage", "draw_head"]

#: one colour per method of the lesson
METHOD_COLORS = {"uniform": UNIFORM_COLOR, "kivi": "#8c564b", "turboquant": MSE_COLOR}


def draw_channel_profiles(axes, profile, kinds=("keys before RoPE", "keys", "values")):
    """Lesson 11: the channel RMS of every head, one image per kind, on one colour scale.

    Parameters
    ----------
    axes : sequence of matplotlib Axes (one per kind) or None
    profile : ChannelProfile
        From :func:`~turboquant_lab.course.l11_real_kv_caches.experiments.compute_channel_profile`.
    kinds : sequence of str
        Keys of ``profile.rms``; one row per (layer, head), bands of heads per layer.
    """
    if axes is None:
        _, axes = plt.subplots(1, len(kinds), figsize=(4 * len(kinds), 3.6), sharey=True)
    axes = np.atleast_1d(axes)
    vmax = max(float(profile.rms[k].max()) for k in kinds)
    for ax, kind in zip(axes, kinds):
        rms = profile.rms[kind]
        layers, heads, d = rms.shape
        im = ax.imshow(rms.reshape(layers * heads, d), aspect="auto", cmap="magma", vmin=0, vmax=vmax,
                       interpolation="nearest")
        for layer in range(1, layers):
            ax.axhline(layer * heads - 0.5, color="white", lw=0.8)
        ax.set_yticks([layer * heads + heads / 2 - 0.5 for layer in range(layers)],
                      [f"layer {lid}" for lid in profile.layer_ids])
        ax.set(xlabel="channel", title=kind)
    axes[0].figure.colorbar(im, ax=list(axes), label="RMS over the 256 tokens")
    return axes


def draw_rope_pairs(ax, pairs, outlier_channels=()):
    """Lesson 11: per RoPE pair, the louder channel's share of the pair's energy, and its turn.

    Parameters
    ----------
    ax : matplotlib Axes or None
    pairs : RopePairs
        From :func:`~turboquant_lab.course.l11_real_kv_caches.experiments.compute_rope_pairs`.
    outlier_channels : sequence of int
        Channels to mark (the loudest channel of each head).

    Returns
    -------
    (ax, twin) : the share axes and the twin axes of the turn (log scale)
    """
    ax = axes_or_new(ax, figsize=(9, 3.4))
    x = pairs.channels
    ax.bar(x - 0.45, pairs.larger_share_before, 0.9, color=OUTLIER_COLOR, label="before RoPE", align="edge")
    ax.bar(x + 0.45, pairs.larger_share_after, 0.9, color=ROTATED_COLOR, label="after RoPE", align="edge")
    for c in sorted(set(int(c) for c in outlier_channels)):
        ax.axvline(c, color="0.6", lw=0.6, ls=":")
    ax.set(xlabel="channel pair (2i, 2i + 1), at channel 2i", ylim=(0.45, 1.0),
           ylabel="louder channel's share\nof the pair's energy")
    twin = ax.twinx()
    twin.semilogy(x, pairs.turn, "k.-", lw=1, ms=4, label="turn over the 256 tokens (right)")
    twin.axhline(1.0, color="k", lw=0.6, ls="--")
    twin.set_ylabel("radians turned, token 0 to 255")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = twin.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=8, loc="upper center")
    return ax, twin


def draw_rotated_law(axes, samples, grid, law, gaussian, d):
    """Lesson 11: histograms of rotated unit-key coordinates against lesson 04's law.

    Parameters
    ----------
    axes : sequence of matplotlib Axes (one per sample) or None
    samples : sequence of (title, values)
        Coordinates of rotated unit keys, one histogram each.
    grid : (g,) ndarray
    law, gaussian : (g,) ndarray
        The exact density of a coordinate of a random unit vector in R^d and N(0, 1/d) on ``grid``.
    d : int
    """
    if axes is None:
        _, axes = plt.subplots(1, len(samples), figsize=(5 * len(samples), 3))
    axes = np.atleast_1d(axes)
    lim = float(grid[-1])
    for ax, (title, values) in zip(axes, samples):
        ax.hist(np.ravel(values), bins=80, range=(-lim, lim), density=True, color=ROTATED_COLOR, alpha=0.7,
                label="rotated unit keys")
        ax.plot(grid, law, "k", lw=1.2, label=f"exact law, d = {d} (lesson 04)")
        ax.plot(grid, gaussian, color=NORMAL_COLOR, lw=1, ls="--", label=f"N(0, 1/{d})")
        ax.set(xlabel="coordinate", ylabel="density", title=title)
    axes[0].legend(fontsize=8)
    return axes


def draw_error_vs_storage(ax, rows, metric="kl", ylabel="KL of the attention weights"):
    """Lesson 11: one error figure against bits per coordinate (side information included), per method.

    Parameters
    ----------
    ax : matplotlib Axes or None
    rows : list of dict
        From :func:`~turboquant_lab.course.l11_real_kv_caches.experiments.compute_method_table`
        (``method``, ``bits``, ``bits_per_coordinate`` and ``metric``).
    """
    ax = axes_or_new(ax, figsize=(6, 3.2))
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = sorted((r for r in rows if r["method"] == method), key=lambda r: r["bits_per_coordinate"])
        x = [r["bits_per_coordinate"] for r in rs]
        y = [r[metric] for r in rs]
        ax.semilogy(x, y, "o-", color=METHOD_COLORS.get(method), label=METHOD_NAMES.get(method, method))
        for r, xi, yi in zip(rs, x, y):
            ax.annotate(f"{r['bits']}b", (xi, yi), xytext=(3, 3), textcoords="offset points", fontsize=7)
    ax.set(xlabel="bits per coordinate (codes + side information)", ylabel=ylabel)
    ax.margins(x=0.08, y=0.12)
    ax.legend(fontsize=8)
    return ax


def draw_head(axes, v, n_keys=12):
    """Lesson 11's explorer: channel profile, one key before/after rotation, one query's attention.

    Parameters
    ----------
    axes : three matplotlib Axes or None
    v : HeadView
        From :func:`~turboquant_lab.course.l11_real_kv_caches.experiments.compute_head`.
    n_keys : int
        How many of the most-weighted visible keys the right panel shows.
    """
    if axes is None:
        _, axes = plt.subplots(1, 3, figsize=(15, 3.6))
    ax1, ax2, ax3 = axes
    c = np.arange(len(v.rms_pre))
    ax1.bar(c - 0.2, v.rms_pre, 0.4, color=OUTLIER_COLOR, label="keys before RoPE")
    ax1.bar(c + 0.2, v.rms_post, 0.4, color=ROTATED_COLOR, label="keys after RoPE")
    ax1.plot(c, v.rms_values, "k.", ms=4, label="values")
    ax1.set(xlabel="channel", ylabel="RMS over the tokens",
            title=f"layer {v.layer_id}, KV head {v.head}: channel profile")
    ax1.legend(fontsize=8)
    ax2.bar(c - 0.2, v.key, 0.4, color=OUTLIER_COLOR, label=f"key, max/mean {v.max_over_mean[0]:.1f}")
    ax2.bar(c + 0.2, v.key_rotated, 0.4, color=ROTATED_COLOR,
            label=f"rotated, max/mean {v.max_over_mean[1]:.1f}")
    ax2.set(xlabel="coordinate", ylabel="value", title=f"the key of token {v.token} ({v.tokens[v.token]!r})")
    ax2.legend(fontsize=8)
    exact = v.weights["exact"]
    top = np.argsort(-exact, kind="stable")[:n_keys]
    methods = [m for m in v.weights if m != "exact"]
    w = 0.8 / (1 + len(methods))
    x = np.arange(len(top))
    ax3.bar(x - 0.4 + w / 2, exact[top], w, color=EXACT_COLOR, label="exact")
    for i, m in enumerate(methods, start=1):
        ax3.bar(x - 0.4 + w / 2 + i * w, v.weights[m][top], w, color=METHOD_COLORS.get(m),
                label=f"{METHOD_NAMES.get(m, m)} {v.bits}-bit")
    ax3.set_xticks(x, [f"{v.tokens[i]!r} ({i})" for i in top], fontsize=7, rotation=60, ha="right")
    ax3.set(xlabel="key token (position)", ylabel="attention weight",
            title=f"query head {v.query_head} at token {v.token}: its {len(top)} heaviest keys")
    ax3.legend(fontsize=8)
    return axes
