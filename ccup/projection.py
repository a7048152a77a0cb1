"""CCUP's closed form (docs/method.md#ccup) as pure tensor functions on the d-dimensional joint
embedding space.

Columns of `T_f` (d, m_f) and `T_r` (d, m_r) are L2-normalised class text embeddings. Every map W
(d, d) acts on image embeddings as column vectors, z' = W z; for mu > 0 it is not symmetric, so the
convention matters.
"""
import math
from dataclasses import dataclass

import torch

from ccup.errors import UserError


def objective(W: torch.Tensor, T_f: torch.Tensor, T_r: torch.Tensor, lam: float,
              mu: float) -> torch.Tensor:
    """||W - I||^2 + lam ||W T_f||^2 + mu ||W T_r - T_r||^2: identity preservation, forgetting,
    retention."""
    identity = torch.eye(W.shape[0], dtype=W.dtype, device=W.device)
    return ((W - identity).square().sum() + lam * (W @ T_f).square().sum()
            + mu * (W @ T_r - T_r).square().sum())


def orthonormal_basis(T: torch.Tensor, rtol: float = 1e-6) -> torch.Tensor:
    """(d, k) orthonormal basis of span(T), k = numerical rank.

    SVD with a relative cutoff, not QR: QR on duplicated or collinear columns returns extra
    directions and would remove too much.
    """
    U, S, _ = torch.linalg.svd(T, full_matrices=False)
    return U[:, S > rtol * S.max()]


def ccup_map(T_f: torch.Tensor, T_r: torch.Tensor, lam: float, mu: float,
             rtol: float = 1e-6) -> torch.Tensor:
    """W* = argmin objective = (I + mu T_r T_r^T)(I + lam T_f T_f^T + mu T_r T_r^T)^-1, in float64,
    as a d x d matrix: `ccup_factors` densified, to look at; CCUP itself never forms it."""
    return ccup_factors(T_f, T_r, lam, mu, rtol).dense()


def ccup_factors(T_f: torch.Tensor, T_r: torch.Tensor, lam: float, mu: float,
                 rtol: float = 1e-6) -> "LowRank":
    """W* = (I + mu T_r T_r^T)(I + lam T_f T_f^T + mu T_r T_r^T)^-1 as I - U V^T, in float64, U and
    V (d, k).

    W* differs from I only on the span of the C = m_f + m_r class embeddings, so it is kept there:
    with A = I + lam T_f T_f^T + mu T_r T_r^T, I - W* = lam T_f (A^-1 T_f)^T, and A^-1 T_f is one
    solve on the cheaper side (`shifted_solve`): C x C while C < d, O(d C^2 + C^3) and no d x d
    matrix; d x d beyond, O(d^2 C + d^3).

    lam = inf is the hard constraint W T_f = 0: W = I - Q (Q^T M^-1 Q)^-1 (M^-1 Q)^T with M = I + mu
    T_r T_r^T and Q a basis of span(T_f); with mu = 0 that is the nullspace projector I - Q Q^T.
    """
    check_lam_mu(lam, mu)
    T_f, T_r = T_f.double(), T_r.double()
    # below the smallest normal double, a weight adds nothing to I
    retain = [(T_r, mu)] if mu >= TINY else []
    if math.isinf(lam):
        Q = orthonormal_basis(T_f, rtol)  # (d, k)
        MinvQ = shifted_solve(retain, Q)  # (d, k)
        return LowRank(Q, torch.linalg.solve(Q.T @ MinvQ, MinvQ.T).T)
    if lam < TINY:
        return LowRank(T_f[:, :0], T_f[:, :0])  # k = 0: the identity
    return LowRank(lam * T_f, shifted_solve([(T_f, lam), *retain], T_f))


@dataclass(frozen=True)
class LowRank:
    """The map I - U V^T of the d-dimensional embedding space, U and V (d, k): how CCUP's W* and
    every W_alpha are kept, in the k <= C directions where they differ from I."""

    U: torch.Tensor
    V: torch.Tensor

    def dense(self) -> torch.Tensor:
        """(d, d) I - U V^T."""
        return torch.eye(self.U.shape[0], dtype=self.U.dtype,
                         device=self.U.device) - self.U @ self.V.T

    def with_strength(self, alpha: float) -> "LowRank":
        """W_alpha = I - alpha (I - W): alpha = 0 is I exactly (alpha U = 0), alpha = 1 this map bit
        for bit."""
        check_alpha(alpha)
        return LowRank(alpha * self.U, self.V)

    def apply(self, X: torch.Tensor) -> torch.Tensor:
        """W X for (d, n) X, as X - U (V^T X) in float64, returned in X's dtype: O(d n k), not O(d^2
        n)."""
        X64 = X.double()
        return (X64 - self.U.to(X64.device) @ (self.V.to(X64.device).T @ X64)).to(X.dtype)


TINY = torch.finfo(torch.float64).tiny


def shifted_solve(terms: list[tuple[torch.Tensor, float]], X: torch.Tensor) -> torch.Tensor:
    """(I + sum_i w_i B_i B_i^T)^-1 X for (d, m_i) blocks B_i and weights w_i > 0, on the cheaper
    side of the solve. While the C = sum_i m_i columns are fewer than d, by the Woodbury identity,
    X - B (D^-1 + B^T B)^-1 B^T X with B = [B_1 ... B_n] (d, C) and D = diag(w): one C x C solve,
    which D^-1 keeps well-posed even for duplicated or collinear columns. With C >= d (ImageNet's
    1,000 names at d = 512, ImageNet-21k's at d = 768), the C x C system would cost O(C^3) and C^2
    floats (3.8 GB at C = 21,841): then a Cholesky solve of the d x d matrix itself, which is
    symmetric and at least I, after O(d^2 C) to form it."""
    if not terms:
        return X
    B = torch.cat([block for block, _ in terms], dim=1)  # (d, C)
    w = torch.cat([torch.full((block.shape[1],), weight, dtype=B.dtype, device=B.device)
                   for block, weight in terms])
    d, C = B.shape
    if C < d:
        return X - B @ torch.linalg.solve(torch.diag(1 / w) + B.T @ B, B.T @ X)
    A = torch.eye(d, dtype=B.dtype, device=B.device) + (B * w) @ B.T  # (d, d)
    return torch.cholesky_solve(X, torch.linalg.cholesky(A))


def check_alpha(alpha: float) -> None:
    """The strength shared by every method is a fraction of the full unlearning step."""
    if not isinstance(alpha, int | float) or not 0 <= alpha <= 1:  # also refuses NaN
        raise UserError("alpha must lie in [0, 1] (0 = original model, 1 = full unlearning), "
                        f"got {alpha}")


def check_lam_mu(lam: float, mu: float) -> None:
    """The objective's weights: lam >= 0 (inf = hard constraint W T_f = 0), finite mu >= 0."""
    numbers = isinstance(lam, int | float) and isinstance(mu, int | float)
    # comparisons with NaN are False: NaN is refused too
    if not (numbers and lam >= 0 and 0 <= mu < math.inf):
        raise UserError("CCUP needs lam >= 0 (inf allowed) and finite mu >= 0, got "
                        f"lam={lam}, mu={mu}")
