"""Lesson 12: its experiments, figures, apps and exercise checkers."""
import itertools
import math

import ipywidgets
import matplotlib.pyplot as plt
import numpy as np
import pytest
from app_helpers import line_data, texts
from checker_helpers import assert_fails, assert_passes
from scipy import special

import turboquant_lab as tql
from turboquant_lab.course.l12_polarquant import app as lesson_app
from turboquant_lab.course.l12_polarquant import checks, experiments, figures

# --------------------------------------------------------------------------- section 1: the tree


def test_tree_states_follow_the_transform():
    stepper = experiments.PolarTreeStepper()
    state = stepper.state
    assert state.level == 0 and state.levels == 3 and state.n_numbers == 8
    np.testing.assert_array_equal(state.radii[0], experiments.TREE_EXAMPLE)
    for level in (1, 2, 3):
        state = stepper.next()
        radii, angles = tql.polar_transform(experiments.TREE_EXAMPLE, level)
        np.testing.assert_allclose(state.radii[-1], radii)
        for a, b in zip(state.angles, angles):
            np.testing.assert_allclose(a, b)
        assert state.n_numbers == 8 and state.radii[-1].size == 8 >> level
    assert stepper.next().level == 3                     # Next at the top stays there
    assert state.radii[-1][0] == pytest.approx(np.linalg.norm(experiments.TREE_EXAMPLE))
    for level in (2, 1, 0, 0):
        assert stepper.back().level == level             # Back at level 0 stays there
    state = stepper.reset(np.ones(8))
    assert state.level == 0
    stepper.next()
    np.testing.assert_allclose(stepper.next().angles[1], math.pi / 4)


def test_tree_caption_and_errors():
    s = experiments.PolarTreeStepper()
    assert experiments.tree_caption(s.state) == "Level 0 of 3: the 8 coordinates."
    assert "4 angles in [0, 2π)" in experiments.tree_caption(s.next())
    s.next()
    assert "the norm 6.245 and 7 angles" in experiments.tree_caption(s.next())
    with pytest.raises(ValueError, match="power of two"):
        experiments.compute_polar_tree(np.ones(6), 1)
    with pytest.raises(ValueError, match="level"):
        experiments.compute_polar_tree(np.ones(8), 4)
    with pytest.raises(ValueError, match="one vector"):
        experiments.compute_polar_tree(np.ones((2, 8)), 1)


def test_tree_app_buttons_redraw_the_tree(shown_figures):
    app = lesson_app.polar_tree_app()
    choice, back, nxt = app.children[0].children
    shown_figures.clear()
    nxt.click()
    nxt.click()
    assert app.stepper.level == 2
    assert app.caption.value.startswith("Level 2 of 3: pairs of level-1 radii -> 2 angles")
    shown = texts(shown_figures.last)
    assert "level 2 of 3" in shown
    r1 = np.hypot(experiments.TREE_EXAMPLE[0::2], experiments.TREE_EXAMPLE[1::2])
    for r in np.hypot(r1[0::2], r1[1::2]):
        assert f"{r:.3g}" in shown                      # the two level-2 radii are drawn
    assert "15.8°" in shown and "54.7°" in shown        # and their angles
    back.click()
    assert app.stepper.level == 1 and "level 1 of 3" in texts(shown_figures.last)
    choice.value = "[1, 1, ..., 1]"
    assert app.stepper.level == 0
    nxt.click()
    nxt.click()
    assert texts(shown_figures.last).count("45.0°") == 4 + 2      # every angle of [1, ..., 1]


# --------------------------------------------------------------------------- section 2: the laws


def test_law_std():
    assert experiments.law_std(1) == pytest.approx(2 * math.pi / math.sqrt(12))
    for level in (2, 4, 6):
        x = tql.polar_angle_law(level).sample(200_000, seed=level)
        assert experiments.law_std(level) == pytest.approx(np.sqrt(np.mean((x - math.pi / 4) ** 2)), rel=0.01)
    k = 64
    assert experiments.law_std(7) == pytest.approx(1 / (2 * math.sqrt(k + 1)), rel=0.02)


