"""Kernel FERM: the SVM on the kernel projected off the fairness directions (SMO), or Nystrom."""

from __future__ import annotations

import functools
import warnings
from typing import Any, Literal

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs
from fairjax import kernels as kn
from fairjax.ferm._directions import fairness_direction
from fairjax.ferm._linear import _NUM_STEPS, _fit_options, _prepare, fit_linear
from fairjax.ferm._model import FERMModel, KernelExpansion

Array = jax.Array
ArrayLike = jax.typing.ArrayLike


def _direction_coefficients(
    n: int, y: Array, groups: Array, *, num_groups: int | None, criterion, weights, dtype
) -> Array:
    r"""The rows :math:`c_k` with ``fairness_direction(X) = C @ X`` for every ``X`` (linear in X).

    Read off as the transpose of the linear map ``X -> fairness_direction(X)`` at ``X = 1``.
    """

    def direction(col):
        return fairness_direction(
            col, y, groups, num_groups=num_groups, criterion=criterion, weights=weights
        )[:, 0]

    ones = jnp.ones((n, 1), dtype)  # the kernel's dtype: float64 under x64
    out, pullback = jax.vjp(direction, ones)
    return jax.vmap(lambda e: pullback(e)[0][:, 0])(jnp.eye(out.shape[0], dtype=out.dtype))


@functools.partial(jax.jit, static_argnames=("max_iter",))
def _smo(
    K: Array, ysign: Array, upper: Array, ridge: Array, tol: Array, *, max_iter: int
) -> tuple[Array, Array, Array, Array]:
    r"""SMO with second-order working-set selection for the SVM dual.

    .. math:: \min_\alpha \tfrac12 \alpha^\top (Y K Y + \mathrm{diag}(r))\alpha - 1^\top\alpha
       \quad\text{s.t.}\quad y^\top\alpha = 0,\; 0 \le \alpha_i \le c_i,

    (Platt 1998; Fan, Chen and Lin, JMLR 2005, WSS 2), stopped when the maximal KKT violation
    :math:`\max_{I_{up}} -y_t G_t - \min_{I_{low}} -y_t G_t` is at most ``tol`` (libsvm's rule).
    One iteration moves one pair along :math:`(y_i, -y_j)`, which keeps :math:`y^\top\alpha`,
    with the exact clipped line minimum; the gradient :math:`G` is updated with two kernel rows.

    Returns:
      ``(alpha, b, iterations, gap)``.
    """
    dtype = K.dtype
    kdiag = jnp.diag(K) + ridge
    pos = ysign > 0

    def select(alpha, G):
        yG = -ysign * G
        up = jnp.where(pos, alpha < upper, alpha > 0)
        low = jnp.where(pos, alpha > 0, alpha < upper)
        i = jnp.argmax(jnp.where(up, yG, -jnp.inf))
        m = yG[i]
        M = jnp.min(jnp.where(low, yG, jnp.inf))
        return yG, up, low, i, m, M

    def cond(state):
        it, _, _, gap = state
        return (it < max_iter) & (gap > tol)

    def body(state):
        it, alpha, G, _ = state
        yG, _, low, i, m, M = select(alpha, G)
        Ki = K[i]
        b = m - yG  # > 0 for the candidates j: the first-order decrease along (y_i, -y_j)
        a = kdiag[i] + kdiag - 2.0 * Ki
        a = jnp.where(a > 0, a, 1e-12)  # a non-positive curvature (rounding) gets a tiny one
        cand = low & (yG < m)
        j = jnp.argmin(jnp.where(cand, -(b * b) / a, jnp.inf))
        # Largest feasible step t >= 0 along alpha_i += t y_i, alpha_j -= t y_j.
        room_i = jnp.where(pos[i], upper[i] - alpha[i], alpha[i])
        room_j = jnp.where(pos[j], alpha[j], upper[j] - alpha[j])
        t = jnp.clip(b[j] / a[j], 0.0, jnp.minimum(room_i, room_j))
        t = jnp.where(jnp.any(cand), t, 0.0)
        yi, yj = ysign[i], ysign[j]
        alpha = alpha.at[i].add(t * yi).at[j].add(-t * yj)
        G = G + t * ysign * (Ki - K[j])
        G = G.at[i].add(t * yi * ridge[i]).at[j].add(-t * yj * ridge[j])
        return it + 1, alpha, G, m - M

    n = K.shape[0]
    alpha0 = jnp.zeros((n,), dtype)
    G0 = -jnp.ones((n,), dtype)
    it, alpha, G, _ = jax.lax.while_loop(
        cond, body, (jnp.asarray(0), alpha0, G0, jnp.asarray(jnp.inf, dtype))
    )
    yG, _, _, _, m, M = select(alpha, G)
    gap = m - M
    free = (alpha > 0) & (alpha < upper)
    nfree = jnp.sum(free)
    # b from the free support vectors (y_i f(x_i) = 1 there), else the middle of [M, m].
    b = jnp.where(
        nfree > 0, gs.safe_divide(jnp.sum(jnp.where(free, yG, 0.0)), nfree), 0.5 * (m + M)
    )
    b = jnp.where(jnp.isfinite(b), b, 0.0)
    return alpha, b, it, gap


