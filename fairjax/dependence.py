"""Dependence between predictions and a continuous (or vector) sensitive attribute.

Demographic parity for a continuous attribute :math:`S` (age, income) asks the predictions
:math:`\\hat Y` to be independent of :math:`S`; binning :math:`S` into groups (what most
libraries do) sees only the dependence between bins. The estimators here measure it directly;
each is 0 under independence:

* :func:`hsic` — the Hilbert-Schmidt independence criterion with Gaussian kernels (Gretton et
  al., 2005), :math:`O(n^2)`, or linear in :math:`n` with random Fourier features; vector
  attributes allowed; differentiable (the penalty of FFB's "HSIC" baseline).
* :func:`distance_correlation` — Székely, Rizzo and Bakirov's distance correlation (2007),
  in :math:`[0, 1]`, 0 if and only if independent; vector attributes allowed; differentiable.
* :func:`hgr_correlation` — the Hirschfeld-Gebelein-Rényi maximal correlation
  :math:`\\sup_{f, g} \\operatorname{corr}(f(\\hat Y), g(S))` in :math:`[0, 1]`, estimated as the
  largest canonical correlation between Hermite polynomials of the two variables' normal
  scores (a rank transform: the estimate is invariant to increasing maps of either variable,
  as HGR is). Not differentiable in the predictions (ranks); a metric.
* :func:`hgr_kde` — Mary, Calauzènes and El Karoui's (ICML 2019) differentiable estimator:
  a Gaussian kernel density estimate of the joint law on a grid, whose second singular value
  (after normalising by the marginals) is HGR, and whose :math:`\\chi^2` divergence from the
  product of the marginals bounds :math:`\\mathrm{HGR}^2` from above. Their training penalty.

All take ``weights`` (non-negative, normalised internally) and work under ``jit``, ``vmap``
and ``grad`` (except :func:`hgr_correlation`'s gradient, which is zero almost everywhere).
:mod:`fairjax.metrics` and :mod:`fairjax.penalties` expose them under their names there
(``metrics.hsic``, ``metrics.hgr_correlation``, ``penalties.hsic``, ``penalties.hgr``).
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from fairjax import _validation as v
from fairjax import criteria
from fairjax import groups as gs
from fairjax import kernels as kn
from fairjax._nan import propagate_nan

Array = jax.Array
ArrayLike = jax.typing.ArrayLike

__all__ = ["distance_correlation", "hgr_correlation", "hgr_kde", "hsic"]


def _inputs(x, s, weights, *, x_name, s_name, vector_s=True):
    """Validated ``(n, d)`` float arrays and weights summing to 1, in one float dtype."""
    X = v.as_array(x, x_name, ndim=(1, 2))
    S = v.as_array(s, s_name, ndim=(1, 2) if vector_s else 1)
    v.check_nonempty(X, x_name)
    v.check_length(S, X.shape[0], s_name, x_name)
    v.check_finite(X, x_name)
    v.check_finite(S, s_name)
    n = X.shape[0]
    w = v.check_weights(weights, n)
    dtype = v.float_dtype(X, S, w)
    w = jnp.full((n,), 1.0 / n, dtype) if w is None else w.astype(dtype) / jnp.sum(w)
    X = X.astype(dtype).reshape(n, -1)
    S = S.astype(dtype).reshape(n, -1)
    return X, S, w


def _centred_gram(K: Array, w: Array) -> Array:
    """:math:`H K H` for the weighted centring :math:`H = I - \\mathbf{1} w^\\top`."""
    row = K @ w
    return K - row[:, None] - row[None, :] + w @ row


# ----------------------------------------------------------------------------------------- HSIC


def hsic(
    x: ArrayLike,
    s: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    bandwidth_x: ArrayLike | None = None,
    bandwidth_s: ArrayLike | None = None,
    num_features: int | None = None,
    key: Array | None = None,
    normalized: bool = False,
) -> Array:
    """Hilbert-Schmidt independence criterion between ``x`` and ``s`` (Gaussian kernels).

    .. math::

        \\mathrm{HSIC} = \\sum_{i,j} w_i w_j \\tilde K_{ij} \\tilde L_{ij},
        \\qquad \\tilde K = H K H, \\; H = I - \\mathbf{1} w^\\top

    with :math:`K_{ij} = k(x_i, x_j)` and :math:`L_{ij} = l(s_i, s_j)` Gaussian kernels; for
    uniform weights this is the biased V-statistic :math:`\\frac{1}{n^2}\\operatorname{tr}(KHLH)`
    of Gretton et al. It is 0 when ``x`` and ``s`` are independent (in the population, for
    characteristic kernels) and grows with their dependence. ``normalized=True`` divides by
    :math:`\\sqrt{\\mathrm{HSIC}(x, x)\\,\\mathrm{HSIC}(s, s)}` (a value in [0, 1]). The exact
    kernels see ``x`` and ``s`` less their weighted means (no kernel value changes), so points
    far from the origin relative to their spread keep their distances.

    With ``num_features=D`` (and a ``key``) the kernels are replaced by random Fourier
    features :math:`\\phi, \\psi` and HSIC by :math:`\\|\\mathrm{Cov}_w(\\phi(x), \\psi(s))\\|_F^2`,
    :math:`O(n D^2)` time and :math:`O(n D)` memory instead of :math:`O(n^2)`: the same quantity
    up to the features' Monte-Carlo error :math:`O(D^{-1/2})`.

    Args:
      x: predictions or scores, shape ``(n,)`` or ``(n, d)``.
      s: the sensitive attribute, shape ``(n,)`` or ``(n, p)``; continuous or discrete.
      weights: optional non-negative sample weights ``(n,)``.
      bandwidth_x, bandwidth_s: Gaussian bandwidths; default the median heuristic
        (:func:`fairjax.kernels.median_bandwidth`, not differentiated through) of each input
        (of its first 1,024 rows with random features).
      num_features: number of random Fourier features per variable; ``None`` (default): exact.
      key: PRNG key of the random features (required with ``num_features``).
      normalized: divide by the two self-dependences (a correlation-like value in [0, 1]).

    Returns:
      A non-negative scalar (float32 at least).

    Example:
      >>> import jax
      >>> from fairjax.dependence import hsic
      >>> x = jax.random.normal(jax.random.key(0), (200,))
      >>> bool(hsic(x, x**2) > 10 * hsic(x, jax.random.normal(jax.random.key(1), (200,))))
      True

    References:
      Gretton, Bousquet, Smola, Schölkopf, *Measuring statistical dependence with
      Hilbert-Schmidt norms*, ALT 2005; Pérez-Suay et al., *Fair kernel learning*, ECML 2017.
    """
    X, S, w = _inputs(x, s, weights, x_name="x", s_name="s")
    if num_features is not None:
        num_features = v.check_scalar(num_features, "num_features", integer=True, positive=True)
        if key is None:
            raise ValueError("`key` is required with `num_features` (random Fourier features).")
        key = v.check_key(key)
    for name, value in (("bandwidth_x", bandwidth_x), ("bandwidth_s", bandwidth_s)):
        v.check_scalar(value, name, positive=True, optional=True)
    value = _hsic(X, S, w, bandwidth_x, bandwidth_s, key, num_features, normalized)
    return propagate_nan(value, X, S, w, infinite=True)


def _shift(Z: Array, w: Array) -> Array:
    """``Z`` less the weighted mean of its rows of positive weight: a common shift changes no
    distance, and without it the expansion of several features' squared distances cancels
    the digits of points far from the origin (unit spread at 1e4 read as independent)."""
    kept = jnp.where(w > 0, w, 0)
    return Z - jax.lax.stop_gradient(gs.safe_divide(kept @ Z, jnp.sum(kept)))


@functools.partial(jax.jit, static_argnames=("num_features", "normalized"))
def _hsic(X, S, w, hx, hs, key, num_features, normalized):
    if num_features is None:  # the Gaussian kernel's value at a common shift: exact, see _shift
        X, S = _shift(X, w), _shift(S, w)
    sub = slice(None) if num_features is None else slice(0, 1024)
    hx = kn.median_bandwidth(X[sub], weights=w[sub]) if hx is None else hx
    hs = kn.median_bandwidth(S[sub], weights=w[sub]) if hs is None else hs
    if num_features is None:
        Kc = _centred_gram(kn.kernel_matrix(kn.gaussian(bandwidth=hx), X), w)
        Lc = _centred_gram(kn.kernel_matrix(kn.gaussian(bandwidth=hs), S), w)
        cross = w @ (Kc * Lc) @ w
        if not normalized:
            return cross
        return _normalized(cross, (w @ (Kc * Kc) @ w) * (w @ (Lc * Lc) @ w))
    kx, ks = jax.random.split(key)
    phi = kn.random_fourier_features(kx, X.shape[1], num_features=num_features, bandwidth=hx)
    psi = kn.random_fourier_features(ks, S.shape[1], num_features=num_features, bandwidth=hs)
    F, G = phi(X), psi(S)
    F, G = F - w @ F, G - w @ G
    wF = F * w[:, None]
    cross = jnp.sum((wF.T @ G) ** 2)
    if not normalized:
        return cross
    return _normalized(cross, jnp.sum((wF.T @ F) ** 2) * jnp.sum(((G * w[:, None]).T @ G) ** 2))


def _normalized(cross: Array, product: Array) -> Array:
    """``cross / sqrt(product)``, 0 where the product is 0 (a constant input), with finite
    gradients there: the square root never sees the 0, whose derivative is infinite."""
    positive = product > 0
    root = jnp.sqrt(jnp.where(positive, product, 1.0))
    return jnp.where(positive, cross / root, jnp.where(jnp.isnan(product), product, 0.0))


# -------------------------------------------------------------------------- distance correlation


def distance_correlation(x: ArrayLike, s: ArrayLike, *, weights: ArrayLike | None = None) -> Array:
    """Distance correlation between ``x`` and ``s``: 0 if and only if they are independent.

    .. math::

        \\mathrm{dCor}^2 = \\frac{\\mathrm{dCov}^2(x, s)}
        {\\sqrt{\\mathrm{dCov}^2(x, x)\\,\\mathrm{dCov}^2(s, s)}},
        \\qquad \\mathrm{dCov}^2(x, s) = \\sum_{i,j} w_i w_j \\tilde A_{ij} \\tilde B_{ij}

    with :math:`A_{ij} = \\|x_i - x_j\\|`, :math:`B_{ij} = \\|s_i - s_j\\|` and :math:`\\tilde A`
    their (weighted) double centring; uniform weights give Székely et al.'s V-statistic (as the
    ``dcor`` package's ``distance_correlation``). The value is :math:`\\mathrm{dCor}`, in
    [0, 1]; 0 when either input is constant. Differentiable, with finite gradients at ties.

    Args:
      x: predictions or scores, shape ``(n,)`` or ``(n, d)``.
      s: the sensitive attribute, shape ``(n,)`` or ``(n, p)``.
      weights: optional non-negative sample weights ``(n,)``.

    Returns:
      A scalar in [0, 1].

    Example:
      >>> import jax.numpy as jnp
      >>> from fairjax.dependence import distance_correlation
      >>> x = jnp.array([1.0, 2.0, 3.0, 4.0])
      >>> distance_correlation(x, 2 * x + 1)  # an affine map: 1
      Array(1., dtype=float32)

    References:
      Székely, Rizzo, Bakirov, *Measuring and testing dependence by correlation of
      distances*, Annals of Statistics 35(6), 2007.
    """
    X, S, w = _inputs(x, s, weights, x_name="x", s_name="s")
    return propagate_nan(_distance_correlation(X, S, w), X, S, w, infinite=True)


@jax.jit
def _distance_correlation(X, S, w):
    A = _centred_gram(kn.distances(X), w)
    B = _centred_gram(kn.distances(S), w)
    cov = w @ (A * B) @ w
    var = (w @ (A * A) @ w) * (w @ (B * B) @ w)
    # sqrt(cov / sqrt(var)) with finite gradients where a variance is 0 (a constant input).
    ratio = gs.safe_divide(jnp.maximum(cov, 0.0), jnp.sqrt(jnp.where(var > 0, var, 1.0)))
    ratio = jnp.where(var > 0, ratio, 0.0)
    return jnp.where(ratio > 0, jnp.sqrt(jnp.where(ratio > 0, ratio, 1.0)), 0.0)


# ---------------------------------------------------------------------------------- HGR (ranks)


def _normal_scores(x: Array, w: Array) -> Array:
    """:math:`\\Phi^{-1}` of each value's weighted mid-rank :math:`F(x-) + w_{=}/2` (ties share)."""
    order = jnp.argsort(x)
    xs = x[order]
    cum = jnp.concatenate([jnp.zeros((1,), w.dtype), jnp.cumsum(w[order])])
    lo = cum[jnp.searchsorted(xs, x, side="left")]
    hi = cum[jnp.searchsorted(xs, x, side="right")]
    eps = jnp.finfo(w.dtype).eps
    return jax.scipy.special.ndtri(jnp.clip((lo + hi) / 2, eps, 1 - eps))


