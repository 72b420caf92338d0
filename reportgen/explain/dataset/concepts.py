"""Concepts: non-negative matrix factorisation of a layer's activations over a class's images.

After deep feature factorisation (Collins et al., 2018) and CRAFT (Fel et al., 2023): the
activations A (n, h, w, C) of the class's images at the explained layer, negatives clipped to
0 (after a ReLU there are none), are flattened to (n h w, C) and factorised as A ~ U V with U
(n h w, k) and V (k, C) non-negative (Lee & Seung's multiplicative updates for the Frobenius
norm, seeded). Concept j's map on image i is U[i, :, :, j]; its direction in channel space is
V[j].

Its contribution to the class score of image i is sum_hw U[i, h, w, j] (V[j] . G[i, h, w]),
with G the gradient of the class logit with respect to the layer's output. For a head that is
linear in the activations (global average pooling -> Dense: G = w_c / (h w) everywhere) this
is exactly mean_hw U[i, :, :, j] (V[j] . w_c), and logit = sum_j contribution_j + residual
with residual = b_c + mean_hw (A - U V) . w_c. For any other head it is the first-order
(gradient x activation) estimate at each image, and the residual holds what it misses.
numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

#: Concepts per class (fewer when the layer has fewer channels).
CONCEPTS = 4
#: Multiplicative-update steps of the factorisation at most ...
STEPS = 300
#: ... stopping early once 20 steps improve the reconstruction error by less than this share.
TOL = 1e-4
#: Images per class whose activations are factorised (the first in test order).
IMAGES = 48
#: Top patches shown per concept (from distinct images).
PATCHES = 6


def planned_images(split, n_classes: int) -> int:
    """How many test images the concepts factorise: each class's first :data:`IMAGES` (for
    unlabeled photos, grouped by prediction, at most :data:`IMAGES` a class)."""
    if not split.labeled:
        return min(len(split), IMAGES * n_classes)
    labels = np.asarray(split.labels)
    counts = np.bincount(labels[(labels >= 0) & (labels < n_classes)], minlength=n_classes)
    return int(np.minimum(counts, IMAGES).sum())


def nmf(x: np.ndarray, k: int, seed: int = 0, steps: int = STEPS) -> tuple[np.ndarray,
                                                                            np.ndarray]:
    """Non-negative U (m, k), V (k, C) with x ~ U V for non-negative x (m, C), by Lee &
    Seung's multiplicative updates from a seeded random start (scaled to x's mean), at most
    ``steps`` of them (see :data:`TOL`)."""
    x = np.asarray(x, np.float64)
    rng = np.random.default_rng(seed)
    scale = np.sqrt(max(float(x.mean()), 1e-12) / k)
    u = rng.random((x.shape[0], k)) * scale + 1e-6
    v = rng.random((k, x.shape[1])) * scale + 1e-6
    eps, last = 1e-12, np.inf
    for step in range(steps):
        v *= (u.T @ x) / (u.T @ u @ v + eps)
        u *= (x @ v.T) / (u @ (v @ v.T) + eps)
        if step % 20 == 19:  # stop once the fit improves by less than TOL in 20 steps
            err = float(np.linalg.norm(x - u @ v))
            if last - err <= TOL * last:
                break
            last = err
    return u, v


@dataclass
class Concept:
    """One concept of a class.

    Attributes:
        contribution: mean contribution to the class logit over the class's images.
        share: contribution / sum of the concepts' contributions' absolute values.
        direction: (C,) float32 its channel weights V[j].
        patches: [(test index, (y0, x0, y1, x1) inclusive pixel box, strength)]: the
            strongest units' receptive fields, one per image, strongest first.
        heat: (h, w) float32 in [0, 1]: its map on the first patch's image.
        files: the test indices of the class's images where it is the strongest concept.
    """

    contribution: float
    share: float
    direction: np.ndarray
    patches: list[tuple[int, tuple[int, int, int, int], float]] = field(default_factory=list)
    heat: np.ndarray | None = None
    files: list[int] = field(default_factory=list)


@dataclass
class ClassConcepts:
    """The concepts of one class: ``exact`` whether the contributions are exact (a head linear
    in the layer: the gradient is the same at every image and position), ``logit`` and
    ``residual`` their means over the ``images`` (test indices), ``clipped`` the share of the
    activations' mass that was negative and clipped, ``note`` why there are none."""

    cls: int
    images: list[int]
    concepts: list[Concept] = field(default_factory=list)
    exact: bool = False
    logit: float = float("nan")
    residual: float = float("nan")
    clipped: float = 0.0
    note: str = ""