@functools.partial(jax.jit, static_argnames=("num_groups", "criterion"))
def _projected_kernel(X, ysign, groups, weights, kernel, *, num_groups, criterion):
    r"""The kernel matrix projected off the fairness directions, and what maps back to beta.

    :math:`k'(x, z) = k(x, z) - g(x)^\top M^{+} g(z)`, :math:`g_k = \sum_j c_{kj} k(x_j, \cdot)`,
    :math:`M = c K c^\top`: the kernel of the features projected onto the complement of the
    :math:`g_k` in the RKHS. Returns ``(K', c, tau = c K, M^+)``.
    """
    n = X.shape[0]
    K = kn.kernel_matrix(kernel, X)
    K = 0.5 * (K + K.T)
    coef = _direction_coefficients(
        n, ysign, groups, num_groups=num_groups, criterion=criterion, weights=weights, dtype=K.dtype
    )
    tau = coef @ K  # (G - 1, n): tau_k = fairness_direction(K), the constraint is tau @ beta = 0
    M = tau @ coef.T
    if M.shape[0] == 1:  # one direction (two groups): 1 / M, or 0 for a zero direction
        pinv = jnp.where(M > 0, 1.0 / jnp.where(M > 0, M, 1.0), 0.0)
    else:
        pinv = jnp.linalg.pinv(M, hermitian=True)
    return K - tau.T @ (pinv @ tau), coef, tau, pinv


def _fit_kernel_exact(X, ysign, sw, groups, weights, kernel, *, C, tol, num_groups, criterion,
                      loss, max_iter) -> FERMModel:  # fmt: skip
    """Exact kernel FERM with ``eps = 0``: an SVM on the projected kernel, solved by SMO.

    Three jitted pieces (projection, SMO, back-map) so that the SMO compilation is shared by
    every loss, number of groups and criterion of a given ``n``.
    """
    K, coef, tau, pinv = _projected_kernel(
        X, ysign, groups, weights, kernel, num_groups=num_groups, criterion=criterion
    )
    cw = jnp.asarray(C, K.dtype) * sw.astype(K.dtype)
    if loss == "hinge":
        upper, ridge = cw, jnp.zeros_like(cw)
    else:  # squared hinge: no upper bound, 1 / (2 C_i) on the diagonal; a zero weight fixes 0
        upper = jnp.where(cw > 0, jnp.inf, 0.0)
        ridge = jnp.where(cw > 0, 0.5 / jnp.where(cw > 0, cw, 1.0), 0.0)
    ys = ysign.astype(K.dtype)
    alpha, b, it, gap = _smo(K, ys, upper, ridge, jnp.asarray(tol, K.dtype), max_iter=max_iter)
    # Stopped by the cap, not by the tolerance (the loop tests the violation before its last
    # step; the one after it may be above tol when the loop did converge).
    if v.is_concrete(it, gap) and int(it) >= max_iter and float(gap) > tol:
        warnings.warn(
            f"ferm.fit_kernel: SMO stopped at max_iter={max_iter} with a KKT violation of "
            f"{float(gap):.3g} > tol={tol:g}: the model is not the optimum; raise max_iter "
            "(or tol).",
            RuntimeWarning,
            stacklevel=3,
        )
    beta = _back_to_beta(alpha * ys, coef, tau, pinv)
    return FERMModel(KernelExpansion(kernel, X), beta, b, tau, it)


@jax.jit
def _back_to_beta(a, coef, tau, pinv):
    """The expansion of f on k (not k'): beta = a - c^T M^+ tau a, so that tau @ beta = 0."""
    return a - coef.T @ (pinv @ (tau @ a))