def _hermite_basis(z: Array, degree: int) -> Array:
    """Probabilists' Hermite polynomials :math:`He_1..He_d(z)`, scaled to unit variance."""
    cols = [jnp.ones_like(z), z]
    for k in range(1, degree):
        cols.append(z * cols[k] - k * cols[k - 1])
    scale = jnp.sqrt(jnp.cumprod(jnp.arange(1, degree + 1, dtype=z.dtype)))
    return jnp.stack(cols[1:], axis=1) / scale


def _whiten(B: Array, w: Array, ridge: float) -> Array:
    """``B`` centred and whitened under the weights: :math:`\\sum_i w_i b_i b_i^\\top = I`."""
    B = B - w @ B
    C = (B * w[:, None]).T @ B
    vals, vecs = jnp.linalg.eigh(C)
    floor = ridge * jnp.maximum(jnp.max(vals), jnp.finfo(B.dtype).tiny)
    inv_sqrt = jnp.where(vals > floor, 1 / jnp.sqrt(jnp.where(vals > floor, vals, 1.0)), 0.0)
    return B @ (vecs * inv_sqrt)


def hgr_correlation(
    x: ArrayLike,
    s: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    degree: int = 3,
) -> Array:
    """Hirschfeld-Gebelein-Rényi maximal correlation of ``x`` and ``s``, from their ranks.

    .. math::

        \\mathrm{HGR}(X, S) = \\sup_{f, g}\\; \\operatorname{corr}\\big(f(X), g(S)\\big)

    over measurable :math:`f, g` of finite variance: in [0, 1], 0 if and only if :math:`X` and
    :math:`S` are independent, 1 when one determines a function of the other, :math:`|\\rho|`
    for a bivariate Gaussian. The estimate maps each variable to its normal scores
    :math:`z = \\Phi^{-1}(\\text{mid-rank})` (weighted; ties share a rank), restricts
    :math:`f, g` to polynomials of degree ``degree`` in :math:`z` (Hermite basis), and returns
    the largest canonical correlation between the two bases. The rank transform makes it
    invariant to increasing maps of either variable, as HGR is; a larger ``degree`` finds
    more non-monotone dependence at the cost of a larger upward bias under independence
    (about :math:`2\\sqrt{d/n}` for ``d = degree``). It is a lower bound of the population
    HGR up to that noise. Not differentiable in ``x`` (ranks): use :func:`hgr_kde` or
    :func:`hsic` as a training penalty.

    Args:
      x: predictions or scores, shape ``(n,)``.
      s: the sensitive attribute, shape ``(n,)``.
      weights: optional non-negative sample weights ``(n,)``.
      degree: the polynomials' degree (static, >= 1); 1 gives the absolute Spearman-type
        (normal-scores) rank correlation.

    Returns:
      A scalar in [0, 1].

    Example:
      >>> import jax
      >>> from fairjax.dependence import hgr_correlation
      >>> x = jax.random.normal(jax.random.key(0), (2000,))
      >>> print(f"{float(hgr_correlation(x, x**2)):.2f}")  # uncorrelated, yet a function of x
      1.00

    References:
      Rényi, *On measures of dependence*, Acta Math. Hungarica 10, 1959; Breiman, Friedman,
      *Estimating optimal transformations for multiple regression and correlation*, JASA
      1985; Lopez-Paz, Hennig, Schölkopf, *The randomized dependence coefficient*, NeurIPS 2013.
    """
    X, S, w = _inputs(x, s, weights, x_name="x", s_name="s", vector_s=False)
    if X.shape[1] != 1:
        raise ValueError(f"`x` must have shape (n,), got {X.shape}.")
    degree = v.check_scalar(degree, "degree", integer=True, positive=True)
    return propagate_nan(_hgr_correlation(X[:, 0], S[:, 0], w, degree), X, S, w, infinite=True)


