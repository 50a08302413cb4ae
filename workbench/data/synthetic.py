"""The embedded default dataset: a SYNTHETIC product catalogue with known answers.

Every item has planted attributes. Some are visible only in its rendered image (``colour``, ``pattern``),
some only in its generated text (``material``, ``brand``, ``price_tier``), one in both (``category``): the two
modalities are complementary, so a tokenizer has something to disentangle. Images are encoded by
EfficientNet-Lite0 (1280-d), texts by all-MiniLM-L6-v2 (384-d), exactly as real features would be.

Users have latent tastes over the attributes; each user's interactions form a time-ordered sequence in which
the next item tends to follow the category (and colour) of the previous one, drawn with a long-tailed item
popularity, so there are zero-shot items and items with 1-4 and 5-9 training interactions. Ratings (1-5) grow
with the user's true affinity for the item (positive = rating > 3, as in MMQ).

Everything is deterministic given :class:`CatalogueConfig` (which includes the seed). Encoded features are
cached under ``data/cache`` keyed by a hash of the config, the generator's source and the encoder versions.
"""
from __future__ import annotations

import dataclasses
import inspect
import math
import sys
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ..core.config import preset
from .dataset import RecDataset
from ..core.paths import cache_dir
from ..core.storage import cached_arrays, content_hash


CATEGORIES = ("t-shirt", "dress", "trousers", "shoe", "handbag", "hat", "mug", "lamp")
COLOURS = {
    "red": (205, 35, 45), "blue": (35, 70, 195), "green": (35, 150, 65), "yellow": (235, 200, 35),
    "black": (30, 30, 30), "pink": (240, 125, 175), "orange": (240, 135, 25), "purple": (125, 55, 165),
}
PATTERNS = ("solid", "striped", "dotted", "checked")
MATERIALS = ("cotton", "leather", "wool", "linen", "ceramic", "steel", "bamboo", "denim")
BRANDS = ("Acme", "Nordwind", "Lumora", "Pebblecraft", "Vantage", "Kestrel", "Orla", "Mistral",
          "Tamsin", "Brightfold", "Quill", "Solace")
PRICE_TIERS = ("budget", "mid-range", "premium")
ATTRIBUTES = ("category", "colour", "pattern", "material", "brand", "price_tier")
VOCAB = {"category": CATEGORIES, "colour": tuple(COLOURS), "pattern": PATTERNS, "material": MATERIALS,
         "brand": BRANDS, "price_tier": PRICE_TIERS}
IMAGE_ONLY, TEXT_ONLY, BOTH = ("colour", "pattern"), ("material", "brand", "price_tier"), ("category",)

_NOUNS = {
    "t-shirt": ("t-shirt", "tee", "crew-neck top"), "dress": ("dress", "sundress", "frock"),
    "trousers": ("trousers", "pants", "chinos"), "shoe": ("shoe", "sneaker", "trainer"),
    "handbag": ("handbag", "tote bag", "purse"), "hat": ("hat", "cap", "bucket hat"),
    "mug": ("mug", "coffee cup", "tea mug"), "lamp": ("table lamp", "desk lamp", "reading lamp"),
}
_MATERIAL_WORDS = {
    "cotton": ("cotton", "organic cotton", "soft cotton"), "leather": ("leather", "genuine leather", "faux leather"),
    "wool": ("wool", "merino wool", "knitted wool"), "linen": ("linen", "pure linen", "washed linen"),
    "ceramic": ("ceramic", "stoneware", "porcelain"), "steel": ("steel", "stainless steel", "brushed metal"),
    "bamboo": ("bamboo", "natural bamboo", "bamboo fibre"), "denim": ("denim", "raw denim", "stretch denim"),
}
_TIER_WORDS = {
    "budget": ("affordable", "great-value", "budget-friendly"),
    "mid-range": ("everyday", "classic", "reliable"),
    "premium": ("luxury", "premium", "designer"),
}
_DISTRACTORS = ("new season", "bestseller", "limited edition", "free returns", "gift idea", "top rated",
                "ships fast", "customer favourite", "easy care", "online exclusive")
_OCCASIONS = ("everyday use", "weekends", "travel", "the office", "gifting", "home", "holidays")

