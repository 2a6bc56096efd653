"""Face-identity embeddings of face pictures: ArcFace 512-d (ONNX) or dlib's offline 128-d ResNet.

Both take an RGB uint8 picture (H,W,3) holding one face (a talking-face crop or a face photo) and
return an L2-normalised float32 (D,) vector. The face is found with dlib's HOG detector; when it
finds none, the centre of the picture (the crop without its margin) is used and the item is
counted in ``n_undetected`` (never dropped silently).

- ``arcface`` (Deng et al. 2019): 5 points from the 68 dlib landmarks (eye centres, nose tip, mouth
  corners) are aligned to the standard 112x112 ArcFace template (similarity transform), pixels
  scaled to [-1, 1], NCHW, run by onnxruntime. The model file is given by ``onnx_path``.
- ``dlib``: ``dlib_face_recognition_resnet_model_v1.dat`` from face-recognition-models on the
  68-point shape (a 150x150 aligned chip inside dlib).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from a2v.errors import InputError, MissingWeightsError, missing_package
from a2v.recipes.face.config import EmbeddingConfig

# ArcFace 112x112 template: left eye, right eye, nose tip, left/right mouth corner (x, y px)
ARCFACE_TEMPLATE = np.array(
    [[38.2946, 51.6963], [73.5318, 51.5014], [56.0252, 71.7366], [41.5493, 92.3655], [70.7299, 92.2041]],
    np.float32,
)


DETECT_MIN_SIDE_PX = 160  # smaller pictures are enlarged (bicubic) before face detection


def five_points(lm68: np.ndarray) -> np.ndarray:
    """68 iBUG landmarks (68,2) -> ArcFace's 5 points (5,2): eye centres, nose tip, mouth corners."""
    return np.stack([lm68[36:42].mean(0), lm68[42:48].mean(0), lm68[30], lm68[48], lm68[54]]).astype(np.float32)


def align_arcface(image: np.ndarray, pts5: np.ndarray, size_px: int = 112) -> np.ndarray:
    """Similarity-align a face to the ArcFace template: uint8 (H,W,3) -> uint8 (112,112,3)."""
    import cv2

    m, _ = cv2.estimateAffinePartial2D(pts5, ARCFACE_TEMPLATE * (size_px / 112.0), method=cv2.LMEDS)
    if m is None:
        raise InputError("cannot align the face to the ArcFace template (degenerate landmarks)")
    return cv2.warpAffine(image, m, (size_px, size_px), borderValue=0.0)  # (H,W,3)->(112,112,3)


class FaceEmbedder:
    """Pictures -> identity embeddings float32 (N, dim), L2-normalised; see the module docstring."""

    def __init__(self, cfg: EmbeddingConfig) -> None:
        from a2v.face.detect import DlibDetector, face_recognition_model_path, import_dlib

        self.cfg, self.dim = cfg, cfg.dim
        self.n_undetected = 0
        if cfg.kind not in ("dlib", "arcface"):
            raise InputError(f"unknown embedding kind '{cfg.kind}' (choose arcface or dlib)")
        if cfg.kind == "arcface":  # before the dlib models load: a missing file fails fast
            self._session = _onnx_session(cfg.onnx_path)
            out_dim = self._session.get_outputs()[0].shape[-1]
            if isinstance(out_dim, int) and out_dim != cfg.dim:
                raise InputError(f"ArcFace model {cfg.onnx_path} gives {out_dim}-d embeddings but "
                                 f"embedding.dim={cfg.dim}: set --set embedding.dim={out_dim}")
        self._dlib = import_dlib()
        self._detector = DlibDetector("hog", upsample=cfg.upsample)
        self._shape = self._dlib.shape_predictor(str(face_recognition_model_path("shape_predictor_68_face_landmarks.dat")))
        if cfg.kind == "dlib":
            self._net = self._dlib.face_recognition_model_v1(
                str(face_recognition_model_path("dlib_face_recognition_resnet_model_v1.dat")))

    def _box(self, image: np.ndarray) -> np.ndarray:
        import cv2

        # dlib's HOG detector misses faces under ~40 px (tiny-config outputs are 16-32 px): pictures
        # smaller than DETECT_MIN_SIDE_PX are enlarged for detection and the box scaled back
        k = max(1.0, DETECT_MIN_SIDE_PX / min(image.shape[:2]))
        big = cv2.resize(image, None, fx=k, fy=k, interpolation=cv2.INTER_CUBIC) if k > 1 else image
        dets = self._detector.detect(big)[0]
        if len(dets.boxes):
            i = int(np.argmax((dets.boxes[:, 2] - dets.boxes[:, 0]) * (dets.boxes[:, 3] - dets.boxes[:, 1])))
            return dets.boxes[i] / k
        self.n_undetected += 1
        h, w = image.shape[:2]
        return np.array([w * 0.2, h * 0.2, w * 0.8, h * 0.8], np.float32)  # the crop without its margin

    def embed_one(self, image: np.ndarray) -> np.ndarray:
        """RGB uint8 (H,W,3) -> float32 (dim,), unit norm."""
        if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
            raise InputError(f"face embedding expects an RGB uint8 picture (H,W,3), got {image.dtype} {image.shape}")
        img = np.ascontiguousarray(image)
        x0, y0, x1, y1 = (int(round(float(v))) for v in self._box(img))
        shape = self._shape(img, self._dlib.rectangle(x0, y0, x1 - 1, y1 - 1))
        if self.cfg.kind == "dlib":
            v = np.asarray(self._net.compute_face_descriptor(img, shape), np.float32)  # (128,)
        else:
            lm = np.array([[p.x, p.y] for p in shape.parts()], np.float32) + 0.5  # (68,2)
            chip = align_arcface(img, five_points(lm)).astype(np.float32)  # (112,112,3)
            x = ((chip - 127.5) / 127.5).transpose(2, 0, 1)[None]  # (112,112,3)->(1,3,112,112)
            name = self._session.get_inputs()[0].name
            v = np.asarray(self._session.run(None, {name: x})[0], np.float32).reshape(-1)  # (1,D)->(D,)
        return v / max(float(np.linalg.norm(v)), 1e-12)

    def __call__(self, images: list[np.ndarray] | np.ndarray) -> np.ndarray:
        """N pictures -> float32 (N, dim)."""
        return np.stack([self.embed_one(im) for im in images]).astype(np.float32)  # (N,dim)


def _onnx_session(path: str):  # noqa: ANN202 - onnxruntime.InferenceSession
    if not path:
        raise MissingWeightsError("ArcFace ONNX model not given: set embedding.onnx_path=/path/to/arcface.onnx "
                                  "or use the offline embedding.kind=dlib embedding.dim=128")
    p = Path(path)
    if not p.is_file():
        raise MissingWeightsError(f"ArcFace ONNX model not found: {p}")
    try:
        import onnxruntime as ort
    except ImportError as e:
        raise missing_package("onnxruntime", "face", "ArcFace embeddings") from e
    avail = ort.get_available_providers()
    providers = [p for p in ("CUDAExecutionProvider", "CPUExecutionProvider") if p in avail]
    return ort.InferenceSession(str(p), providers=providers)