def fit_kernel(
    X: ArrayLike,
    y: ArrayLike,
    groups: ArrayLike,
    *,
    num_groups: int | None = None,
    kernel: kn.Kernel | None = None,
    C: float = 1.0,
    eps: float = 0.0,
    loss: Literal["hinge", "squared_hinge", "logistic"] = "hinge",
    criterion: str | criteria.Criterion | None = None,
    weights: ArrayLike | None = None,
    num_landmarks: int | None = None,
    key: Array | None = None,
    solver: Literal["auto", "smo", "adam"] = "auto",
    tol: float = 1e-3,
    max_iter: int | None = None,
    num_steps: int = _NUM_STEPS,
    learning_rate: float = 0.1,
    condition: Literal["positive", "all"] | None = None,
    steps: int | None = None,
) -> FERMModel:
    r"""Kernel FERM: :math:`f(x) = \sum_i \beta_i k(x_i, x) + b` with :math:`\beta\cdot\tau_k = 0`.

    .. math::

        \min_{f \in \mathcal H, b}\; C \sum_i s_i\, \ell\big(y_i (f(x_i) + b)\big)
        + \tfrac12\|f\|_{\mathcal H}^2
        \quad\text{s.t.}\quad |\langle f, g_k\rangle_{\mathcal H}| \le \varepsilon,

    with :math:`g_k = \sum_j c_{kj} k(x_j, \cdot)` the group-mean difference of the kernel
    sections over the positives (:math:`c_k` the coefficients of :func:`fairness_direction`), so
    that :math:`\langle f, g_k\rangle = \beta\cdot\tau_k`,
    :math:`\tau_{k,i} = \text{mean}_{j\in P_{g_k}} k(x_j, x_i) - \text{mean}_{j \in P_r}
    k(x_j, x_i)`: the paper's constraint.

    **Exact solver** (``solver="smo"``, the default for ``eps = 0`` with the hinge or squared
    hinge loss and no landmarks). With :math:`\varepsilon = 0` the feasible :math:`f` are those
    orthogonal to every :math:`g_k`, and :math:`\langle f, \phi(x)\rangle = \langle f, P\phi(x)
    \rangle` for them, with :math:`P` the orthogonal projection onto the complement of
    :math:`\mathrm{span}\{g_k\}`; since :math:`\|Pf\| \le \|f\|`, kernel FERM *is* the
    unconstrained SVM with the projected kernel

    .. math:: k'(x, z) = k(x, z) - g(x)^\top M^{+} g(z), \qquad M_{kl} = \langle g_k, g_l
       \rangle = (c K c^\top)_{kl},

    a rank-:math:`(G-1)` update of the kernel matrix. Its dual (box constraints
    :math:`0 \le \alpha_i \le C s_i` and :math:`y^\top\alpha = 0`; for the squared hinge no
    upper bound and :math:`1/(2 C s_i)` added to the diagonal) is solved by SMO with
    second-order working-set selection (Fan, Chen and Lin 2005, the algorithm of libsvm) inside
    one ``jax.lax.while_loop``, to a maximal KKT violation ``tol``. The kernel expansion
    :math:`\beta = Y\alpha - c^\top M^{+}\tau\, Y\alpha` then satisfies :math:`\tau\beta = 0`
    to rounding error. Cost: the :math:`n \times n` kernel matrix and :math:`O(n)` per SMO
    iteration; no factorisation. Fine up to ~10^4 points.

    **Feature-space solver** (``solver="adam"``, used for ``eps > 0``, the logistic loss or
    ``num_landmarks``). The kernel is made explicit with the Nystrom map
    :math:`\phi(x) = \Lambda^{-1/2}V^\top k(L, x)` of :func:`fairjax.kernels.nystrom` and
    :func:`fit_linear` runs in feature space (projected Adam, ``num_steps`` steps): with every
    training point as a landmark :math:`\phi(X)\phi(X)^\top = K`, :math:`\beta = V\Lambda^{-1/2}
    w`, :math:`\|f\|_{\mathcal H} = \|w\|` and :math:`\langle w, u_k\rangle = \beta\cdot
    \tau_k`. With ``num_landmarks=m`` a random subset of ``m`` points is used (Nystrom
    approximation, :math:`O(n m^2)`): use it beyond ~10^4 points.

    Args:
      X: features ``(n, d)``.
      y: labels ``(n,)`` in {0, 1} or {-1, +1}.
      groups: group ids ``(n,)`` or membership ``(n, G)``.
      num_groups: static number of groups.
      kernel: a kernel value (default ``kernels.gaussian(bandwidth=1.0)``).
      C, eps, loss, criterion, weights, num_steps, learning_rate: as in :func:`fit_linear`
        (``num_steps`` and ``learning_rate`` apply to the Adam solver).
      num_landmarks: ``None`` for the exact kernel, else the number of Nystrom landmarks.
      key: PRNG key to draw landmarks (required with ``num_landmarks``).
      solver: ``"auto"``, ``"smo"`` (exact; ``eps = 0``, hinge or squared hinge, no landmarks)
        or ``"adam"``.
      tol: SMO stopping tolerance on the maximal KKT violation (libsvm's default 1e-3).
      max_iter: the SMO solver's iteration cap (default ``max(10^5, 100 n)``); unlike
        ``num_steps``, a budget the Adam solver always spends, SMO stops earlier at ``tol``.
      condition: deprecated, use ``criterion=`` (as in :func:`fit_linear`).
      steps: deprecated, use ``num_steps=``.

    Returns:
      A :class:`FERMModel`: with SMO, ``feature_map`` is the :class:`KernelExpansion` on the
      training points and ``weights`` is :math:`\beta`; with Adam, the Nystrom map. Its
      ``dual_coef`` is :math:`\beta` in both cases.

    Example:
      >>> import jax, jax.numpy as jnp
      >>> from fairjax import ferm, kernels
      >>> X = jax.random.normal(jax.random.key(0), (100, 2))
      >>> s = (X[:, 0] > 0).astype(jnp.int32)
      >>> y = (X[:, 0] * X[:, 1] > 0).astype(jnp.int32)
      >>> model = ferm.fit_kernel(X, y, s, num_groups=2, kernel=kernels.gaussian())
      >>> ferm.decision_function(model, X).shape
      (100,)
      >>> bool(abs(model.directions[0] @ model.dual_coef) < 1e-4)  # beta . tau = 0
      True

    References:
      Donini et al., NeurIPS 2018, Section 4 (kernel FERM, the vector tau).
      Fan, Chen, Lin, Working Set Selection Using Second Order Information for Training Support
      Vector Machines, JMLR 6, 2005 (the SMO working-set rule).
    """
    crit, num_steps = _fit_options(
        criterion, condition, num_steps, steps, learning_rate, where="ferm.fit_kernel"
    )
    max_iter = v.check_scalar(max_iter, "max_iter", integer=True, positive=True, optional=True)
    v.check_scalar(num_landmarks, "num_landmarks", integer=True, positive=True, optional=True)
    criteria.check_option(solver, "solver", ("auto", "smo", "adam"))
    X, ysign, sw = _prepare(X, y, groups, num_groups, weights, eps, C, loss)
    if v.is_concrete(ysign) and not v.holds(lambda xp, a: xp.any(a != a[0]), ysign):
        # One class: the dual's constraint y . alpha = 0 forces alpha = 0, and the model
        # predicted the other class everywhere (as scikit-learn's SVC, refuse).
        raise ValueError("`y` must hold both classes: a kernel machine needs two; got one.")
    kernel = kn.gaussian(bandwidth=1.0) if kernel is None else kernel
    exact_ok = num_landmarks is None and loss != "logistic" and float(eps) == 0.0
    if solver == "smo" and not exact_ok:
        raise ValueError(
            'solver="smo" solves the exact problem with eps = 0 and the hinge or squared hinge '
            'loss, without landmarks; use solver="adam".'
        )
    if solver != "adam" and exact_ok:
        v.check_scalar(tol, "tol", positive=True)
        n = X.shape[0]
        # Validation on concrete inputs (e.g. a group without positives), at the cost of a column.
        fairness_direction(
            jnp.ones((n, 1), X.dtype), ysign, groups, num_groups=num_groups,
            criterion=crit, weights=weights,
        )  # fmt: skip
        return _fit_kernel_exact(
            X, ysign, sw, jnp.asarray(groups), weights, kernel, C=C, tol=tol,
            num_groups=num_groups, criterion=crit, loss=loss,
            max_iter=int(max_iter) if max_iter is not None else max(100_000, 100 * n),
        )  # fmt: skip
    if num_landmarks is None:
        landmarks = X
    else:
        if key is None:
            raise ValueError("`key` is required to draw `num_landmarks` landmarks.")
        m = min(int(num_landmarks), X.shape[0])
        landmarks = _draw_landmarks(key, X, m=m)
    v.check_finite(landmarks, "landmarks")
    phi = _nystrom(kernel, landmarks)
    return fit_linear(
        X,
        y,
        groups,
        num_groups=num_groups,
        C=C,
        eps=eps,
        loss=loss,
        criterion=crit,
        weights=weights,
        feature_map=phi,
        num_steps=num_steps,
        learning_rate=learning_rate,
    )


@functools.partial(jax.jit, static_argnames=("m",))
def _draw_landmarks(key: Array, X: Array, *, m: int) -> Array:
    """``m`` rows of ``X`` drawn without replacement."""
    return X[jax.random.choice(key, X.shape[0], (m,), replace=False)]


@jax.jit
def _nystrom(kernel: Any, landmarks: Array) -> kn.NystromFeatures:
    """The Nystrom map under jit: all ``m`` columns kept, those of dropped eigenvalues zero."""
    return kn.nystrom(kernel, landmarks)