def test_angle_histograms():
    for level in (1, 2, 4):
        h = experiments.compute_angle_histogram(level, d=128, n=2000)
        width = np.diff(h.edges)
        for dens in (h.gaussian, h.before, h.after):
            assert np.sum(dens * width) == pytest.approx(1.0)
        assert h.ks_gaussian < 0.02                     # random directions: the exact law
        assert h.std_gaussian == pytest.approx(h.std_law, rel=0.03)
        np.testing.assert_allclose(h.pdf, tql.polar_angle_law(level).pdf(h.grid))
    # outliers: raw far off; rotated once, level 2 on the law, level 4 narrower than it
    h2, h4 = (experiments.compute_angle_histogram(lv, 128, 2000) for lv in (2, 4))
    assert h2.ks_before > 0.05 and h2.ks_after < 0.02
    assert h4.ks_after > 0.1 and h4.std_after < 0.6 * h4.std_law
    with pytest.raises(ValueError, match="level"):
        experiments.compute_angle_histogram(5, d=16)
    with pytest.raises(ValueError, match="power of two"):
        experiments.compute_angle_histogram(1, d=12)


def test_angle_law_app_sliders_redraw(shown_figures):
    app = lesson_app.angle_law_app(n=400)
    assert app.level.value == 2 and app.d.value == 128
    shown_figures.clear()
    app.d.value = 16                                     # fewer levels: the slider follows
    assert app.level.max == 4
    app.level.value = 4
    h = experiments.compute_angle_histogram(4, 16, 400)
    assert "level 4, d = 16: KS distance" in app.info.value
    assert f"<b>{h.ks_after:.3f}</b> rotated" in app.info.value
    ax = shown_figures.last.axes[0]
    assert ax.get_title() == "level 4, d = 16"
    law_line = [y for x, y in line_data(ax) if len(x) == h.grid.size]
    np.testing.assert_allclose(law_line[0], h.pdf)
    legend = [t.get_text() for t in ax.get_legend().get_texts()]
    assert f"Gaussian, rotated (KS {h.ks_gaussian:.3f})" in legend
    app.d.value = 8                                      # level 4 no longer exists: clamped to 3
    assert app.level.max == 3 and app.level.value == 3
    assert shown_figures.last.axes[0].get_title() == "level 3, d = 8"


# --------------------------------------------------------------------------- section 3: unit vectors


def test_unit_vector_facts():
    f = experiments.compute_unit_vector_facts(d=64, levels=3, n=5000, seed=1)
    assert f.corr_sq == pytest.approx(-1 / 63, rel=0.02)        # the squares sum to 1
    assert abs(f.corr_sq_gauss) < 0.003
    assert f.angle_max_diff < 1e-12 and f.radii_sum < 1e-12
    assert (f.beta_a, f.beta_b) == (4.0, 28.0) and f.ks_radius > 0.01
    assert f.radius_sq.shape == (5000,)


# --------------------------------------------------------------------------- section 4: budget


def test_bit_budget_and_side_information():
    rows = experiments.bit_budget((4, 2, 2, 2), 128)
    assert [r["bits"] for r in rows] == [256, 64, 32, 16, 128, 496]
    assert rows[-1]["per_coordinate"] == 3.875
    assert experiments.bit_budget((4, 2, 2, 2), 32)[-1]["per_coordinate"] == 4.0
    side = {r["method"]: r["bits_per_coordinate"] for r in experiments.side_information(128)}
    assert side["TurboQuantMSE"] == 0.125 and side["PolarQuant, L = 4"] == 1.0
    assert side["uniform per vector (lesson 01)"] == 0.25


