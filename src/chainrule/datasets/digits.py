"""Digits from the real world, made to look like MNIST's: :func:`mnist_like`.

MNIST's digits were scanned dark on light, then each was fitted into a 20x20 box keeping its
aspect ratio (anti-aliased), and placed in a 28x28 field so that its centre of mass sits in
the middle, light ink on a black background.  A network trained on MNIST has only ever seen
digits made that way, so a photo or a drawing classifies well only after the same steps:

1. **gray**: RGB(A) to luminance (ITU-R 601, like Pillow's ``"L"``); a transparent
   background is filled with the colour that contrasts with the ink;
2. **invert**: the background (the median of the border) is light, so ink is dark: invert;
3. **clean**: the background level and the noise (the spread of the border) are subtracted,
   so paper texture and JPEG noise turn black, and the ink is stretched to reach 1.0;
4. **crop** to the ink, found on a 3x3-smoothed image so a stray noisy pixel does not count;
5. **fit** into a ``box`` x ``box`` square (20), keeping the aspect ratio, by area averaging;
6. **centre** by the centre of mass in the ``side`` x ``side`` field (28).

Everything is NumPy; reading an image file is the caller's business (the ``predict`` command
uses Pillow).  The result is float64 in [0, 1], scaled as ``load_mnist(normalize=True)``.

>>> import numpy as np
>>> paper = np.full((90, 60), 235, dtype=np.uint8)    # a light page, 60 wide, 90 high
>>> paper[20:70, 25:33] = 30                            # a dark "1", 8 px wide, 50 px high
>>> x = mnist_like(paper)
>>> x.shape, x.dtype, float(x.min()), float(x.max())
((28, 28), dtype('float64'), 0.0, 1.0)
>>> rows, cols = np.nonzero(x > 0.5)
>>> int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)  # fitted: 20 high
(20, 3)
>>> [abs(c - 14) <= 0.5 for c in center_of_mass(x)]       # centred as MNIST's, at 14
[True, True]
"""

from __future__ import annotations

import numpy as np

__all__ = ["area_resize", "center_of_mass", "mnist_like", "needs_invert", "to_gray"]

#: Luminance weights of R, G and B (ITU-R 601-2, as Pillow's ``convert("L")``).
_LUMA = np.array([0.299, 0.587, 0.114])


