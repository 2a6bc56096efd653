"""Evaluation metrics, one file per family.

- regression: :func:`mse`, :func:`mae`, :func:`rmse`, :func:`inter_frame_mse`
- image: :func:`psnr`, :func:`ssim` (data range always stated)
- retrieval: :func:`cosine_similarity_matrix`, :func:`retrieval_ranks`, :func:`recall_at_k`, :func:`median_rank`
- perceptual: :func:`build_lpips`, :func:`lpips_distance` (backbone weights from disk)
- distribution: :func:`frechet_distance`, :func:`gaussian_stats`, :func:`build_fid`, :func:`fid`,
  :func:`load_i3d`, :func:`i3d_features`, :func:`fvd`
- i3d (import the module): Inception-I3D from a config, weights from disk
  (:func:`a2v.metrics.i3d.load_i3d_weights`), usable as the ``detector`` of :func:`fvd`
- sync (import the module): mouth opening vs loudness correlation at the best lag, no weights
  (:func:`a2v.metrics.sync.measure_video_sync`)
- syncnet (import the module): LSE-C / LSE-D through SyncNet weights given on disk
  (:func:`a2v.metrics.syncnet.load_syncnet`, :func:`a2v.metrics.syncnet.lse_scores`)
- weights: where weights live offline (torch hub checkpoints, Hugging Face cache)

Optional packages (torchmetrics, lpips, torch-fidelity) are imported only when used.
"""

from a2v.metrics.distribution import (
    build_fid,
    fid,
    frechet_distance,
    fvd,
    gaussian_stats,
    i3d_features,
    load_i3d,
)
from a2v.metrics.image import psnr, ssim
from a2v.metrics.perceptual import build_lpips, lpips_distance
from a2v.metrics.regression import inter_frame_mse, mae, mse, rmse
from a2v.metrics.retrieval import cosine_similarity_matrix, median_rank, recall_at_k, retrieval_ranks

__all__ = [
    "build_fid",
    "build_lpips",
    "cosine_similarity_matrix",
    "fid",
    "frechet_distance",
    "fvd",
    "gaussian_stats",
    "i3d_features",
    "inter_frame_mse",
    "load_i3d",
    "lpips_distance",
    "mae",
    "median_rank",
    "mse",
    "psnr",
    "recall_at_k",
    "retrieval_ranks",
    "rmse",
    "ssim",
]