def test_angle_quantiles_do_not_see_the_scale():
    q = experiments.angle_quantiles(level=2, d=64, n=1000)
    np.testing.assert_allclose(q["Gaussian x 1000"], q["Gaussian"], atol=1e-12)
    np.testing.assert_allclose(q["Gaussian x 0.001"], q["Gaussian"], atol=1e-12)
    np.testing.assert_allclose(q["exact law"], q["Gaussian"], atol=0.03)
    law = tql.polar_angle_law(2)
    np.testing.assert_allclose(law.cdf(q["exact law"]), (0.05, 0.25, 0.5, 0.75, 0.95), atol=1e-4)


# --------------------------------------------------------------------------- section 6: allocations


def test_allocation_table_agrees_with_the_library():
    alloc, bpc, mse = experiments.allocation_table(3, 4, d=64)
    assert alloc.shape == (64, 3)
    for i in (0, 7, 33, 63):
        lb = tuple(int(b) for b in alloc[i])
        assert bpc[i] == tql.polar_bits_per_coordinate(lb, 64)
        assert mse[i] == pytest.approx(tql.polar_expected_mse(lb), rel=1e-12)
    _, ideal, _ = experiments.allocation_table(3, 4)
    assert ideal[0] == tql.polar_bits_per_coordinate((1, 1, 1))


def test_best_allocations_and_frontier():
    best = experiments.best_allocations(64, 4, budgets=(3,), max_bits=4)[3]
    brute = min((lb for lb in itertools.product(range(1, 5), repeat=4)
                 if tql.polar_bits_per_coordinate(lb, 64) <= 3.25),
                key=tql.polar_expected_mse)
    assert best == brute
    for b, lb in zip((2, 3, 4), experiments.full_depth_settings(128)):
        assert len(lb) == 7 and tql.polar_bits_per_coordinate(lb, 128) <= b + 0.125
    fb, fm, fa = experiments.frontier(4, max_bits=4)
    assert np.all(np.diff(fb) >= 0) and np.all(np.diff(fm) < 0)
    assert fa.shape == (fb.size, 4)


# --------------------------------------------------------------------------- section 6: comparison


@pytest.fixture(scope="module")
def small_comparison():
    rng = np.random.default_rng(3)
    K = tql.make_kv_vectors(256, 32, seed=0).reshape(2, 128, 32)
    V = rng.standard_normal((2, 128, 32))
    Q = rng.standard_normal((2, 16, 32))
    codecs = experiments.codec_list(32, turbo_bits=(2, 3, 4), paper=((4, 2, 2, 2),), full_depth=True)
    return Q, K, V, codecs, experiments.compare_codecs(Q, K, V, codecs)


def test_attention_errors_equal_attention_fidelity(small_comparison):
    Q, K, V, codecs, _ = small_comparison
    q = codecs[1].quantizer
    K_hat, V_hat = q.decode(q.encode(K)), q.decode(q.encode(V))
    got = experiments.attention_errors(Q, K, V, K_hat, V_hat, k=8)
    fids = [tql.attention_fidelity(Q[h], K[h], V[h], K_hat=K_hat[h], V_hat=V_hat[h], k=8) for h in range(2)]
    for name in ("kl", "output_rel_error", "topk_agreement"):
        assert got[name] == pytest.approx(np.mean([getattr(f, name) for f in fids]), rel=1e-9, abs=1e-12)
    exact = experiments.attention_errors(Q, K, V, K, V)
    assert exact == {"kl": 0.0, "output_rel_error": 0.0, "topk_agreement": 1.0}


