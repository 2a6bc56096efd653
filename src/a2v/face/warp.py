"""Piecewise-affine image warp from template landmarks to driven landmarks.

The image is cut into triangles (Delaunay over the landmarks plus fixed points on the image
border) and each destination triangle takes its pixels from the matching source triangle by the
affine map between them (a mesh warp as in Beier & Neely 1992 / active appearance models). The
border points never move, so everything outside the moving parts stays in place and a warped
crop pastes back without a seam.

Coordinates are continuous pixels (pixel ``i`` spans ``[i, i+1)``, its centre is ``i + 0.5``), as
in :mod:`a2v.face.crop`. Hand-written on top of OpenCV because skimage's
``PiecewiseAffineTransform`` + ``warp`` looks up the simplex of every pixel (~100x slower per
frame); here each triangle is rasterised once with ``cv2.fillConvexPoly`` into a triangle-index map,
the per-pixel inverse affine gives a dense map and ``cv2.remap`` samples the image.
"""

from __future__ import annotations

import cv2
import numpy as np
from scipy.spatial import Delaunay

from a2v.errors import InputError

_SHIFT = 4  # fillConvexPoly sub-pixel bits (1/16 px)


def border_points(height: int, width: int, per_side: int = 4) -> np.ndarray:
    """Fixed anchor points on the image border: float64 (4*per_side, 2) x,y in continuous px.

    ``per_side`` points per side, corners included once (corners sit exactly on the border).
    """
    if per_side < 1:
        raise ValueError(f"per_side must be >= 1, got {per_side}")
    t = np.arange(per_side) / per_side  # (P,) in [0, 1)
    w, h = float(width), float(height)
    top = np.stack([t * w, np.zeros_like(t)], 1)  # (P,2) left -> right
    right = np.stack([np.full_like(t, w), t * h], 1)  # (P,2) top -> bottom
    bottom = np.stack([w - t * w, np.full_like(t, h)], 1)  # (P,2) right -> left
    left = np.stack([np.zeros_like(t), h - t * h], 1)  # (P,2) bottom -> top
    return np.concatenate([top, right, bottom, left])  # (4P,2)


def triangulate(points: np.ndarray) -> np.ndarray:
    """Delaunay triangles of points (N,2) -> int64 (K,3) vertex indices (scipy / Qhull)."""
    pts = np.asarray(points, np.float64)
    if pts.ndim != 2 or pts.shape[1] != 2 or len(pts) < 3:
        raise InputError(f"triangulation needs >= 3 points (N,2), got shape {pts.shape}")
    return Delaunay(pts, qhull_options="Qbb Qc Qz Q12").simplices.astype(np.int64)  # (K,3)


def signed_areas(points: np.ndarray, triangles: np.ndarray) -> np.ndarray:
    """Signed area of each triangle (px^2): points (N,2), triangles (K,3) -> float64 (K,).

    A triangle whose sign differs between source and destination is folded over (a flip).
    """
    a, b, c = (np.asarray(points, np.float64)[triangles[:, i]] for i in range(3))  # 3 x (K,2)
    return 0.5 * ((b[:, 0] - a[:, 0]) * (c[:, 1] - a[:, 1]) - (b[:, 1] - a[:, 1]) * (c[:, 0] - a[:, 0]))


