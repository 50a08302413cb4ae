"""The synthetic catalogue has the planted structure it promises."""
import re

import numpy as np
import pandas as pd
import pytest

from workbench.data.splits import random_split
from workbench.data.strata import degree_strata
from workbench.data.synthetic import (BRANDS, COLOURS, IMAGE_ONLY, PATTERNS, TEXT_ONLY, catalogue_config, item_text,
                                      load_synthetic, make_catalogue)


@pytest.fixture(scope="module")
def raw():
    return make_catalogue(catalogue_config("smoke"))


def test_deterministic_by_seed(raw):
    again = make_catalogue(catalogue_config("smoke"))
    pd.testing.assert_frame_equal(raw.interactions, again.interactions)
    pd.testing.assert_frame_equal(raw.items, again.items)
    np.testing.assert_array_equal(raw.images, again.images)
    other = make_catalogue(catalogue_config("smoke", seed=1))
    assert not raw.interactions.equals(other.interactions)


def test_text_hides_image_only_attributes(raw):
    texts = " ".join(item_text(raw.items)).lower()
    for word in list(COLOURS) + [p for p in PATTERNS if p != "solid"]:
        assert not re.search(rf"\b{word}\b", texts), word
    mentions_brand = [b in t for b, t in zip(raw.items["brand"], item_text(raw.items))]
    assert 0.8 < np.mean(mentions_brand) < 1.0  # mostly present, sometimes omitted
    assert set(raw.items["brand"]) <= set(BRANDS)


def test_images_show_colour(raw):
    imgs = raw.images.astype(float)
    red = imgs[(raw.items["colour"] == "red").to_numpy()]
    blue = imgs[(raw.items["colour"] == "blue").to_numpy()]
    assert (red[..., 0] - red[..., 2]).mean() > (blue[..., 0] - blue[..., 2]).mean() + 20
    assert raw.images.shape[1:] == (64, 64, 3) and raw.images.dtype == np.uint8


def test_every_stratum_has_test_items(raw):
    split = raw.with_split(random_split(raw.interactions, seed=0, holdout_items=raw.items["new_arrival"].to_numpy()))
    test_items = np.unique(split.part("test")["item_id"])
    for name, mask in degree_strata(split.item_degree()).items():
        assert np.isin(np.flatnonzero(mask), test_items).sum() > 0, name
    split.check_trainable()