def test_compare_codecs_rows(small_comparison):
    Q, K, V, codecs, rows = small_comparison
    assert [r["label"] for r in rows] == [c.label for c in codecs]
    by = {r["label"]: r for r in rows}
    assert by["PolarQuant 4222"]["bits_per_coordinate"] == 4.0      # d = 32: level 4 rounds up to a byte
    assert by["TurboQuant 3 bits"]["bits_per_coordinate"] == 3.5
    assert by["PolarQuant 4222"]["family"] == "PolarQuant, L = 4"
    assert rows[-1]["family"] == "PolarQuant, L = log2 d" and len(rows[-1]["setting"]) == 5
    for r in rows:
        half = 2 if r["method"] == "polarquant" else 1
        assert r["predicted_slope"] == pytest.approx(1 - r["predicted_rel_mse"] / half)
        assert r["score_shrink"] == pytest.approx(abs(1 - r["score_slope"]))
        q = codecs[[c.label for c in codecs].index(r["label"])].quantizer
        k_hat = q.decode(q.encode(K))
        rel = np.sum((K - k_hat) ** 2) / np.sum(K.astype(np.float64) ** 2)
        assert r["key_rel_mse"] == pytest.approx(rel, rel=1e-5)
    # more bits, less error, for both families
    assert by["TurboQuant 4 bits"]["kl"] < by["TurboQuant 2 bits"]["kl"]


def test_unit_rows_match_the_predictions():
    codecs = [experiments.make_codec("polarquant", (4, 2, 2, 2), 64),
              experiments.make_codec("turboquant", 3, 64)]
    rows = experiments.unit_direction_rows(codecs, n=4000)
    for r in rows:
        assert abs(r["mse"] - r["predicted_rel_mse"]) < 4 * r["mse_se"]
    assert rows[0]["bits_per_coordinate"] == 3.875 and codecs[0].bits_per_coordinate == 3.875
    with pytest.raises(ValueError, match="method"):
        experiments.make_codec("kivi", 2, 64)


def test_closing_table():
    rows = experiments.closing_table(n=2000)
    assert [r["label"] for r in rows] == ["PolarQuant 4222", "PolarQuant 3222", "PolarQuant 2222",
                                          "PolarQuant 4333", "TurboQuant 2 bits", "TurboQuant 3 bits",
                                          "TurboQuant 4 bits"]
    assert [r["bits_per_coordinate"] for r in rows] == [3.875, 3.375, 2.875, 4.3125, 2.125, 3.125, 4.125]
    for r in rows:
        assert r["mse"] == pytest.approx(r["predicted_rel_mse"], rel=0.05)
    table = experiments.format_rows(rows)
    assert "PolarQuant 4222" in table and "0.03208" in table


def test_verdict_interpolates_turboquant():
    rows = [dict(method="turboquant", label=f"T{b}", family="TurboQuantMSE", bits_per_coordinate=b,
                 m=4.0 ** -b) for b in (2, 3, 4)]
    polar = dict(method="polarquant", family="PolarQuant, L = 4")
    rows += [dict(polar, label="P", bits_per_coordinate=3.5, m=0.02),
             dict(polar, label="Q", bits_per_coordinate=3.5, m=0.005),
             dict(polar, label="far", bits_per_coordinate=5.0, m=0.1)]
    v = experiments.verdict(rows, "m")
    assert [r["label"] for r in v] == ["P", "Q"]              # outside TurboQuant's range: left out
    assert v[0]["turbo"] == pytest.approx(4.0 ** -3.5)
    assert (v[0]["winner"], v[1]["winner"]) == ("TurboQuant", "PolarQuant")


def test_bits_spent():
    rows = experiments.bits_spent((4, 2, 2, 2), 128, turbo_bits=3)
    polar = [r for r in rows if r["codec"] == "PolarQuant 4222"]
    assert sum(r["bits_per_coordinate"] for r in polar) == 3.875
    assert polar[-1]["part"] == "radii, float16" and polar[-1]["bits_per_coordinate"] == 1.0
    assert sum(1 - r["error"] / 2 for r in polar) > 0
    assert rows[-2]["error"] == pytest.approx(tql.TurboQuantMSE(128, 3).expected_mse)


# --------------------------------------------------------------------------- figures


