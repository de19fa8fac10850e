"""Splitting the proxy's training set across a fleet's edges: IID, or non-IID by Dirichlet.

`partition(labels, shares, alpha, seed)` returns one index array per edge (sorted, disjoint,
together every sample once), for n samples and N edges with simulated shares s_1..s_N:

    IID (alpha None)  a seeded random permutation cut into N pieces of sizes proportional to
                      the shares: n_i = floor(n s_i / S) (S = sum of the shares), the n - sum n_i
                      leftover samples one each to the largest remainders (ties: lower index).
    non-IID (alpha)   per class c, proportions p_c ~ Dirichlet(alpha * w) over the edges, with
                      w_i = s_i / mean(s) (mean 1, so alpha keeps its usual meaning: 0.1 is
                      nearly one class per edge, 100 is nearly IID; Hsu et al. 2019, "Measuring
                      the effects of non-identical data distribution"). The class's samples, in a
                      seeded random order, are cut at the cumulative proportions. E[n_i] is
                      proportional to s_i, as in the IID split, but each draw varies.

Minimum size: every edge then gets at least m = min(min_samples, floor(n / N)) samples (the
trainer asks for one batch). While an edge has fewer, the edge holding the most gives it
randomly chosen samples, never going below m itself; so where n < N * min_samples every edge
gets at least an equal floor share instead of a full batch. Fewer samples than edges is an error.

The same (labels, shares, alpha, seed) always give the same split (numpy's PCG64, seeded by
`seed`). With one edge every method gets all samples in their original order: a one-edge fleet
sees the data exactly as a single edge does.
"""
import numpy as np


def proportional_sizes(n: int, shares: tuple[int, ...] | list[float]) -> list[int]:
    """n split in proportion to `shares` by largest remainder (module docstring, IID); sums to n."""
    weights = np.asarray(shares, dtype=np.float64)
    exact = n * weights / weights.sum()
    sizes = np.floor(exact).astype(np.int64)
    leftover = n - int(sizes.sum())
    order = sorted(range(len(sizes)), key=lambda i: (-(exact[i] - sizes[i]), i))
    for i in order[:leftover]:
        sizes[i] += 1
    return sizes.tolist()


def _dirichlet_split(labels: np.ndarray, shares: tuple[int, ...], alpha: float,
                     rng: np.random.Generator) -> list[list[int]]:
    """Per class, the class's samples cut across edges at Dirichlet(alpha * w) proportions."""
    weights = np.asarray(shares, dtype=np.float64)
    concentration = alpha * weights / weights.mean()
    pieces: list[list[int]] = [[] for _ in shares]
    for label in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == label))
        proportions = rng.dirichlet(concentration)
        cuts = np.round(np.cumsum(proportions)[:-1] * len(members)).astype(np.int64)
        for edge, chunk in enumerate(np.split(members, cuts)):
            pieces[edge].extend(chunk.tolist())
    return pieces


def _ensure_minimum(pieces: list[list[int]], minimum: int, rng: np.random.Generator) -> None:
    """Move randomly chosen samples from the largest piece to any piece below `minimum`, in place.

    Terminates: while a piece is below the minimum and n >= N * minimum, the largest piece holds
    more than the minimum, so every move shrinks the total shortfall by at least one sample.
    """
    while True:
        short = [i for i, piece in enumerate(pieces) if len(piece) < minimum]
        if not short:
            return
        taker = short[0]
        donor = max(range(len(pieces)), key=lambda i: (len(pieces[i]), -i))
        moved = min(minimum - len(pieces[taker]), len(pieces[donor]) - minimum)
        chosen = set(rng.choice(len(pieces[donor]), size=moved, replace=False).tolist())
        pieces[taker].extend(pieces[donor][k] for k in sorted(chosen))
        pieces[donor] = [index for k, index in enumerate(pieces[donor]) if k not in chosen]


def partition(labels, shares: tuple[int, ...], alpha: float | None, seed: int,
              min_samples: int = 1) -> list[np.ndarray]:
    """Index arrays (int64, sorted), one per edge, splitting the samples of `labels` (a numpy
    array or a CPU tensor of class indices) as the module docstring describes."""
    labels = np.asarray(labels).reshape(-1)
    n, edges = len(labels), len(shares)
    if edges < 1 or any(s <= 0 for s in shares):
        raise ValueError(f"shares must be one positive number per edge, got {shares!r}")
    if alpha is not None and not alpha > 0:
        raise ValueError(f"the Dirichlet alpha must be positive, got {alpha!r}")
    if n < edges:
        raise ValueError(f"cannot split {n} training samples across {edges} edges; train on at least {edges}")
    rng = np.random.default_rng(seed)
    if alpha is None:
        order = rng.permutation(n)
        pieces = [chunk.tolist() for chunk in np.split(order, np.cumsum(proportional_sizes(n, shares))[:-1])]
    else:
        pieces = _dirichlet_split(labels, shares, alpha, rng)
    _ensure_minimum(pieces, min(min_samples, n // edges), rng)
    return [np.sort(np.asarray(piece, dtype=np.int64)) for piece in pieces]
