"""Face recipe: speech input, picture folders, identity embeddings, evaluation measures."""

from __future__ import annotations

import numpy as np
import pytest

from a2v.errors import InputError, MissingWeightsError
from a2v.recipes.face.config import AudioConfig, EmbeddingConfig
from a2v.recipes.face.data import read_image_folder, speech_input, to_model_image, to_uint8
from a2v.recipes.face.evaluate import (
    MEASURES,
    craniofacial_measures,
    identity_scores,
    measure_correlations,
    pearson,
    random_pairing,
)


def test_speech_input_is_6s_compressed_stft_and_repeats_short_audio():
    wav = np.sin(np.arange(16000) / 5.0).astype(np.float32)  # 1 s
    spec = speech_input(wav, AudioConfig())
    assert spec.shape == (2, 598, 257) and spec.dtype == np.float32
    # the 1 s clip repeats: frames 100 apart (1 s at 100 Hz, whole hops) are equal
    np.testing.assert_allclose(spec[:, 0], spec[:, 100], atol=1e-4)
    with pytest.raises(InputError, match="empty audio"):
        speech_input(np.zeros(0, np.float32), AudioConfig())


def test_image_folder_reads_resizes_and_counts_unreadable(tmp_path):
    from a2v.video import write_png

    rng = np.random.default_rng(0)
    for i in range(3):
        write_png(tmp_path / f"f{i}.png", rng.integers(0, 255, (40, 40, 3), dtype=np.uint8))
    (tmp_path / "broken.jpg").write_bytes(b"not a picture")
    items = read_image_folder(tmp_path, size_px=16)
    assert items.images.shape == (3, 16, 16, 3)
    assert items.skipped == {"unreadable": 1}
    x = to_model_image(items.images, 8)
    assert x.shape == (3, 3, 8, 8) and x.min() >= -1 and x.max() <= 1
    assert to_uint8(to_model_image(items.images, 16)).tolist() == items.images.tolist()
    with pytest.raises(InputError, match="no face pictures"):
        read_image_folder(_empty(tmp_path))


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


def test_dlib_embedding_of_a_real_face():
    import skimage.data

    from a2v.recipes.face.embedding import FaceEmbedder

    img = skimage.data.astronaut()[:260, 100:360]  # her face, uint8 RGB
    emb = FaceEmbedder(EmbeddingConfig(kind="dlib", dim=128))
    v = emb([img, img[:, ::-1].copy()])
    assert v.shape == (2, 128) and v.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(v, axis=1), 1.0, atol=1e-5)
    assert float(v[0] @ v[1]) > 0.9  # the mirrored face is the same person
    assert emb.n_undetected == 0
    with pytest.raises(InputError, match="RGB uint8"):
        emb.embed_one(np.zeros((10, 10), np.float32))


def test_arcface_needs_a_model_file(tmp_path):
    from a2v.recipes.face.embedding import FaceEmbedder

    with pytest.raises(MissingWeightsError, match="onnx_path"):
        FaceEmbedder(EmbeddingConfig(kind="arcface", dim=512))
    with pytest.raises(MissingWeightsError, match="arcface.onnx"):
        FaceEmbedder(EmbeddingConfig(kind="arcface", dim=512, onnx_path=str(tmp_path / "arcface.onnx")))


def test_arcface_alignment_maps_points_to_the_template():
    from a2v.recipes.face.embedding import ARCFACE_TEMPLATE, align_arcface, five_points

    lm = np.zeros((68, 2), np.float32)
    src = ARCFACE_TEMPLATE * 2 + 10  # a face twice as large, shifted
    lm[36:42], lm[42:48], lm[30], lm[48], lm[54] = src[0], src[1], src[2], src[3], src[4]
    np.testing.assert_allclose(five_points(lm), src, atol=1e-5)
    img = np.zeros((300, 300, 3), np.uint8)
    img[int(src[2, 1]) - 2:int(src[2, 1]) + 3, int(src[2, 0]) - 2:int(src[2, 0]) + 3] = 255  # a dot on the nose
    chip = align_arcface(img, five_points(lm))
    assert chip.shape == (112, 112, 3)
    y, x = np.unravel_index(chip[..., 0].argmax(), chip.shape[:2])
    assert abs(x - ARCFACE_TEMPLATE[2, 0]) <= 2 and abs(y - ARCFACE_TEMPLATE[2, 1]) <= 2


def _face_landmarks(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.uniform(0, 100, (68, 2))
    return (base[None] + rng.normal(0, 3, (n, 68, 2))).astype(np.float32)  # (n,68,2)


def test_craniofacial_measures_are_scale_free():
    lm = _face_landmarks(5)
    m = craniofacial_measures(lm)
    assert m.shape == (5, len(MEASURES))
    np.testing.assert_allclose(craniofacial_measures(lm * 3 + 7), m, rtol=1e-4)


def test_correlations_and_random_baseline():
    lm = _face_landmarks(40)
    out = measure_correlations(lm, lm)
    assert all(out[f"corr/{k}"] == pytest.approx(1.0) for k in MEASURES)
    assert np.mean([out[f"corr_random/{k}"] for k in MEASURES]) < 0.5
    assert pearson(np.array([1.0, 2, 3]), np.array([2.0, 4, 6])) == pytest.approx(1.0)
    perm = random_pairing(7, seed=3)
    assert sorted(perm.tolist()) == list(range(7)) and np.all(perm != np.arange(7))
    e = np.random.default_rng(0).standard_normal((10, 16))
    s = identity_scores(e, e)
    assert s["identity_cosine"] == pytest.approx(1.0) and s["identity_cosine_random_pair"] < 0.9