@functools.partial(jax.jit, static_argnames=("degree",))
def _hgr_correlation(x, s, w, degree):
    x, s, w = (jax.lax.stop_gradient(a) for a in (x, s, w))
    ridge = 1e-6 if x.dtype == jnp.float32 else 1e-12
    A = _whiten(_hermite_basis(_normal_scores(x, w), degree), w, ridge)
    B = _whiten(_hermite_basis(_normal_scores(s, w), degree), w, ridge)
    top = jnp.linalg.svd((A * w[:, None]).T @ B, compute_uv=False)[0]
    finite = jnp.all(jnp.isfinite(x))  # ranks would hide a NaN score: NaN in, NaN out
    return jnp.where(finite, jnp.clip(top, 0.0, 1.0), jnp.nan)


# ------------------------------------------------------------------------------ HGR (KDE, Mary)


def hgr_kde(
    x: ArrayLike,
    s: ArrayLike,
    *,
    weights: ArrayLike | None = None,
    estimator: str = "chi2",
    grid_size: int = 50,
    bandwidth: ArrayLike | None = None,
) -> Array:
    """Mary et al.'s differentiable HGR estimate, or its :math:`\\chi^2` upper bound.

    Both variables are standardised (weighted mean 0, standard deviation 1) and their joint
    density is estimated with a Gaussian kernel of bandwidth :math:`h` on a
    ``grid_size`` x ``grid_size`` grid over :math:`[-4, 4]^2`, :math:`P_{ab} \\propto \\sum_i w_i
    \\varphi_h(u_a - x_i) \\varphi_h(v_b - s_i)`, normalised to sum 1, with marginals
    :math:`p, q`. With :math:`Q_{ab} = P_{ab} / \\sqrt{p_a q_b}`, HGR of the smoothed law is
    the second singular value :math:`\\sigma_2(Q)` (the first is 1), and

    .. math:: \\mathrm{HGR}^2 \\le \\chi^2(P \\,\\|\\, p \\otimes q) = \\|Q\\|_F^2 - 1,

    the quantity Mary et al. penalise: smooth, and 0 only at independence. As a measurement
    :math:`\\sigma_2(Q)` is biased: down by the smoothing (a bivariate Gaussian's
    :math:`|\\rho|` becomes about :math:`|\\rho| / (1 + h^2)`), and up under independence, where
    the sampling noise of the :math:`m^2` cells leaves a floor that falls slowly with
    :math:`n`; report :func:`hgr_correlation` instead, and use this one to train.

    Args:
      x: predictions or scores, shape ``(n,)``; gradients flow through them.
      s: the sensitive attribute, shape ``(n,)``.
      weights: optional non-negative sample weights ``(n,)``.
      estimator: ``"chi2"`` (default): the :math:`\\chi^2` divergence; ``"svd"``:
        :math:`\\sigma_2(Q)`, the HGR estimate itself.
      grid_size: points per axis of the density grid (static).
      bandwidth: kernel bandwidth in standard deviations; default Silverman's
        :math:`1.06\\, n_{\\mathrm{eff}}^{-1/5}` with :math:`n_{\\mathrm{eff}} = 1 / \\sum w_i^2`.

    Returns:
      A non-negative scalar.

    Example:
      >>> import jax
      >>> from fairjax.dependence import hgr_kde
      >>> x = jax.random.normal(jax.random.key(0), (1000,))
      >>> grad = jax.grad(lambda z: hgr_kde(z, x + 0.5 * z))(x)
      >>> bool(jax.numpy.all(jax.numpy.isfinite(grad)))
      True

    References:
      Mary, Calauzènes, El Karoui, *Fairness-aware learning for continuous attributes and
      treatments*, ICML 2019.
    """
    X, S, w = _inputs(x, s, weights, x_name="x", s_name="s", vector_s=False)
    if X.shape[1] != 1:
        raise ValueError(f"`x` must have shape (n,), got {X.shape}.")
    criteria.check_option(estimator, "estimator", ("chi2", "svd"))
    grid_size = v.check_scalar(grid_size, "grid_size", integer=True, positive=True)
    v.check_scalar(bandwidth, "bandwidth", positive=True, optional=True)
    value = _hgr_kde(X[:, 0], S[:, 0], w, bandwidth, estimator, grid_size)
    return propagate_nan(value, X, S, w, infinite=True)