def contributions(u: np.ndarray, v: np.ndarray, grads: np.ndarray) -> np.ndarray:
    """(n, k) contributions of the concepts: sum_hw U[i, h, w, j] (V[j] . G[i, h, w]) for
    U (n, h, w, k), V (k, C), G (n, h, w, C)."""
    return np.einsum("nhwk,kc,nhwc->nk", u, v, grads)


def linear_head(grads: np.ndarray, rtol: float = 1e-4) -> bool:
    """Whether the gradients (n, h, w, C) are one vector at every image and position (a head
    linear in the layer's activations, up to ``rtol`` of their largest magnitude)."""
    g0 = grads.reshape(-1, grads.shape[-1])
    top = float(np.abs(g0).max()) or 1.0
    return bool(np.abs(g0 - g0[0]).max() <= rtol * top)


def factorise(acts: np.ndarray, grads: np.ndarray, logits: np.ndarray, k: int = CONCEPTS,
              seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """NMF of ``acts`` (n, h, w, C) and the concepts' contributions to ``logits`` (n,) with
    ``grads`` (n, h, w, C). Returns U (n, h, w, k), V (k, C), contributions (n, k) and the
    clipped share (mass of the negative activations over the total absolute mass)."""
    n, h, w, c = acts.shape
    total = float(np.abs(acts).sum()) or 1.0
    clipped = float(-acts[acts < 0].sum()) / total
    u, v = nmf(np.clip(acts, 0, None).reshape(-1, c), min(k, c), seed)
    u = u.reshape(n, h, w, -1)
    return u, v, contributions(u, v, grads), clipped


def _patches(u: np.ndarray, j: int, idx: np.ndarray, box) -> list:
    """The :data:`PATCHES` strongest units of concept ``j`` in U (n, h, w, k), one per
    image: [(test index, box(row, col), strength)]."""
    peak = u[..., j].reshape(len(u), -1)
    best = peak.argmax(1)
    out = []
    for i in np.argsort(-peak.max(1), kind="stable")[:PATCHES]:
        r, c = divmod(int(best[i]), u.shape[2])
        out.append((int(idx[i]), tuple(int(b) for b in box(r, c)), float(peak[i, best[i]])))
    return out


def class_concepts(cls: int, idx: np.ndarray, acts: np.ndarray, grads: np.ndarray,
                   logits: np.ndarray, box, seed: int = 0) -> ClassConcepts:
    """The concepts of class ``cls`` from its images ``idx`` (n,): their activations and
    class-logit gradients (n, h, w, C), class logits (n,), and ``box(row, col)`` the
    receptive field (y0, x0, y1, x1) of a unit of the layer."""
    u, v, contrib, clipped = factorise(acts, grads, logits, seed=seed)
    out = ClassConcepts(cls, [int(i) for i in idx], exact=linear_head(grads),
                        logit=float(logits.mean()),
                        residual=float((logits - contrib.sum(1)).mean()), clipped=clipped)
    mean = contrib.mean(0)
    strongest = contrib.argmax(1)
    norm = float(np.abs(mean).sum()) or 1.0
    for j in np.argsort(-mean, kind="stable"):
        patches = _patches(u, int(j), idx, box)
        first = int(np.flatnonzero(idx == patches[0][0])[0])
        heat = u[first, :, :, j]
        out.concepts.append(Concept(
            contribution=float(mean[j]), share=float(mean[j]) / norm,
            direction=v[j].astype(np.float32), patches=patches,
            heat=(heat / max(float(heat.max()), 1e-12)).astype(np.float32),
            files=[int(idx[i]) for i in np.flatnonzero(strongest == j)]))
    return out