def _affines(src: np.ndarray, dst: np.ndarray, triangles: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-triangle affine dst -> src, float64 (K,2,3), and a bool (K,) mask of usable triangles.

    Solves ``[x y 1] @ A.T = [u v]`` for the three vertices; triangles degenerate in the
    destination (zero area: nothing to rasterise) are marked unusable.
    """
    d = dst[triangles]  # (K,3,2)
    s = src[triangles]  # (K,3,2)
    m = np.concatenate([d, np.ones(d.shape[:2] + (1,))], axis=2)  # (K,3,3) rows [x y 1]
    ok = np.abs(np.linalg.det(m)) > 1e-9
    a = np.zeros((len(triangles), 2, 3))  # (K,2,3)
    if ok.any():
        a[ok] = np.linalg.solve(m[ok], s[ok]).transpose(0, 2, 1)  # (K,3,2)->(K,2,3)
    return a, ok


class PiecewiseAffineWarp:
    """Warp images of one size by moving control points; fixed points pin the border.

    Args:
        src_points: float (N,2) x,y control points in the source image (continuous px).
        image_hw: (H, W) of the images to warp.
        triangles: int (K,3) indices into ``[src_points; border]``; default: Delaunay over
            ``mesh_points`` (default ``src_points``) plus the border points.
        mesh_points: optional (N,2) positions to triangulate on instead of ``src_points`` (e.g.
            a shape with the mouth open, so lip triangles exist even when the source mouth is shut).
        border_per_side: fixed points per image side.

    ``warp(image, dst_points)`` returns the image whose control points moved to ``dst_points``.
    Triangles must keep their orientation (no folds) for a one-to-one warp; ``n_flipped`` counts
    folded ones for a given destination.
    """

    def __init__(
        self,
        src_points: np.ndarray,
        image_hw: tuple[int, int],
        triangles: np.ndarray | None = None,
        mesh_points: np.ndarray | None = None,
        border_per_side: int = 4,
    ) -> None:
        self.src = np.asarray(src_points, np.float64)
        if self.src.ndim != 2 or self.src.shape[1] != 2:
            raise InputError(f"control points must be (N,2), got {self.src.shape}")
        self.image_hw = (int(image_hw[0]), int(image_hw[1]))
        self.border = border_points(*self.image_hw, per_side=border_per_side)  # (B,2)
        mesh = self.src if mesh_points is None else np.asarray(mesh_points, np.float64)
        self.triangles = (
            triangulate(np.concatenate([mesh, self.border]))  # (N+B,2)->(K,3)
            if triangles is None
            else np.asarray(triangles, np.int64)
        )
        self._all_src = np.concatenate([self.src, self.border])  # (N+B,2)
        h, w = self.image_hw
        ys, xs = np.mgrid[0:h, 0:w]  # (H,W) each
        self._centres = np.stack(
            [xs + 0.5, ys + 0.5, np.ones((h, w))], axis=-1
        )  # (H,W,3) continuous, homogeneous

    def _full(self, dst_points: np.ndarray) -> np.ndarray:
        dst = np.asarray(dst_points, np.float64)
        if dst.shape != self.src.shape:
            raise InputError(f"destination points {dst.shape} must match the source points {self.src.shape}")
        return np.concatenate([dst, self.border])  # (N,2)->(N+B,2)

    def n_flipped(self, dst_points: np.ndarray) -> int:
        """Number of triangles whose orientation flips between the source and ``dst_points``."""
        s = signed_areas(self._all_src, self.triangles)
        d = signed_areas(self._full(dst_points), self.triangles)
        return int(np.sum((np.sign(s) * np.sign(d)) < 0))

    def maps(self, dst_points: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Dense inverse map for ``cv2.remap``: (map_x, map_y) float32 (H,W) source pixel indices.

        Only the bounding box of triangles that move is computed; elsewhere the map is identity.
        """
        dst = self._full(dst_points)  # (N+B,2)
        h, w = self.image_hw
        ident = self._centres[..., :2] - 0.5  # (H,W,2) identity, pixel-index coords
        moved = np.any(np.abs(dst - self._all_src) > 1e-6, axis=1)  # (N+B,)
        tri_moves = moved[self.triangles].any(axis=1)  # (K,)
        map_xy = ident.copy()  # (H,W,2)
        if not tri_moves.any():
            return map_xy[..., 0].astype(np.float32), map_xy[..., 1].astype(np.float32)
        aff, ok = _affines(self._all_src, dst, self.triangles)  # (K,2,3), (K,)
        use = np.flatnonzero(tri_moves & ok)
        corners = np.concatenate(
            [dst[self.triangles[use]].reshape(-1, 2), self._all_src[self.triangles[use]].reshape(-1, 2)]
        )
        x0, y0 = np.clip(np.floor(corners.min(0)).astype(int) - 1, 0, None)
        x1, y1 = np.minimum(np.ceil(corners.max(0)).astype(int) + 1, [w, h])
        ids = np.full((y1 - y0, x1 - x0), -1, np.int32)  # (h',w') triangle index per pixel
        for k in use:  # rasterise destination triangles (pixel centres, sub-pixel vertices)
            v = np.round((dst[self.triangles[k]] - 0.5 - [x0, y0]) * (1 << _SHIFT)).astype(np.int32)  # (3,2)
            cv2.fillConvexPoly(ids, v, int(k), lineType=cv2.LINE_8, shift=_SHIFT)
        inside = ids >= 0
        c = self._centres[y0:y1, x0:x1][inside]  # (P,3) homogeneous destination centres
        src_xy = np.einsum("pij,pj->pi", aff[ids[inside]], c)  # (P,2,3)x(P,3)->(P,2) continuous
        sub = map_xy[y0:y1, x0:x1]  # (h',w',2) view
        sub[inside] = src_xy - 0.5  # continuous -> pixel index
        return map_xy[..., 0].astype(np.float32), map_xy[..., 1].astype(np.float32)

    def warp(self, image: np.ndarray, dst_points: np.ndarray) -> np.ndarray:
        """image (H,W,C) or (H,W), any dtype cv2 handles -> warped image, same shape and dtype.

        Bilinear sampling; pixels mapped outside the image replicate the edge.
        """
        if image.shape[:2] != self.image_hw:
            raise InputError(f"warp built for images {self.image_hw}, got {image.shape[:2]}")
        mx, my = self.maps(dst_points)  # (H,W) each
        out = cv2.remap(image, mx, my, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        return out.reshape(image.shape)