def test_long_tail_and_sequences(raw):
    deg = np.sort(raw.item_degree(None))[::-1]
    assert deg[: len(deg) // 10].sum() > 0.3 * deg.sum()  # top 10% of items take > 30% of interactions
    inter = raw.interactions.sort_values(["user_id", "timestamp"])
    cat = raw.items["category"].to_numpy()[inter["item_id"].to_numpy()]
    same_user = inter["user_id"].to_numpy()[1:] == inter["user_id"].to_numpy()[:-1]
    same_cat = (cat[1:] == cat[:-1])[same_user].mean()
    shuffled = (cat[1:] == np.random.default_rng(0).permutation(cat)[:-1])[same_user].mean()
    assert same_cat > shuffled + 0.15  # the next item follows the previous one's category


def test_ratings_follow_taste(raw):
    inter = raw.interactions
    fav = raw.users["favourite_category"].to_numpy()[inter["user_id"]]
    match = raw.items["category"].to_numpy()[inter["item_id"]] == fav
    assert inter["rating"][match].mean() > inter["rating"][~match].mean() + 0.3
    assert set(inter["rating"].unique()) == {1, 2, 3, 4, 5}


@pytest.mark.slow
def test_modalities_are_complementary():
    """A linear probe reads image-only attributes from image features and text-only ones from text features,
    not the other way round (thresholds: measured 0.71-0.93 vs 0.13-0.31 on the smoke catalogue)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import cross_val_score
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    ds = load_synthetic("smoke")
    assert ds.features["image"].shape == (ds.n_items, 1280) and ds.features["text"].shape == (ds.n_items, 384)

    def probe(attr, modality):
        clf = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, C=0.1))
        return cross_val_score(clf, ds.features[modality], ds.items[attr], cv=3).mean()

    for attr in IMAGE_ONLY + TEXT_ONLY + ("category",):
        majority = ds.items[attr].value_counts(normalize=True).max()
        seen_in = {"image": attr in IMAGE_ONLY + ("category",), "text": attr in TEXT_ONLY + ("category",)}
        for modality, visible in seen_in.items():
            acc = probe(attr, modality)
            if visible:
                assert acc > majority + 0.3, (attr, modality, acc)
            else:
                assert acc < majority + 0.1, (attr, modality, acc)


def _fake_encoders(monkeypatch, encoded: list) -> None:
    monkeypatch.setattr("workbench.data.encoders.encode_images",
                        lambda images, **kw: encoded.append("image") or np.zeros((len(images), 1280), np.float32))
    monkeypatch.setattr("workbench.data.encoders.encode_texts",
                        lambda texts, **kw: encoded.append("text") or np.ones((len(texts), 384), np.float32))


_TINY = dict(n_items=16, n_users=12, mean_interactions=4.0, min_interactions=3, max_interactions=8, image_size=32)


def test_cache_round_trip_keeps_dtypes(tmp_path, monkeypatch):
    """What load_synthetic returns equals what the generator makes (dtypes included), from a fresh cache and
    from a cache hit; the cache holds one image-feature and one text-feature file."""
    import workbench.data.synthetic as syn

    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    encoded = []
    _fake_encoders(monkeypatch, encoded)
    cfg = catalogue_config("smoke", **_TINY)
    built = syn.load_synthetic(config=cfg)
    assert sorted(p.name.split("-")[1] for p in (tmp_path / "cache").glob("synthetic-*.npz")) == ["image", "text"]
    cached = syn.load_synthetic(config=cfg)
    assert encoded == ["image", "text"]  # the second load was a cache hit
    raw = make_catalogue(cfg)
    for ds in (built, cached):
        pd.testing.assert_frame_equal(ds.items, raw.items)
        pd.testing.assert_frame_equal(ds.users, raw.users)
        pd.testing.assert_frame_equal(ds.interactions, raw.interactions)
        np.testing.assert_array_equal(ds.images, raw.images)
        assert ds.choice_model is not None
    assert cached.items["new_arrival"].dtype == bool


def test_behaviour_options_reuse_the_features_and_change_only_the_choices(tmp_path, monkeypatch):
    """A config that changes only how users choose (popularity strength) keeps the items, images and cached
    features, and draws other interactions; a new seed changes the items too."""
    import workbench.data.synthetic as syn

    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    encoded = []
    _fake_encoders(monkeypatch, encoded)
    cfg = catalogue_config("smoke", **_TINY)
    base = syn.load_synthetic(config=cfg)
    weaker = syn.load_synthetic(config=catalogue_config("smoke", **_TINY, popularity_weight=0.0))
    assert encoded == ["image", "text"]
    pd.testing.assert_frame_equal(weaker.items, base.items)
    assert not weaker.interactions.equals(base.interactions)
    syn.load_synthetic(config=catalogue_config("smoke", **_TINY, seed=1))
    assert encoded == ["image", "text"] * 2


def test_a_damaged_or_foreign_feature_cache_is_rebuilt(tmp_path, monkeypatch):
    """A truncated cache, one with flipped bytes, or another catalogue's cache copied under this name is
    rebuilt with a warning, never loaded."""
    import workbench.data.synthetic as syn

    monkeypatch.setenv("WORKBENCH_DATA", str(tmp_path))
    encoded = []
    _fake_encoders(monkeypatch, encoded)
    cfg, other = catalogue_config("smoke", **_TINY), catalogue_config("smoke", **_TINY, seed=1)
    reference = syn.load_synthetic(config=cfg)
    (path,) = (tmp_path / "cache").glob("synthetic-image-*.npz")
    good = path.read_bytes()
    syn.load_synthetic(config=other)
    (foreign,) = set((tmp_path / "cache").glob("synthetic-image-*.npz")) - {path}
    flipped = bytearray(good)
    flipped[len(good) // 2] ^= 0xFF
    for what, content in {"truncated": good[:-100], "flipped": bytes(flipped),
                          "foreign": foreign.read_bytes()}.items():
        path.write_bytes(content)
        with pytest.warns(RuntimeWarning, match="rebuilding"):
            again = syn.load_synthetic(config=cfg)
        np.testing.assert_array_equal(again.features["image"], reference.features["image"], err_msg=what)
        assert path.read_bytes() != content