def _standardize(z: Array, w: Array) -> Array:
    """``(z - mean) / sd`` under the weights; 0 for constant ``z``, with finite gradients;
    NaN for a NaN variance (an infinite ``z`` under ``jit``), which read as constant."""
    centred = z - w @ z
    var = w @ centred**2
    sd = jnp.sqrt(jnp.where(var > 0, var, 1.0))  # never sqrt(0): its gradient is infinite
    return jnp.where(var > 0, centred / sd, 0.0 * var)


@functools.partial(jax.jit, static_argnames=("estimator", "grid_size"))
def _hgr_kde(x, s, w, h, estimator, grid_size):
    if h is None:
        h = 1.06 * jnp.sum(w**2) ** 0.2
    x, s = _standardize(x, w), _standardize(s, w)

    # A fixed grid on [-4, 4] standard deviations: a grid stretched to an outlier would give
    # it rows and columns of its own, whose normalised entries are spurious dependence.
    grid = jnp.linspace(-4.0, 4.0, grid_size, dtype=x.dtype)

    def smooth(z):  # (grid, n): each row a grid point's kernel weights over the samples
        return jnp.exp(-0.5 * ((grid[:, None] - z[None, :]) / h) ** 2)

    P = (smooth(x) * w) @ smooth(s).T
    P = P / jnp.sum(P)
    p, q = jnp.sum(P, axis=1), jnp.sum(P, axis=0)
    # Grid cells far from every sample underflow to 0: no sqrt (or division) ever sees a 0,
    # whose derivative is infinite and would turn the gradient into NaN (inf * 0).
    pq = p[:, None] * q[None, :]
    Q = jnp.where(pq > 0, P / jnp.sqrt(jnp.where(pq > 0, pq, 1.0)), 0.0)
    if estimator == "chi2":
        return jnp.maximum(jnp.sum(Q**2) - 1.0, 0.0)

    def root(m):
        return jnp.where(m > 0, jnp.sqrt(jnp.where(m > 0, m, 1.0)), 0.0)

    # sigma_2(Q) = sigma_1 of Q less its top component sqrt(p) sqrt(q)^T.
    R = Q - root(p)[:, None] * root(q)[None, :]
    return jnp.linalg.svd(R, compute_uv=False)[0]