# Silhouettes in unit coordinates (x right, y down): polygons and rings (bbox, relative width).
_SHAPES = {
    "t-shirt": [("poly", [(.3, .15), (.42, .12), (.5, .18), (.58, .12), (.7, .15), (.9, .32), (.8, .42), (.72, .36),
                          (.72, .88), (.28, .88), (.28, .36), (.2, .42), (.1, .32)])],
    "dress": [("poly", [(.4, .1), (.6, .1), (.62, .35), (.85, .9), (.15, .9), (.38, .35)])],
    "trousers": [("poly", [(.3, .1), (.7, .1), (.76, .9), (.56, .9), (.5, .4), (.44, .9), (.24, .9)])],
    "shoe": [("poly", [(.1, .55), (.15, .33), (.36, .33), (.5, .48), (.86, .58), (.92, .72), (.1, .72)])],
    "handbag": [("poly", [(.2, .42), (.8, .42), (.88, .86), (.12, .86)]), ("ring", (.32, .15, .68, .62), .06)],
    "hat": [("poly", [(.08, .68), (.92, .68), (.92, .78), (.08, .78)]), ("poly", [(.3, .7), (.34, .32), (.66, .32), (.7, .7)])],
    "mug": [("poly", [(.22, .22), (.64, .22), (.64, .86), (.22, .86)]), ("ring", (.52, .36, .86, .72), .07)],
    "lamp": [("poly", [(.3, .12), (.7, .12), (.83, .44), (.17, .44)]), ("poly", [(.46, .44), (.54, .44), (.54, .8), (.46, .8)]),
             ("poly", [(.28, .8), (.72, .8), (.72, .89), (.28, .89)])],
}


@dataclass(frozen=True)
class CatalogueConfig:
    """Sizes and strengths of the synthetic catalogue. Presets per profile: :data:`PRESETS`."""

    n_items: int = 3000
    n_users: int = 6000
    mean_interactions: float = 17.0     # mean sequence length per user (log-normal, clipped)
    min_interactions: int = 3
    max_interactions: int = 150
    popularity_exponent: float = 1.2    # Zipf exponent of the items' intrinsic popularity
    new_arrival_fraction: float = 0.05  # items released late: only in the last 30% of each user's sequence
    popularity_weight: float = 1.0      # weight of log-popularity in each choice
    taste_weight: float = 1.0           # weight of the user's attribute affinity in each choice
    sequence_weight: float = 2.0        # weight of "follows the previous item" in each choice
    image_size: int = 128               # rendered image side in pixels
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_items < len(CATEGORIES) or self.n_users < 1:
            raise ValueError(f"need n_items >= {len(CATEGORIES)} and n_users >= 1, got {self.n_items}, {self.n_users}")
        if not self.min_interactions <= self.mean_interactions <= self.max_interactions <= self.n_items:
            raise ValueError("need min_interactions <= mean_interactions <= max_interactions <= n_items")
        if not 0 <= self.new_arrival_fraction < 1:
            raise ValueError(f"new_arrival_fraction must be in [0, 1), got {self.new_arrival_fraction}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels, got {self.image_size}")


PRESETS = {
    "smoke": CatalogueConfig(n_items=240, n_users=400, mean_interactions=14.0, max_interactions=60, image_size=64),
    "default": CatalogueConfig(),
    # Baby's shape (19,445 users, 7,050 items, ~160k interactions) for benchmarks and paper-scale runs.
    "paper": CatalogueConfig(n_items=7050, n_users=19445, mean_interactions=8.3, max_interactions=200),
}


def catalogue_config(profile: str | None = None, **changes) -> CatalogueConfig:
    """The preset of the active profile, with ``changes`` applied (unknown options are errors)."""
    return preset(PRESETS, profile, **changes)


