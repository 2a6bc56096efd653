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
    assert m.shape == (5, len(MEASURES)) and len(MEASURES) == 12
    np.testing.assert_allclose(craniofacial_measures(lm * 3 + 7), m, rtol=1e-4)


def test_measures_on_a_known_shape():
    lm = np.zeros((1, 68, 2))
    lm[0, 36:42], lm[0, 42:48] = [0, 0], [10, 0]  # inter-ocular distance 10
    lm[0, 27], lm[0, 33], lm[0, 31], lm[0, 35] = [5, 0], [5, 8], [2, 8], [8, 8]  # nose 8 high, 6 wide
    lm[0, 32], lm[0, 34] = [3.5, 8], [6.5, 8]
    m = dict(zip(MEASURES, craniofacial_measures(lm)[0], strict=True))
    assert m["nose_height"] == pytest.approx(0.8) and m["nose_width"] == pytest.approx(0.6)
    assert m["nasal_index"] == pytest.approx(75.0)
    assert m["nose_area"] == pytest.approx(0.5 * 6 * 8 / 100)  # triangle nasion-alare-alare / iod^2


def test_frontalise_removes_roll_and_keeps_symmetric_faces():
    from a2v.recipes.face.measures import MIRROR, frontalise

    rng = np.random.default_rng(0)
    half = rng.uniform(-40, 40, (68, 2))
    sym = 0.5 * (half + half[MIRROR] * [-1, 1])  # a left/right symmetric face (68,2)
    if sym[36:42, 0].mean() > 0:  # iBUG 36-41 (the subject's right eye) is on the picture's left
        sym = sym * [-1, 1]
    a = np.deg2rad(20)
    rot = np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
    rolled = sym @ rot.T + [100, 50]
    f0, f1 = frontalise(sym[None]), frontalise(rolled[None])
    np.testing.assert_allclose(f1 - f1.mean(1, keepdims=True), f0 - f0.mean(1, keepdims=True), atol=1e-6)
    np.testing.assert_allclose(f0[0] - f0[0].mean(0), sym - sym.mean(0), atol=1e-6)  # symmetric: unchanged
    skew = sym.copy()
    skew[:, 0] *= np.where(skew[:, 0] > 0, 0.8, 1.0)  # one side foreshortened (a turned head)
    asym = lambda p: np.abs(p - p[MIRROR] * [-1, 1]).mean()  # noqa: E731
    assert asym(frontalise(skew[None])[0] - frontalise(skew[None])[0].mean(0)) < 0.2 * asym(skew - skew.mean(0))


def test_pearson_p_values_match_the_t_distribution():
    from scipy.stats import t as student_t

    rng = np.random.default_rng(1)
    a = rng.standard_normal(30)
    b = 0.5 * a + rng.standard_normal(30)
    r, p = pearson(a, b)
    assert r == pytest.approx(np.corrcoef(a, b)[0, 1])
    tt = r * np.sqrt(28 / (1 - r * r))
    assert p == pytest.approx(2 * student_t.sf(abs(tt), 28), rel=1e-6)
    assert np.isnan(pearson(np.ones(5), a[:5])[0]) and np.isnan(pearson(a[:2], b[:2])[1])


def test_correlations_and_random_baseline():
    lm = _face_landmarks(40)
    out = measure_correlations(lm, lm)
    assert all(out[f"corr/{k}"] == pytest.approx(1.0) for k in MEASURES)
    assert all(out[f"p/{k}"] < 1e-10 for k in MEASURES)
    assert np.mean([out[f"corr_random/{k}"] for k in MEASURES]) < 0.5
    assert np.mean([out[f"p_random/{k}"] for k in MEASURES]) > 0.05
    perm = random_pairing(7, seed=3)
    assert sorted(perm.tolist()) == list(range(7)) and np.all(perm != np.arange(7))
    e = np.random.default_rng(0).standard_normal((10, 16))
    s = identity_scores(e, e)
    assert s["identity_cosine"] == pytest.approx(1.0) and s["identity_cosine_random_pair"] < 0.9


def test_attribute_classifier_from_a_file(tmp_path):
    from a2v.recipes.face.evaluate import attribute_scores, load_attribute_classifier

    with pytest.raises(InputError, match="attribute classifier not found"):
        load_attribute_classifier(tmp_path / "none.py")
    bad = tmp_path / "bad.py"
    bad.write_text("def predict(x):\n    return {}\n")
    with pytest.raises(InputError, match="no function classify"):
        load_attribute_classifier(bad)
    good = tmp_path / "clf.py"
    good.write_text("def classify(picture):\n"
                    "    m = float(picture.mean())\n"
                    "    return {'gender': 'f' if m > 100 else 'm', 'age': m / 4.0}\n")
    fn = load_attribute_classifier(good)
    pics = np.stack([np.full((8, 8, 3), v, np.uint8) for v in (20, 60, 140, 200, 240)])  # 2 'm', 3 'f'
    out = attribute_scores(fn, pics, pics)
    assert out["agree/gender"] == 1.0 and out["agree_random/gender"] < 1.0
    assert out["corr/age"] == pytest.approx(1.0) and out["mad/age"] == 0.0 and out["mad_random/age"] > 0


class _FakePipe:
    """generate() gives a grey picture whose brightness is the guidance weight."""

    def __init__(self) -> None:
        from a2v.recipes.face.config import FaceConfig

        self.cfg, self.calls = FaceConfig(), []

    def generate(self, audio, num, guidance_w, seed, progress):  # noqa: ANN001, ANN201
        self.calls.append(guidance_w)
        return np.full((num, 32, 32, 3), 40 * guidance_w + seed, np.uint8)


def test_guidance_sweep_gives_one_row_per_weight(monkeypatch):
    from a2v.recipes.face import evaluate as ev

    rng = np.random.default_rng(0)
    n = 6
    true = rng.integers(0, 255, (n, 48, 48, 3), dtype=np.uint8)
    monkeypatch.setattr(ev, "_true_faces", lambda data, max_items: ([np.zeros(16000, np.float32)] * n, true))
    lms = _face_landmarks(n)
    monkeypatch.setattr(ev, "landmarks_of", lambda images: (lms[: len(images)], np.ones(len(images), bool)))
    embed_calls = []

    def embedder(images):  # noqa: ANN001, ANN202
        embed_calls.append(len(images))
        return images.reshape(len(images), -1)[:, :8].astype(np.float32) + 1.0

    pipe = _FakePipe()
    rows = ev.evaluate_guidance_sweep(pipe, "unused", [0, 1, 2, 3, 4], progress=False, embedder=embedder)
    assert [r["guidance"] for r in rows] == [0, 1, 2, 3, 4]
    assert pipe.calls == [w for w in (0, 1, 2, 3, 4) for _ in range(n)]  # every clip at every weight
    assert embed_calls == [n] * 6  # the true faces once, the generated ones per weight
    assert all(r["n"] == n and "p/nasal_index" in r and "corr_random/jaw_width" in r for r in rows)
    assert ev.format_rows(rows).count("\n") == 5


def test_evaluate_cli_bad_input_is_one_line(tmp_path, capsys):
    from a2v.cli import main

    (tmp_path / "data").mkdir()
    assert main(["face", "evaluate", "-m", str(tmp_path), "-d", str(tmp_path / "data"), "--guidance", "0,x"]) == 2
    assert main(["face", "evaluate", "-m", str(tmp_path), "-d", str(tmp_path / "data"),
                 "--attributes", str(tmp_path / "clf.py")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 2 and "--guidance" in err[0] and "attribute classifier not found" in err[1]
