"""Property tests of CCUP's closed form (docs/method.md#ccup)."""
import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from benchmarks.solve import dense as dense_closed_form
from ccup.errors import UserError
from ccup.projection import (
    LowRank,
    ccup_factors,
    ccup_map,
    objective,
    orthonormal_basis,
    shifted_solve,
)

settings.register_profile("ccup", deadline=None, max_examples=40)
settings.load_profile("ccup")


def nullspace_projector(T_f: torch.Tensor) -> torch.Tensor:
    """I - Q Q^T, the exact projection onto the orthogonal complement of span(T_f): the plain
    nullspace projection."""
    Q = orthonormal_basis(T_f)
    return torch.eye(T_f.shape[0], dtype=T_f.dtype) - Q @ Q.T


def with_strength(W: torch.Tensor, alpha: float) -> torch.Tensor:
    """W_alpha = I - alpha (I - W) of a (d, d) matrix: the reference for LowRank.with_strength."""
    return torch.eye(W.shape[0], dtype=W.dtype) - alpha * (torch.eye(W.shape[0], dtype=W.dtype) - W)


def unit_columns(seed: int, d: int, m: int) -> torch.Tensor:
    """(d, m) random L2-normalised columns, like class text embeddings."""
    T = torch.randn(d, m, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    return T / T.norm(dim=0)


# A lam that stands in for infinity: W(lam) is O((1 + mu) / (lam s^2)) from its limit, s the
# smallest singular value of T_f, and computing it in float64 loses O(eps lam (1 + mu) / s^2) to
# rounding: at 1e8 both near 1e-8 (1 + mu) / s^2.
LARGE_LAM = 1e8


def limit_atol(T_f: torch.Tensor, mu: float) -> float:
    """How close W(LARGE_LAM) must come to W(inf): a hundred times either error."""
    return 1e-6 * (1 + mu) / torch.linalg.svdvals(T_f).min().item() ** 2


@st.composite
def problems(draw):
    """A random embedding width with forget and retain sets; lam, mu of any magnitude."""
    d = draw(st.integers(2, 12))
    m_f, m_r = draw(st.integers(1, d - 1)), draw(st.integers(1, d))
    seed = draw(st.integers(0, 2**31))
    T_f, T_r = unit_columns(seed, d, m_f), unit_columns(seed + 1, d, m_r)
    lam = draw(st.floats(1e-3, 1e4))
    mu = draw(st.floats(0, 1e3))
    return T_f, T_r, lam, mu


@given(problems())
def test_closed_form_minimises_the_objective(problem):
    T_f, T_r, lam, mu = problem
    W = ccup_map(T_f, T_r, lam, mu).requires_grad_()
    (grad,) = torch.autograd.grad(objective(W, T_f, T_r, lam, mu), W)
    # stationary, and the objective is strictly convex
    assert grad.abs().max() < 1e-6 * (1 + lam + mu)
    bump = 1e-3 * torch.randn_like(W)
    assert objective(W + bump, T_f, T_r, lam, mu) > objective(W, T_f, T_r, lam, mu)


@given(problems())
def test_alpha_zero_is_the_identity_bit_for_bit(problem):
    W = ccup_factors(*problem)
    assert torch.equal(W.with_strength(0.0).dense(), torch.eye(W.U.shape[0], dtype=W.U.dtype))
    assert torch.equal(W.with_strength(1.0).dense(), W.dense())


@given(problems())
def test_lam_zero_is_the_identity(problem):
    T_f, T_r, _, mu = problem
    torch.testing.assert_close(ccup_map(T_f, T_r, 0.0, mu),
                               torch.eye(T_f.shape[0], dtype=torch.float64))


@given(problems())
def test_infinite_lam_without_mu_is_the_nullspace_projector(problem):
    T_f, T_r, _, _ = problem
    Q = orthonormal_basis(T_f)
    P = torch.eye(T_f.shape[0], dtype=torch.float64) - Q @ Q.T
    torch.testing.assert_close(ccup_map(T_f, T_r, math.inf, 0.0), P)
    torch.testing.assert_close(ccup_map(T_f, T_r, LARGE_LAM, 0.0), P, atol=limit_atol(T_f, 0.0),
                               rtol=0)


@given(problems())
def test_infinite_lam_is_the_limit_of_large_lam(problem):
    T_f, T_r, _, mu = problem
    W_inf = ccup_map(T_f, T_r, math.inf, mu)
    torch.testing.assert_close(ccup_map(T_f, T_r, LARGE_LAM, mu), W_inf, atol=limit_atol(T_f, mu),
                               rtol=0)
    # hard constraint holds
    torch.testing.assert_close(W_inf @ T_f, torch.zeros_like(T_f), atol=1e-9, rtol=0)


@given(st.integers(2, 12), st.integers(0, 2**31), st.floats(1e-3, 1e4))
def test_orthonormal_forget_set_without_mu_shrinks_by_lam_over_one_plus_lam(d, seed, lam):
    Q, _ = torch.linalg.qr(unit_columns(seed, d, max(1, d // 2)))
    expected = torch.eye(d, dtype=torch.float64) - lam / (1 + lam) * Q @ Q.T
    torch.testing.assert_close(ccup_map(Q, unit_columns(seed, d, 1), lam, 0.0), expected)


@given(st.integers(3, 12), st.integers(0, 2**31))
def test_duplicated_or_collinear_forget_embeddings_remove_one_direction(d, seed):
    t = unit_columns(seed, d, 1)
    P = nullspace_projector(t)
    nearly_t = t + 1e-12 * unit_columns(seed + 1, d, 1)
    for T_f in (torch.cat([t, t], 1), torch.cat([t, -t, t], 1), torch.cat([t, nearly_t], 1)):
        assert orthonormal_basis(T_f).shape == (d, 1)
        torch.testing.assert_close(nullspace_projector(T_f), P)
    assert torch.linalg.matrix_rank(P, rtol=1e-9).item() == d - 1


@given(problems())
def test_directions_orthogonal_to_the_forget_span_are_unchanged_without_mu(problem):
    T_f, T_r, lam, _ = problem
    Q = orthonormal_basis(T_f)
    v = torch.randn(T_f.shape[0], 3, dtype=torch.float64)
    v = v - Q @ (Q.T @ v)  # (d, 3), orthogonal to span(T_f)
    for W in (ccup_map(T_f, T_r, lam, 0.0), ccup_map(T_f, T_r, math.inf, 0.0)):
        torch.testing.assert_close(W @ v, v)


@given(problems(), st.floats(0, 1))
def test_partial_projection_scales_forget_scores_by_one_minus_alpha(problem, alpha):
    T_f, T_r, _, _ = problem
    z = torch.randn(T_f.shape[0], 5, dtype=torch.float64)  # image embeddings as columns
    # the nullspace projection at strength alpha
    W = ccup_factors(T_f, T_r, math.inf, 0.0).with_strength(alpha)
    torch.testing.assert_close(T_f.T @ W.apply(z), (1 - alpha) * T_f.T @ z)


@pytest.mark.parametrize("lam, mu",
                         [(-1.0, 0.0), (1.0, -0.5), (math.nan, 0.0), (1.0, math.inf),
                          (1.0, math.nan)])
def test_bad_weights_are_refused(lam, mu):
    T = unit_columns(0, 4, 2)
    with pytest.raises(UserError, match="lam >= 0"):
        ccup_map(T[:, :1], T[:, 1:], lam, mu)


@pytest.mark.parametrize("alpha", [-0.1, 1.5, math.nan])
def test_alpha_outside_unit_interval_is_refused(alpha):
    with pytest.raises(UserError, match=r"alpha must lie in \[0, 1\]"):
        LowRank(torch.zeros(3, 1), torch.zeros(3, 1)).with_strength(alpha)


@given(problems(), st.booleans(), st.sampled_from(["distinct", "duplicated", "collinear"]))
def test_the_low_rank_computation_is_the_dense_solve(problem, hard, layout):
    T_f, T_r, lam, mu = problem
    if layout == "duplicated":  # a class named twice, in both sets
        T_f, T_r = torch.cat([T_f, T_f[:, :1]], dim=1), torch.cat([T_r, T_r[:, :1]], dim=1)
    if layout == "collinear":  # opposite embeddings span one direction
        T_f, T_r = torch.cat([T_f, -T_f[:, :1]], dim=1), torch.cat([T_r, -T_r[:, :1]], dim=1)
    lam = math.inf if hard else lam
    torch.testing.assert_close(ccup_map(T_f, T_r, lam, mu), dense_closed_form(T_f, T_r, lam, mu),
                               atol=1e-10, rtol=0)


@pytest.mark.parametrize("lam, mu", [(1e-320, 1.0), (1000.0, 1e-320), (0.0, 5.0)])
def test_weights_below_double_precision_add_nothing(lam, mu):
    T_f, T_r = unit_columns(0, 8, 2), unit_columns(1, 8, 3)
    W = ccup_map(T_f, T_r, lam, mu)
    assert torch.isfinite(W).all()
    torch.testing.assert_close(W, dense_closed_form(T_f, T_r, lam, mu), atol=1e-12, rtol=0)


@given(problems(), st.floats(0, 1), st.floats(0, 1))
def test_with_retention_the_forget_score_falls_monotonically_with_alpha(problem, a, b):
    T_f, T_r, lam, mu = problem
    # one forget class: its score <W_alpha t, t> = 1 - alpha lam t^T A^-1 t, A positive definite
    t = T_f[:, :1]
    W = ccup_factors(t, T_r, lam, mu)
    low, high = sorted([a, b])
    score = {alpha: (t.T @ W.with_strength(alpha).apply(t)).item() for alpha in (low, high)}
    assert score[high] <= score[low] + 1e-12


@given(problems(), st.booleans(), st.floats(0, 1), st.integers(0, 2**31))
def test_the_low_rank_map_acts_as_its_dense_matrix(problem, hard, alpha, seed):
    """CCUP's map is kept as I - U V^T, k <= C columns, and applied as X - U (V^T X): the same as
    the d x d matrix."""
    T_f, T_r, lam, mu = problem
    W = ccup_factors(T_f, T_r, math.inf if hard else lam, mu)
    assert W.U.shape == W.V.shape and W.U.shape[1] <= T_f.shape[1] + T_r.shape[1]
    X = torch.randn(T_f.shape[0], 3, generator=torch.Generator().manual_seed(seed),
                    dtype=torch.float64)
    dense = with_strength(W.dense(), alpha)
    torch.testing.assert_close(W.with_strength(alpha).apply(X), dense @ X, atol=1e-10, rtol=0)
    X32 = X.float()  # a model's weights: alpha = 0 leaves them bit for bit, whatever their dtype
    assert (torch.equal(W.with_strength(0.0).apply(X32), X32)
            and W.with_strength(0.0).apply(X32).dtype == X32.dtype)


@st.composite
def class_counts(draw, more_classes_than_width: bool):
    """A width d with forget and retain sets whose C = m_f + m_r lies below d, or at or above it
    (ImageNet-21k)."""
    d = draw(st.integers(2, 12))
    m_f = draw(st.integers(1, d - 1))
    m_r = draw(st.integers(max(1, d - m_f), 3 * d) if more_classes_than_width
               else st.integers(0, d - 1 - m_f))
    seed = draw(st.integers(0, 2**31))
    lam = draw(st.floats(1e-3, 1e4))
    mu = draw(st.floats(0, 1e3))
    return unit_columns(seed, d, m_f), unit_columns(seed + 1, d, m_r), lam, mu


@given(st.booleans(), st.booleans(), st.data())
def test_both_sides_of_the_solve_give_the_dense_closed_form(more_classes_than_width, hard, data):
    T_f, T_r, lam, mu = data.draw(class_counts(more_classes_than_width))
    assert (T_f.shape[1] + T_r.shape[1] >= T_f.shape[0]) == more_classes_than_width
    lam = math.inf if hard else lam
    torch.testing.assert_close(ccup_map(T_f, T_r, lam, mu), dense_closed_form(T_f, T_r, lam, mu),
                               atol=1e-10, rtol=0)


@pytest.mark.parametrize("d, C", [(16, 5), (16, 16), (16, 40)])
def test_the_shifted_solve_is_a_linear_solve_on_either_side(d, C):
    B, X = unit_columns(0, d, C), unit_columns(1, d, 3)
    weights = [1000.0] * 2 + [1.0] * (C - 2)
    A = (torch.eye(d, dtype=torch.float64)
         + B @ torch.diag(torch.tensor(weights, dtype=torch.float64)) @ B.T)
    terms = [(B[:, :2], 1000.0), (B[:, 2:], 1.0)]
    torch.testing.assert_close(shifted_solve(terms, X), torch.linalg.solve(A, X), atol=1e-12,
                               rtol=1e-10)
