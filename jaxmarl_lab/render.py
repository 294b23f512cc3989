"""Jittable drawing primitives for ``env.render`` and frames -> GIF.

Everything draws into a uint8 [H, W, 3] canvas with ``jnp.where`` over coordinate masks, so a
render function can be jitted and vmapped like a step function. Text uses a 3x5 pixel font
(upper-case letters, digits and a little punctuation) scaled by an integer factor; numbers may be
traced values (``draw_number``), strings must be static.
"""

from __future__ import annotations

import os

import imageio.v2 as imageio
import jax.numpy as jnp
import numpy as np

_GLYPHS = {
    "0": "###|#.#|#.#|#.#|###", "1": ".#.|##.|.#.|.#.|###", "2": "###|..#|###|#..|###",
    "3": "###|..#|.##|..#|###", "4": "#.#|#.#|###|..#|..#", "5": "###|#..|###|..#|###",
    "6": "###|#..|###|#.#|###", "7": "###|..#|.#.|.#.|.#.", "8": "###|#.#|###|#.#|###",
    "9": "###|#.#|###|..#|###", "A": ".#.|#.#|###|#.#|#.#", "B": "##.|#.#|##.|#.#|##.",
    "C": ".##|#..|#..|#..|.##", "D": "##.|#.#|#.#|#.#|##.", "E": "###|#..|##.|#..|###",
    "F": "###|#..|##.|#..|#..", "G": ".##|#..|#.#|#.#|.##", "H": "#.#|#.#|###|#.#|#.#",
    "I": "###|.#.|.#.|.#.|###", "J": "..#|..#|..#|#.#|.#.", "K": "#.#|#.#|##.|#.#|#.#",
    "L": "#..|#..|#..|#..|###", "M": "#.#|###|###|#.#|#.#", "N": "##.|#.#|#.#|#.#|#.#",
    "O": ".#.|#.#|#.#|#.#|.#.", "P": "##.|#.#|##.|#..|#..", "Q": ".#.|#.#|#.#|##.|.##",
    "R": "##.|#.#|##.|#.#|#.#", "S": ".##|#..|.#.|..#|##.", "T": "###|.#.|.#.|.#.|.#.",
    "U": "#.#|#.#|#.#|#.#|###", "V": "#.#|#.#|#.#|#.#|.#.", "W": "#.#|#.#|###|###|#.#",
    "X": "#.#|#.#|.#.|#.#|#.#", "Y": "#.#|#.#|.#.|.#.|.#.", "Z": "###|..#|.#.|#..|###",
    " ": "...|...|...|...|...", ".": "...|...|...|...|.#.", ":": "...|.#.|...|.#.|...",
    "-": "...|...|###|...|...", "/": "..#|..#|.#.|#..|#..", "=": "...|###|...|###|...",
    "(": ".#.|#..|#..|#..|.#.", ")": ".#.|..#|..#|..#|.#.", "%": "#.#|..#|.#.|#..|#.#",
    "+": "...|.#.|###|.#.|...", ">": "#..|.#.|..#|.#.|#..", "<": "..#|.#.|#..|.#.|..#",
}
GLYPH_H, GLYPH_W = 5, 3


def _glyph(ch: str) -> np.ndarray:
    rows = _GLYPHS.get(ch.upper(), _GLYPHS[" "]).split("|")
    return np.array([[c == "#" for c in r] for r in rows], dtype=bool)


_DIGITS = jnp.asarray(np.stack([_glyph(str(d)) for d in range(10)]))  # [10, 5, 3]

Color = tuple[int, int, int]


def canvas(height: int, width: int, color: Color = (255, 255, 255)) -> jnp.ndarray:
    return jnp.broadcast_to(jnp.asarray(color, jnp.uint8), (height, width, 3))


def fill_rect(img, y0, x0, h, w, color: Color, where=True):
    """Fill [y0, y0+h) x [x0, x0+w); positions and sizes may be traced; ``where`` gates the draw."""
    ys = jnp.arange(img.shape[0])[:, None]
    xs = jnp.arange(img.shape[1])[None, :]
    inside = (ys >= y0) & (ys < y0 + h) & (xs >= x0) & (xs < x0 + w) & where
    return jnp.where(inside[..., None], jnp.asarray(color, jnp.uint8), img)


def _blit(img, bitmap, y: int, x: int, scale: int, color: Color, where=True):
    """Paint the True pixels of a (possibly traced) bitmap at a static position."""
    big = jnp.repeat(jnp.repeat(bitmap, scale, axis=0), scale, axis=1)
    h = min(big.shape[0], img.shape[0] - y)
    w = min(big.shape[1], img.shape[1] - x)
    if h <= 0 or w <= 0:
        return img
    region = img[y:y + h, x:x + w]
    painted = jnp.where((big[:h, :w] & where)[..., None], jnp.asarray(color, jnp.uint8), region)
    return img.at[y:y + h, x:x + w].set(painted)


def text_width(text: str, scale: int = 1) -> int:
    return len(text) * (GLYPH_W + 1) * scale


def draw_text(img, text: str, y: int, x: int, scale: int = 1, color: Color = (0, 0, 0), where=True):
    """Static text at a static position (one glyph column of spacing)."""
    if not text:
        return img
    gap = np.zeros((GLYPH_H, 1), bool)
    bitmap = np.concatenate([np.concatenate([_glyph(c), gap], axis=1) for c in text], axis=1)
    return _blit(img, jnp.asarray(bitmap), y, x, scale, color, where)


def draw_number(img, value, y: int, x: int, digits: int, scale: int = 1, color: Color = (0, 0, 0),
                decimals: int = 0, where=True):
    """A traced non-negative number with ``digits`` integer digits (leading zeros blanked) and ``decimals``."""
    total = digits + decimals
    scaled = jnp.round(jnp.asarray(value, jnp.float32) * 10**decimals).astype(jnp.int32)
    scaled = jnp.clip(scaled, 0, 10**total - 1)
    powers = jnp.asarray([10 ** (total - 1 - i) for i in range(total)], jnp.int32)
    ds = (scaled // powers) % 10
    # blank leading zeros of the integer part, keep at least one integer digit
    nonzero_seen = jnp.cumsum(ds > 0) > 0
    keep = nonzero_seen | (jnp.arange(total) >= digits - 1)
    glyphs = _DIGITS[ds] & keep[:, None, None]  # [total, 5, 3]
    gap = jnp.zeros((total, GLYPH_H, 1), bool)
    cells = jnp.concatenate([glyphs, gap], axis=2)  # [total, 5, 4]
    parts = [cells[i] for i in range(total)]
    if decimals:
        parts.insert(digits, jnp.concatenate([jnp.asarray(_glyph(".")), jnp.zeros((GLYPH_H, 1), bool)], axis=1))
    return _blit(img, jnp.concatenate(parts, axis=1), y, x, scale, color, where)


def save_gif(frames, path: str | os.PathLike, fps: float = 2.0) -> str:
    """Write uint8 frames [T, H, W, 3] (numpy or jax) to an animated GIF; returns the path."""
    frames = np.asarray(frames, dtype=np.uint8)
    if frames.ndim != 4 or frames.shape[-1] != 3:
        raise ValueError(f"frames must have shape [T, H, W, 3], got {frames.shape}")
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    imageio.mimsave(path, list(frames), duration=1.0 / fps, loop=0)
    return str(path)