def test_figures_draw_what_they_are_given(small_comparison):
    *_, rows = small_comparison
    ax = figures.draw_error_vs_bits(None, rows, frontier=([2.0, 3.0], [0.1, 0.03]))
    lines = line_data(ax)
    assert len(lines) == 4                                    # three families and the frontier
    tq = sorted((r for r in rows if r["method"] == "turboquant"), key=lambda r: r["bits_per_coordinate"])
    np.testing.assert_allclose(lines[0][1], [r["key_rel_mse"] for r in tq])
    assert ax.get_yscale() == "log" and "everything stored" in ax.get_xlabel()
    cbs = [tql.angle_codebook(level, b) for level, b in enumerate((3, 2), start=1)]
    grids = [np.linspace(*cb.law.support, 50) for cb in cbs]
    axes = figures.draw_codebooks(None, cbs, grids, [cb.law.pdf(g) for cb, g in zip(cbs, grids)])
    assert len(axes) == 2 and len(axes[0].lines) == 1 + 7 + 1   # the law, 7 boundaries, the centroids
    assert "3 bits" in axes[0].get_title()
    ax = figures.draw_pair(None, 3.0, 4.0)
    assert any("53.1°" in t.get_text() for t in ax.get_legend().get_texts())
    facts = experiments.compute_unit_vector_facts(d=32, levels=2, n=500)
    ax = figures.draw_radius_law(None, facts, np.linspace(0.01, 0.9, 20), np.ones(20))
    assert "Beta(2, 14)" in [t.get_text() for t in ax.get_legend().get_texts()][1]
    plt.close("all")


# --------------------------------------------------------------------------- checkers


def _polar_ok(x, levels):
    r, angles = np.asarray(x, dtype=np.float64), []
    for level in range(1, levels + 1):
        a, b = r[..., 0::2], r[..., 1::2]
        psi = np.arctan2(b, a)
        angles.append(np.mod(psi, 2 * np.pi) if level == 1 else psi)
        r = np.hypot(a, b)
    return r, angles


def test_check_polar_by_hand():
    assert_passes(checks.check_polar_by_hand, _polar_ok)

    def no_wrap(x, levels):
        r, angles = _polar_ok(x, levels)
        x = np.asarray(x, dtype=np.float64)
        angles[0] = np.arctan2(x[..., 1::2], x[..., 0::2])
        return r, angles

    def swapped(x, levels):
        r, angles = _polar_ok(x, levels)
        x = np.asarray(x, dtype=np.float64)
        angles[0] = np.mod(np.arctan2(x[..., 0::2], x[..., 1::2]), 2 * np.pi)
        return r, angles

    def arctan(x, levels):
        r, angles = _polar_ok(x, levels)
        x = np.asarray(x, dtype=np.float64)
        with np.errstate(all="ignore"):
            angles[0] = np.mod(np.arctan(x[..., 1::2] / x[..., 0::2]), 2 * np.pi)
        return r, angles

    assert_fails(checks.check_polar_by_hand, no_wrap, hint="add 2π")
    assert_fails(checks.check_polar_by_hand, swapped, hint="atan2(b, a)")
    assert_fails(checks.check_polar_by_hand, arctan, hint="loses the quadrant")
    assert_fails(checks.check_polar_by_hand, lambda x, L: checks._halves(x, L), hint="pair neighbours")
    assert_fails(checks.check_polar_by_hand, lambda x, L: (_polar_ok(x, L)[0] ** 2, _polar_ok(x, L)[1]),
                 hint="square root")
    assert_fails(checks.check_polar_by_hand, lambda x, L: (_polar_ok(x, L)[0], _polar_ok(x, L)[1][:1]),
                 hint="append each level's angles")


def _pdf_ok(psi, level):
    psi = np.asarray(psi, dtype=np.float64)
    if level == 1:
        return np.where((psi >= 0) & (psi < 2 * np.pi), 1 / (2 * np.pi), 0.0)
    k = 2 ** (level - 1)
    f = np.abs(np.sin(2 * psi)) ** (k - 1) / (2 ** (k - 2) * special.beta(k / 2, k / 2))
    return np.where((psi >= 0) & (psi <= np.pi / 2), f, 0.0)