# ------------------------------------------------------------------------------------------------ items
def generate_items(cfg: CatalogueConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Planted attributes, title and description of each item; one row per item."""
    n = cfg.n_items
    brand_p = 1.0 / np.arange(1, len(BRANDS) + 1) ** 0.7
    items = pd.DataFrame({
        # every category present: a shuffled round-robin, then random
        "category": np.array(CATEGORIES)[rng.permutation(np.arange(n) % len(CATEGORIES))],
        "colour": rng.choice(list(COLOURS), n),
        "pattern": rng.choice(PATTERNS, n, p=[0.4, 0.2, 0.2, 0.2]),
        "material": rng.choice(MATERIALS, n),
        "brand": rng.choice(BRANDS, n, p=brand_p / brand_p.sum()),
        "price_tier": rng.choice(PRICE_TIERS, n, p=[0.35, 0.4, 0.25]),
        "new_arrival": rng.random(n) < cfg.new_arrival_fraction,
    })
    titles, descriptions = zip(*(_item_text(row, rng) for row in items.itertuples(index=False)))
    items["title"] = titles
    items["description"] = descriptions
    return items


def _pick(rng: np.random.Generator, words: tuple[str, ...]) -> str:
    return words[rng.integers(len(words))]


def _item_text(row, rng: np.random.Generator) -> tuple[str, str]:
    """Title and description from templates with synonyms, omissions and distractor words. Never mentions
    colour or pattern (image-only attributes)."""
    noun = _pick(rng, _NOUNS[row.category])
    material = _pick(rng, _MATERIAL_WORDS[row.material]) if rng.random() > 0.15 else ""
    tier = _pick(rng, _TIER_WORDS[row.price_tier]) if rng.random() > 0.3 else ""
    brand = row.brand if rng.random() > 0.1 else ""
    title = " ".join(w for w in (brand, tier, material, noun) if w)
    title = title[0].upper() + title[1:]
    adjective = tier or "well-made"
    article = "An" if adjective[0] in "aeiou" else "A"
    sentences = [f"{article} {adjective} {noun} for {_pick(rng, _OCCASIONS)}."]
    if material and rng.random() < 0.5:
        sentences.append(f"Made from {material}.")
    first, second = rng.choice(len(_DISTRACTORS), size=2, replace=False)
    sentences.append(f"{_DISTRACTORS[first].capitalize()}, {_DISTRACTORS[second]}.")
    if brand and rng.random() < 0.4:
        sentences.append(f"Designed by {brand}.")
    return title, " ".join(sentences)


def item_text(items: pd.DataFrame) -> list[str]:
    """The string fed to the text encoder for each item: ``"<title>. <description>"``."""
    return (items["title"] + ". " + items["description"]).tolist()


# ----------------------------------------------------------------------------------------------- images
def render_items(items: pd.DataFrame, size: int, rng: np.random.Generator) -> np.ndarray:
    """Render each item as a ``(size, size, 3)`` uint8 image: its category's silhouette, filled with its
    colour and pattern, with jittered scale, rotation, position, shade and background. -> ``(n, S, S, 3)``."""
    out = np.empty((len(items), size, size, 3), dtype=np.uint8)
    for i, row in enumerate(items[["category", "colour", "pattern"]].itertuples(index=False)):
        out[i] = _render_one(row.category, row.colour, row.pattern, size, rng)
    return out


def _render_one(category: str, colour: str, pattern: str, size: int, rng: np.random.Generator) -> np.ndarray:
    scale = rng.uniform(0.8, 1.0)
    angle = math.radians(rng.uniform(-12, 12))
    shift = rng.uniform(-0.06, 0.06, size=2)
    cos, sin = math.cos(angle), math.sin(angle)

    def place(x: float, y: float) -> tuple[float, float]:
        x, y = (x - 0.5) * scale, (y - 0.5) * scale
        return ((cos * x - sin * y + 0.5 + shift[0]) * size, (sin * x + cos * y + 0.5 + shift[1]) * size)

    mask = Image.new("L", (size, size), 0)
    draw = ImageDraw.Draw(mask)
    for kind, geom, *rest in _SHAPES[category]:
        if kind == "poly":
            draw.polygon([place(x, y) for x, y in geom], fill=255)
        else:
            (x0, y0), (x1, y1) = place(geom[0], geom[1]), place(geom[2], geom[3])
            box = (min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
            draw.ellipse(box, outline=255, width=max(2, int(rest[0] * size * scale)))
    base = np.clip(np.array(COLOURS[colour]) * rng.uniform(0.85, 1.1) + rng.normal(0, 8, 3), 0, 255)
    fill = Image.new("RGB", (size, size), tuple(int(c) for c in base))
    _draw_pattern(fill, pattern, base, size, rng)
    bg_level = rng.uniform(215, 250)
    background = np.clip(bg_level + rng.normal(0, 6, 3), 0, 255)
    canvas = Image.new("RGB", (size, size), tuple(int(c) for c in background))
    canvas = Image.composite(fill, canvas, mask)
    pixels = np.asarray(canvas, dtype=np.float32) + rng.normal(0, 4, (size, size, 3))
    return np.clip(pixels, 0, 255).astype(np.uint8)


def _draw_pattern(img: Image.Image, pattern: str, base: np.ndarray, size: int, rng: np.random.Generator) -> None:
    if pattern == "solid":
        return
    draw = ImageDraw.Draw(img)
    accent = tuple(int(c) for c in (base * 0.35 + 255 * 0.65 if base.mean() < 140 else base * 0.45))
    step = max(4, int(size * rng.uniform(0.09, 0.13)))
    offset = int(rng.integers(step))
    if pattern == "striped":
        width = max(1, step // 3)
        for y in range(-size, 2 * size, step):
            draw.line([(0, y + offset), (size, y + offset + size // 3)], fill=accent, width=width)
    elif pattern == "dotted":
        r = max(1, step // 4)
        for y in range(offset, size, step):
            for x in range(offset, size, step):
                draw.ellipse((x - r, y - r, x + r, y + r), fill=accent)
    elif pattern == "checked":
        for y in range(offset - step, size, step):
            for x in range(offset - step, size, step):
                if ((x - offset) // step + (y - offset) // step) % 2 == 0:
                    draw.rectangle((x, y, x + step - 1, y + step - 1), fill=accent)


# ---------------------------------------------------------------------------------------- interactions
def _attribute_codes(items: pd.DataFrame) -> dict[str, tuple[np.ndarray, int]]:
    """Integer code of each item's value and the vocabulary size, per attribute."""
    return {a: (pd.Categorical(items[a], categories=VOCAB[a]).codes.astype(np.int64), len(VOCAB[a]))
            for a in ATTRIBUTES}


# How much each attribute matters to users' tastes, and how concentrated tastes are (Dirichlet alpha).
_TASTE = {"category": (1.0, 0.3), "colour": (0.7, 0.4), "pattern": (0.3, 1.0), "material": (0.7, 0.4),
          "brand": (0.4, 0.5), "price_tier": (0.4, 1.0)}


def generate_interactions(items: pd.DataFrame, cfg: CatalogueConfig,
                          rng: np.random.Generator) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Sample each user's time-ordered interaction sequence. Returns ``(interactions, users)``; ``users``
    holds each user's favourite value of every attribute (the planted taste)."""
    codes = _attribute_codes(items)
    n_users, n_items = cfg.n_users, cfg.n_items
    affinity = np.zeros((n_users, n_items), dtype=np.float32)
    users = {}
    for attr, (weight, alpha) in _TASTE.items():
        item_code, n_values = codes[attr]
        pref = rng.dirichlet(np.full(n_values, alpha), size=n_users).astype(np.float32)
        users[f"favourite_{attr}"] = pref.argmax(1)
        affinity += weight * np.log(pref[:, item_code] + 1e-3)  # (U, I) log-preference of each item's value
    affinity -= affinity.mean(1, keepdims=True)
    popularity = 1.0 / (rng.permutation(n_items) + 1.0) ** cfg.popularity_exponent
    base = cfg.taste_weight * affinity + cfg.popularity_weight * np.log(popularity)[None, :].astype(np.float32)
    # Sequential structure: after an item of category c, categories follow[c] (same or complementary) get a
    # bonus; the same colour gets half of it (an image-only sequential signal).
    cat, n_cat = codes["category"]
    col, _ = codes["colour"]
    follow = np.eye(n_cat, dtype=np.float32) * 0.6
    follow[np.arange(n_cat), rng.permutation(n_cat)] += 0.4
    lengths = _sequence_lengths(cfg, rng)
    new = items["new_arrival"].to_numpy(dtype=bool)
    seq = _sample_sequences(base, lengths, cfg.sequence_weight * follow[:, cat], cat, col, cfg.sequence_weight,
                            new, rng)
    user_ids = np.repeat(np.arange(n_users), lengths)
    gaps = rng.exponential(2 * 86400.0, size=len(user_ids))  # mean two days between interactions
    starts = rng.uniform(0, 365 * 86400.0, size=n_users)
    offsets = np.r_[0, np.cumsum(lengths)[:-1]]
    cumgaps = np.cumsum(gaps)
    timestamps = starts[user_ids] + cumgaps - np.repeat(cumgaps[offsets] - gaps[offsets], lengths)
    rating = _ratings(affinity[user_ids, seq], rng)
    inter = pd.DataFrame({
        "user_id": user_ids, "item_id": seq, "rating": rating,
        "timestamp": (1_600_000_000 + timestamps).astype(np.int64),
    })
    user_table = pd.DataFrame({k: np.array(VOCAB[k.removeprefix("favourite_")])[v] for k, v in users.items()})
    return inter, user_table


def _sequence_lengths(cfg: CatalogueConfig, rng: np.random.Generator) -> np.ndarray:
    sigma = 0.8
    mu = math.log(cfg.mean_interactions) - sigma**2 / 2
    raw = rng.lognormal(mu, sigma, size=cfg.n_users)
    return np.clip(np.rint(raw), cfg.min_interactions, cfg.max_interactions).astype(np.int64)


def _sample_sequences(base, lengths, follow_bonus, cat, col, seq_weight, new, rng) -> np.ndarray:
    """Gumbel-max sampling without replacement, one time step at a time for all active users at once.
    ``follow_bonus[c]`` is the ``(n_items,)`` bonus after an item of category ``c``; the same colour as the
    previous item adds half of ``seq_weight``; items flagged ``new`` are available only in the last 30% of a
    sequence. Returns the flat item ids, user by user."""
    n_users, n_items = base.shape
    n_col = col.max() + 1
    # bonus after an item of (category c, colour k): row c * n_col + k, shape (n_cat * n_col, n_items)
    same_colour = (np.arange(n_col)[:, None] == col[None, :]).astype(np.float32)
    bonus = (follow_bonus[:, None, :] + 0.5 * seq_weight * same_colour[None, :, :]).reshape(-1, n_items)
    out = np.zeros((n_users, lengths.max()), dtype=np.int64)
    for t in range(lengths.max()):
        active = np.flatnonzero(lengths > t)  # users still active were active at t - 1 too
        logits = base[active]  # (A, I) copy
        if t > 0:
            prev = out[active, t - 1]
            logits += bonus[cat[prev] * n_col + col[prev]]
            logits[np.repeat(np.arange(len(active)), t), out[active, :t].ravel()] = -np.inf  # no repeats
        logits[np.ix_(t < 0.7 * lengths[active], new)] = -np.inf
        # Gumbel noise in float32 (half the cost of rng.gumbel's float64 at Baby's size)
        logits -= np.log(-np.log(rng.random(logits.shape, dtype=np.float32) + 1e-12) + 1e-12)
        out[active, t] = logits.argmax(1)
    mask = np.arange(out.shape[1])[None, :] < lengths[:, None]
    return out[mask]


def _ratings(affinity: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-5 stars rising with the user's standardised affinity for the item, plus noise."""
    z = (affinity - affinity.mean()) / (affinity.std() + 1e-9) + rng.normal(0, 0.7, len(affinity))
    return (1 + np.searchsorted([-1.2, -0.5, 0.2, 0.9], z)).astype(np.float32)


# ------------------------------------------------------------------------------------------- assembling
def make_catalogue(cfg: CatalogueConfig) -> RecDataset:
    """Generate the catalogue without encoding: items, images, interactions and planted user tastes
    (``dataset.users``); ``dataset.features`` is empty."""
    rng = np.random.default_rng(cfg.seed)
    items = generate_items(cfg, rng)
    images = render_items(items, cfg.image_size, rng)
    inter, users = generate_interactions(items, cfg, rng)
    return _dataset(cfg, inter, items, users, images, {})


def _dataset(cfg, inter, items, users, images, features) -> RecDataset:
    return RecDataset(
        name=f"synthetic-{cfg.n_items}i-{cfg.n_users}u-s{cfg.seed}",
        interactions=inter, n_users=cfg.n_users, n_items=cfg.n_items, features=features, items=items,
        users=users, images=images,
        description="SYNTHETIC catalogue generated by workbench.synthetic (planted attributes, rendered images, "
                    "template texts, taste-driven long-tailed sequential interactions); not real data",
    )


def _plain(column: pd.Series) -> np.ndarray:
    """A column as an array ``np.load`` can read without pickle: text as unicode, numbers and bools as is."""
    values = column.to_numpy()
    return values.astype(str) if values.dtype == object else values


def cache_key(cfg: CatalogueConfig) -> str:
    """Hash of the config, this module's source (any change to the generator invalidates old caches) and the
    encoder versions."""
    from .encoders import encoder_versions

    source = inspect.getsource(sys.modules[__name__])
    return content_hash({"config": dataclasses.asdict(cfg), "source": content_hash(source),
                         "encoders": encoder_versions()})


def _catalogue_arrays(cfg: CatalogueConfig, device: str | None, progress: bool) -> dict[str, np.ndarray]:
    """The catalogue of ``cfg`` with its encoded features, as the named arrays of its cache file."""
    from .encoders import encode_images, encode_texts

    ds = make_catalogue(cfg)
    arrays = {f"inter_{c}": ds.interactions[c].to_numpy() for c in ds.interactions.columns}
    arrays |= {f"item_{c}": _plain(ds.items[c]) for c in ds.items.columns}
    arrays |= {f"user_{c}": _plain(ds.users[c]) for c in ds.users.columns}
    arrays["images"] = ds.images
    arrays["feat_image"] = encode_images(ds.images, device=device, progress=progress)
    arrays["feat_text"] = encode_texts(item_text(ds.items), device=device, progress=progress)
    return arrays


def _check_catalogue_arrays(arrays: dict[str, np.ndarray], cfg: CatalogueConfig) -> None:
    """Raise ``ValueError`` unless a cached catalogue has the tables and sizes ``cfg`` asks for."""
    for name in ("inter_user_id", "inter_item_id", "images", "feat_image", "feat_text"):
        if name not in arrays:
            raise ValueError(f"array {name!r} is missing")
    rows = {k: len(v) for k, v in arrays.items() if k.startswith(("item_", "images", "feat_"))}
    if set(rows.values()) != {cfg.n_items}:
        raise ValueError(f"item tables do not all have {cfg.n_items} rows: {rows}")
    users = {k: len(v) for k, v in arrays.items() if k.startswith("user_")}
    if set(users.values()) != {cfg.n_users}:
        raise ValueError(f"user tables do not all have {cfg.n_users} rows: {users}")


def load_synthetic(profile: str | None = None, config: CatalogueConfig | None = None, use_cache: bool = True,
                   device: str | None = None, progress: bool = False) -> RecDataset:
    """The synthetic catalogue with EfficientNet-Lite0 ``image`` and MiniLM ``text`` features.

    Built once per config (``config`` or the active profile's preset) and cached in
    ``data/cache/synthetic-<hash>.npz``; later calls load the cache (validated: a damaged or mismatched cache is
    rebuilt). The planted item attributes are in
    ``dataset.items``, the planted user tastes in ``dataset.users``."""
    cfg = config if config is not None else catalogue_config(profile)
    key = cache_key(cfg)
    arrays = cached_arrays(cache_dir() / f"synthetic-{key}.npz", key, lambda: _catalogue_arrays(cfg, device, progress),
                           lambda a: _check_catalogue_arrays(a, cfg), use_cache=use_cache)
    def table(prefix: str) -> pd.DataFrame:
        return pd.DataFrame({k[len(prefix):]: v for k, v in arrays.items() if k.startswith(prefix)})

    return _dataset(cfg, table("inter_"), table("item_"), table("user_"), arrays["images"],
                    {"image": arrays["feat_image"], "text": arrays["feat_text"]})