def to_gray(image: np.ndarray) -> np.ndarray:
    """An image as float64 luminance in [0, 1], shape (H, W).

    Accepts (H, W) gray, (H, W, 1), (H, W, 2) gray + alpha, (H, W, 3) RGB and (H, W, 4) RGBA;
    integer pixels are scaled by their type's maximum (255 for uint8), floats must already be
    in [0, 1].  Where alpha < 1 the pixel is blended over the colour that contrasts with the
    ink (white under dark ink, black under light ink), so a drawing on a transparent canvas
    keeps its strokes.

    >>> to_gray(np.array([[[255, 0, 0], [255, 255, 255]]], dtype=np.uint8)).round(3)
    array([[0.299, 1.   ]])
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[:, :, 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] not in (2, 3, 4)):
        raise ValueError(
            f"mnist_like: expected an image of shape (H, W), (H, W, 3) or (H, W, 4), got {a.shape}"
        )
    if min(a.shape[:2]) < 1:
        raise ValueError(f"mnist_like: the image is empty, shape {a.shape}")
    x = _unit_range(a)
    if x.ndim == 2:
        return x
    alpha = x[:, :, -1] if x.shape[2] in (2, 4) else None
    color = x[:, :, :-1] if alpha is not None else x
    gray = color[:, :, 0] if color.shape[2] == 1 else color @ _LUMA
    if alpha is None or alpha.min() >= 1.0:
        return gray
    weight = alpha.sum()
    ink_mean = float((gray * alpha).sum() / weight) if weight > 0 else 0.0
    background = 1.0 if ink_mean < 0.5 else 0.0
    return gray * alpha + background * (1.0 - alpha)


def _unit_range(a: np.ndarray) -> np.ndarray:
    if a.dtype == np.bool_:
        return a.astype(np.float64)
    if np.issubdtype(a.dtype, np.integer):
        return a.astype(np.float64) / float(np.iinfo(a.dtype).max)
    if not np.issubdtype(a.dtype, np.floating):
        raise ValueError(f"mnist_like: pixels must be numbers, got dtype {a.dtype}")
    x = a.astype(np.float64)
    if not np.isfinite(x).all():
        raise ValueError("mnist_like: float pixels must be finite; the image has NaN or inf")
    if x.min() < 0.0 or x.max() > 1.0:
        raise ValueError(
            "mnist_like: float pixels must be in [0, 1] "
            f"(got {x.min():.4g} .. {x.max():.4g}); pass uint8 for 0..255"
        )
    return x


def _resize_matrix(n_in: int, n_out: int) -> np.ndarray:
    """(n_out, n_in) weights: output pixel i averages the input span it covers."""
    edges = np.arange(n_out + 1) * (n_in / n_out)
    lo, hi = edges[:-1, None], edges[1:, None]
    j = np.arange(n_in)[None, :]
    overlap = np.clip(np.minimum(hi, j + 1) - np.maximum(lo, j), 0.0, None)
    return overlap / (n_in / n_out)


def area_resize(x: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """Resize a 2-D array to ``shape`` by area averaging.

    Each output pixel is the mean of the input area it covers (fractions of pixels counted
    by their fraction), so shrinking anti-aliases like MNIST's own normalisation and the
    mean brightness is kept; enlarging repeats pixels (box filter).

    >>> area_resize(np.array([[0.0, 1.0, 1.0, 0.0]]), (1, 2))
    array([[0.5, 0.5]])
    >>> area_resize(np.arange(4.0).reshape(2, 2), (4, 4)).mean()
    np.float64(1.5)
    """
    rows = _resize_matrix(x.shape[0], shape[0])
    cols = _resize_matrix(x.shape[1], shape[1])
    return rows @ x @ cols.T


def center_of_mass(x: np.ndarray) -> tuple[float, float]:
    """(row, column) of the intensity-weighted centre of a 2-D array (its middle if all 0).

    >>> center_of_mass(np.array([[0.0, 0.0], [1.0, 3.0]]))
    (1.0, 0.75)
    """
    total = float(x.sum())
    if total <= 0:
        return (x.shape[0] - 1) / 2, (x.shape[1] - 1) / 2
    rows = float(x.sum(axis=1) @ np.arange(x.shape[0])) / total
    cols = float(x.sum(axis=0) @ np.arange(x.shape[1])) / total
    return rows, cols


def _shrink(x: np.ndarray, limit: int) -> np.ndarray:
    """Block means shrinking the longer side to at most ``limit`` (a 12-megapixel photo would
    otherwise cost seconds; a digit needs far fewer pixels than that)."""
    k = -(-max(x.shape) // limit)
    if k <= 1:
        return x
    h, w = x.shape[0] // k * k or x.shape[0], x.shape[1] // k * k or x.shape[1]
    if h < k or w < k:  # a thin strip: shrink it like the rest, by area
        return area_resize(x, (max(1, x.shape[0] // k), max(1, x.shape[1] // k)))
    return x[:h, :w].reshape(h // k, k, w // k, k).mean(axis=(1, 3))


def _border(x: np.ndarray) -> np.ndarray:
    return np.concatenate([x[0], x[-1], x[:, 0], x[:, -1]])


def _smooth3(x: np.ndarray) -> np.ndarray:
    """3x3 box mean (edges repeated): noise shrinks threefold, strokes survive."""
    p = np.pad(x, 1, mode="edge")
    rows = p[:-2] + p[1:-1] + p[2:]
    return (rows[:, :-2] + rows[:, 1:-1] + rows[:, 2:]) / 9.0


def _paper(x: np.ndarray) -> np.ndarray:
    """The background as a plane fitted to the border (uneven light across a photographed
    page), refitted once without the border pixels the ink touches."""
    h, w = x.shape
    rows = np.concatenate([np.zeros(w), np.full(w, h - 1), np.arange(h), np.arange(h)])
    cols = np.concatenate([np.arange(w), np.arange(w), np.zeros(h), np.full(h, w - 1)])
    design = np.stack([np.ones_like(rows), rows / max(h - 1, 1), cols / max(w - 1, 1)], axis=1)
    border = _border(x)
    keep = np.ones(border.shape, dtype=bool)
    for _ in range(2):
        coef = np.linalg.lstsq(design[keep], border[keep], rcond=None)[0]
        residual = border - design @ coef
        spread = 1.4826 * float(np.median(np.abs(residual))) + 1e-3
        keep = np.abs(residual) <= 3.0 * spread
    r, c = np.linspace(0.0, 1.0, h)[:, None], np.linspace(0.0, 1.0, w)[None, :]
    return coef[0] + coef[1] * r + coef[2] * c


def _clean(x: np.ndarray) -> np.ndarray:
    """Light ink on dark: subtract the paper and its noise, stretch the ink to reach 1."""
    x = x - _paper(x)
    border = _border(x)
    noise = 1.4826 * float(np.median(np.abs(border - np.median(border))))  # robust std
    peak = float(np.percentile(_smooth3(x), 99.9))
    threshold = max(4.0 * noise, 0.15 * peak, 1e-3)
    ink = x[x > threshold]
    if ink.size == 0:
        return np.zeros_like(x)
    top = max(float(np.percentile(ink, 90)), threshold + 1e-3)
    return np.clip((x - threshold) / (top - threshold), 0.0, 1.0)


def _ink_box(x: np.ndarray) -> tuple[slice, slice]:
    """Bounding box of the ink: every inked pixel touching a solid (3x3-smoothed) stroke, so
    faint anti-aliased edges count and isolated specks of noise do not."""
    solid = _smooth3(x) > 0.2
    mask = (x > 0) & (_smooth3(solid.astype(np.float64)) > 0) if solid.any() else x > 0
    if not mask.any():
        return slice(0, x.shape[0]), slice(0, x.shape[1])
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1)


def _place(digit: np.ndarray, side: int, center: bool) -> np.ndarray:
    """Put ``digit`` into a ``side`` x ``side`` black field, centred by mass or geometry."""
    h, w = digit.shape
    top, left = (side - h) / 2, (side - w) / 2
    if center:
        cy, cx = center_of_mass(digit)
        top, left = side / 2 - cy, side / 2 - cx  # MNIST's centres of mass are at (14, 14)
    top = int(np.clip(round(top), 0, side - h))  # shifted, but never out of the field
    left = int(np.clip(round(left), 0, side - w))
    out = np.zeros((side, side))
    out[top : top + h, left : left + w] = digit
    return out


def needs_invert(gray: np.ndarray) -> bool:
    """True when a gray image's border is mostly light: dark ink on paper, to be inverted.

    >>> needs_invert(np.full((5, 5), 0.9)), needs_invert(np.zeros((5, 5)))
    (True, False)
    """
    return float(np.median(_border(np.asarray(gray)))) > 0.5


def mnist_like(
    image: np.ndarray,
    *,
    invert: bool | None = None,
    crop: bool = True,
    center: bool = True,
    clean: bool = True,
    side: int = 28,
    box: int = 20,
) -> np.ndarray:
    """Preprocess a photo or drawing of one digit as MNIST's digits were made.

    Args:
        image: (H, W) gray, (H, W, 3) RGB or (H, W, 4) RGBA; uint8 (or any integer type,
            scaled by its maximum) or floats in [0, 1]; any size, any background.
        invert: None (default) inverts when the border is light (dark ink on paper);
            True always inverts, False never does.
        crop: Cut the image down to the ink before fitting it (else the whole image is fitted).
        center: Place the digit by its centre of mass (else by its bounding box's middle).
        clean: Subtract the background and its noise and stretch the ink to 1.0 (else the
            pixels are only inverted and resized).
        side: Side of the result (28 for MNIST).
        box: Side of the square the digit is fitted into, keeping its aspect ratio (20).

    Returns:
        A ``(side, side)`` float64 array in [0, 1]: light ink on black, as
        ``load_mnist(normalize=True)`` gives.  Flatten it for a ``784``-input network.

    Raises:
        ValueError: an image of the wrong shape or type, or ``box`` not in 1..``side``.
    """
    if not 1 <= box <= side:
        raise ValueError(f"mnist_like: box must be in 1..side={side}, got {box}")
    x = _shrink(to_gray(image), 512)
    if invert is None:
        invert = needs_invert(x)
    if invert:
        x = 1.0 - x
    if clean:
        x = _clean(x)
    if crop:
        x = x[_ink_box(x)]
    h, w = x.shape
    scale = box / max(h, w)
    fitted = (max(1, min(box, round(h * scale))), max(1, min(box, round(w * scale))))
    digit = np.clip(area_resize(x, fitted), 0.0, 1.0)
    if clean and digit.max() > 0:  # like MNIST's, the strongest pixel is 1 (thin strokes fade)
        digit = digit / digit.max()
    return _place(digit, side, center)