def test_check_angle_pdf():
    assert_passes(checks.check_angle_pdf, _pdf_ok)

    def shape_only(psi, level):
        if level == 1:
            return _pdf_ok(psi, 1)
        psi = np.asarray(psi)
        shape = np.abs(np.sin(2 * psi)) ** (2 ** (level - 1) - 1)
        return np.where((psi >= 0) & (psi <= np.pi / 2), shape, 0.0)

    def exponent_k(psi, level):
        if level == 1:
            return _pdf_ok(psi, 1)
        psi = np.asarray(psi)
        return np.where((psi >= 0) & (psi <= np.pi / 2), np.abs(np.sin(2 * psi)) ** 2 ** (level - 1), 0.0)

    def no_support(psi, level):
        return _pdf_ok(np.clip(psi, 0.01, 1.5), level) if level > 1 else _pdf_ok(psi, 1)

    assert_fails(checks.check_angle_pdf, shape_only, hint="not its height")
    assert_fails(checks.check_angle_pdf, exponent_k, hint="one less")
    assert_fails(checks.check_angle_pdf,
                 lambda p, lv: np.full(np.shape(p), 1 / np.pi) if lv == 1 else _pdf_ok(p, lv), hint="1/(2π)")
    assert_fails(checks.check_angle_pdf, no_support, hint="outside the support")


def _bits_ok(level_bits, d):
    total = sum(8 * math.ceil((d >> lv) * b / 8) for lv, b in enumerate(level_bits, start=1))
    return (total + 16 * (d >> len(level_bits))) / d


def test_check_polar_storage_bits():
    assert_passes(checks.check_polar_storage_bits, _bits_ok)
    assert_fails(checks.check_polar_storage_bits, lambda lb, d: _bits_ok(lb, d) - 16 * (d >> len(lb)) / d,
                 hint="count the radii")
    assert_fails(checks.check_polar_storage_bits, lambda lb, d: _bits_ok(lb, d) + 16 * (d >> len(lb)) / d,
                 hint="16 bits each")
    assert_fails(checks.check_polar_storage_bits,
                 lambda lb, d: sum(b / 2 ** lv for lv, b in enumerate(lb, 1)) + 16 / 2 ** len(lb),
                 hint="whole bytes")
    assert_fails(checks.check_polar_storage_bits, lambda lb, d: _bits_ok(lb, d) * d, hint="divide by d")


def _best_ok(d, levels, budget, max_bits=4):
    fits = [lb for lb in itertools.product(range(1, max_bits + 1), repeat=levels)
            if tql.polar_bits_per_coordinate(lb, d) <= budget]
    return min(fits, key=tql.polar_expected_mse) if fits else None


def test_check_best_level_bits():
    assert_passes(checks.check_best_level_bits, _best_ok)

    def most_bits(d, levels, budget, max_bits=4):
        fits = [lb for lb in itertools.product(range(1, max_bits + 1), repeat=levels)
                if tql.polar_bits_per_coordinate(lb, d) <= budget]
        return max(fits, key=lambda lb: tql.polar_bits_per_coordinate(lb, d)) if fits else None

    assert_fails(checks.check_best_level_bits, most_bits, hint="most bits is not the least error")
    assert_fails(checks.check_best_level_bits, lambda d, L, b, m=4: (m,) * L, hint="radii included")
    assert_fails(checks.check_best_level_bits, lambda d, L, b, m=4: _best_ok(d, L, b, m) or (1,) * L,
                 hint="return None")
    assert_fails(checks.check_best_level_bits, lambda d, L, b, m=4: None, hint="keep every allocation")


def test_the_apps_are_widgets():
    assert isinstance(lesson_app.polar_tree_app(), ipywidgets.VBox)
