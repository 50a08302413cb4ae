"""The embedded default dataset: a SYNTHETIC product catalogue with known answers.

Every item has planted attributes. Some are visible only in its rendered image (``colour``, ``pattern``),
some only in its generated text (``material``, ``brand``, ``price_tier``), one in both (``category``): the two
modalities are complementary, so a tokenizer has something to disentangle. Images are encoded by
EfficientNet-Lite0 (1280-d), texts by all-MiniLM-L6-v2 (384-d), exactly as real features would be.

Users have latent tastes over the attributes and make time-ordered choices (:mod:`workbench.data.choices`): each
choice weighs the item's content appeal to the user, its exposure (a tunable popularity strength) and whether it
follows the previous item's category and colour, among the items already released. Part of the catalogue is
released over the year, so there are items that are cold because they are new, and the latest arrivals become
zero-shot items once held out. Ratings (1-5) grow with the user's appeal for the item (positive = rating > 3, as
in MMQ). ``dataset.choice_model`` keeps the parameters behind every choice: the oracle
(:class:`workbench.models.oracle.OracleRecommender`) ranks by them.

Everything is deterministic given :class:`CatalogueConfig` (which includes the seed); items, images, release
times, tastes and choices each draw from their own random stream, so changing, say, the popularity strength
changes the choices and nothing else. Encoded features are cached under ``data/cache`` keyed by the content
they encode (the images' bytes, the texts) and the encoder versions.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from PIL import Image, ImageDraw

from ..core.config import preset
from .choices import ChoiceModel, draw_choices
from .dataset import RecDataset


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
    """Sizes and strengths of the synthetic catalogue. Presets per profile: :data:`PRESETS`.

    The default is calibrated against the real Amazon Baby interactions (notebook 00 shows both side by side):
    item-degree Gini, the share of items with fewer than 10 training interactions and the share of test
    interactions they receive, and how close popularity comes to LightGCN."""

    n_items: int = 3000
    n_users: int = 6000
    mean_interactions: float = 11.5     # mean sequence length per user (log-normal, clipped)
    min_interactions: int = 5           # as in a 5-core dataset
    max_interactions: int = 150
    popularity_exponent: float = 1.0    # Zipf exponent of the items' exposure
    exposure_floor: float = 0.25        # share of all exposure spread evenly over the items (every item is listed)
    popularity_weight: float = 1.3      # popularity strength: weight of log-exposure in each choice (0 = none)
    taste_weight: float = 1.0           # weight of the user's content appeal in each choice
    sequence_weight: float = 2.0        # weight of "follows the previous item" in each choice
    release_fraction: float = 0.3       # share of items released over the timeline instead of from the start
    new_arrival_fraction: float = 0.15  # the latest-released items: held out as zero-shot items by the notebooks
    timeline_days: float = 365.0        # users start, and items are released, uniformly over this many days
    image_size: int = 128               # rendered image side in pixels
    seed: int = 0

    def __post_init__(self) -> None:
        if self.n_items < len(CATEGORIES) or self.n_users < 1:
            raise ValueError(f"need n_items >= {len(CATEGORIES)} and n_users >= 1, got {self.n_items}, {self.n_users}")
        if not 1 <= self.min_interactions <= self.mean_interactions <= self.max_interactions:
            raise ValueError("need 1 <= min_interactions <= mean_interactions <= max_interactions, got "
                             f"{self.min_interactions}, {self.mean_interactions}, {self.max_interactions}")
        if not 0 <= self.new_arrival_fraction <= self.release_fraction < 1:
            raise ValueError("need 0 <= new_arrival_fraction <= release_fraction < 1, got "
                             f"{self.new_arrival_fraction}, {self.release_fraction}")
        if self.max_interactions > (1 - self.release_fraction) * self.n_items:
            raise ValueError(f"max_interactions ({self.max_interactions}) must not exceed the items there from the "
                             f"start ((1 - release_fraction) * n_items = {(1 - self.release_fraction) * self.n_items:g})")
        if not 0 <= self.exposure_floor <= 1:
            raise ValueError(f"exposure_floor must be in [0, 1], got {self.exposure_floor}")
        for name in ("popularity_exponent", "popularity_weight", "taste_weight", "sequence_weight"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if not self.timeline_days > 0:
            raise ValueError(f"timeline_days must be > 0, got {self.timeline_days}")
        if self.image_size < 32:
            raise ValueError(f"image_size must be >= 32 pixels, got {self.image_size}")


PRESETS = {
    "smoke": CatalogueConfig(n_items=240, n_users=400, mean_interactions=14.0, max_interactions=60, image_size=64),
    "default": CatalogueConfig(),
    # Baby's shape (19,445 users, 7,050 items, ~160k interactions) for benchmarks and paper-scale runs.
    "paper": CatalogueConfig(n_items=7050, n_users=19445, mean_interactions=8.3, max_interactions=200),
}
# the random stream of each part of the catalogue: np.random.default_rng([seed, stream])
_ITEM_STREAM, _IMAGE_STREAM, _RELEASE_STREAM, _TASTE_STREAM, _CHOICE_STREAM = range(5)


def colour_palette() -> dict[str, tuple[float, float, float]]:
    """Each planted colour name -> its RGB in [0, 1] (to draw a colour map in the colours it names)."""
    return {name: tuple(c / 255 for c in rgb) for name, rgb in COLOURS.items()}


def catalogue_config(profile: str | None = None, **changes) -> CatalogueConfig:
    """The preset of the active profile, with ``changes`` applied (unknown options are errors)."""
    return preset(PRESETS, profile, **changes)


# ------------------------------------------------------------------------------------------------ items
def generate_items(cfg: CatalogueConfig, rng: np.random.Generator) -> pd.DataFrame:
    """Planted attributes, title, description, release time and new-arrival flag of each item; one row per
    item (the release schedule draws from its own stream)."""
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
    })
    titles, descriptions = zip(*(_item_text(row, rng) for row in items.itertuples(index=False)))
    items["title"] = titles
    items["description"] = descriptions
    items["released"], items["new_arrival"] = release_schedule(
        cfg, np.random.default_rng([cfg.seed, _RELEASE_STREAM]))
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
_EPOCH = 1_600_000_000  # the timeline's first second (unix time)
_DAY = 86400.0


def release_schedule(cfg: CatalogueConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Each item's release time ``(n_items,)`` int64 (unix seconds) and new-arrival flag ``(n_items,)`` bool.

    A share ``1 - release_fraction`` of the catalogue is there from the first day; the rest is released at
    uniformly random times over the timeline. The ``new_arrival_fraction`` latest-released items are the new
    arrivals (the notebooks hold all their interactions out, so they are zero-shot items)."""
    n = cfg.n_items
    released = np.zeros(n)
    late = rng.permutation(n)[:int(round(cfg.release_fraction * n))]
    released[late] = rng.uniform(0, cfg.timeline_days * _DAY, size=len(late))
    new = np.zeros(n, dtype=bool)
    new[np.argsort(-released, kind="stable")[:int(round(cfg.new_arrival_fraction * n))]] = True
    return (_EPOCH + released).astype(np.int64), new


def _step_times(cfg: CatalogueConfig, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Every user's choice times (user by user, in time order) and the ``(n_users + 1,)`` offsets: a start
    uniform over the timeline, then gaps of two days on average."""
    sigma = 0.8
    mu = math.log(cfg.mean_interactions) - sigma**2 / 2
    lengths = np.clip(np.rint(rng.lognormal(mu, sigma, size=cfg.n_users)), cfg.min_interactions,
                      cfg.max_interactions).astype(np.int64)
    offsets = np.r_[0, np.cumsum(lengths)]
    gaps = rng.exponential(2 * _DAY, size=offsets[-1])
    cumgaps = np.cumsum(gaps)
    first = offsets[:-1]
    since_start = cumgaps - np.repeat(cumgaps[first] - gaps[first], lengths)  # each user's own running sum
    starts = rng.uniform(0, cfg.timeline_days * _DAY, size=cfg.n_users)
    return np.floor(_EPOCH + np.repeat(starts, lengths) + since_start), offsets


def choice_model(items: pd.DataFrame, cfg: CatalogueConfig, rng: np.random.Generator,
                 step_times: np.ndarray, step_offsets: np.ndarray) -> ChoiceModel:
    """The users' planted tastes, the items' exposure and release times, as a :class:`ChoiceModel`."""
    codes = _attribute_codes(items)
    log_pref = {attr: np.log(rng.dirichlet(np.full(codes[attr][1], alpha), size=cfg.n_users) + 1e-3)
                .astype(np.float32) for attr, (_, alpha) in _TASTE.items()}
    rank = rng.permutation(cfg.n_items) + 1.0  # exposure rank, independent of content and release
    zipf = rank ** -cfg.popularity_exponent
    exposure = np.log((1 - cfg.exposure_floor) * zipf / zipf.sum() + cfg.exposure_floor / cfg.n_items)
    return ChoiceModel(
        item_codes={a: c for a, (c, _) in codes.items()}, log_preference=log_pref,
        attribute_weights={a: w for a, (w, _) in _TASTE.items()},
        exposure=(exposure - exposure.mean()).astype(np.float32),
        release=items["released"].to_numpy(dtype=np.float64), step_times=step_times, step_offsets=step_offsets,
        taste_weight=cfg.taste_weight, popularity_weight=cfg.popularity_weight)


def generate_interactions(items: pd.DataFrame, cfg: CatalogueConfig) -> tuple[pd.DataFrame, pd.DataFrame,
                                                                              ChoiceModel]:
    """Sample each user's time-ordered interaction sequence (:mod:`workbench.data.choices`). Returns
    ``(interactions, users, choice_model)``: ``users`` holds each user's favourite value of every attribute
    (the planted taste); ``choice_model`` the parameters behind every choice, which the oracle reads."""
    taste_rng, choice_rng = (np.random.default_rng([cfg.seed, k]) for k in (_TASTE_STREAM, _CHOICE_STREAM))
    times, offsets = _step_times(cfg, choice_rng)
    model = choice_model(items, cfg, taste_rng, times, offsets)
    # Sequential structure: after an item of category c, categories follow[c] (same or complementary) get a
    # bonus; the same colour gets half of it (an image-only sequential signal).
    cat, n_cat = _attribute_codes(items)["category"]
    col, n_col = _attribute_codes(items)["colour"]
    follow = np.eye(n_cat, dtype=np.float32) * 0.6
    follow[np.arange(n_cat), taste_rng.permutation(n_cat)] += 0.4
    same_colour = (np.arange(n_col)[:, None] == col[None, :]).astype(np.float32)        # (n_col, I)
    bonus = cfg.sequence_weight * (follow[:, cat][:, None, :] + 0.5 * same_colour[None, :, :])  # (n_cat, n_col, I)
    model.sequence_bonus, model.bonus_row = bonus.reshape(-1, cfg.n_items), cat * n_col + col
    seq = draw_choices(model, model.sequence_bonus, model.bonus_row, choice_rng)
    user_ids = np.repeat(np.arange(cfg.n_users), np.diff(offsets))
    inter = pd.DataFrame({
        "user_id": user_ids, "item_id": seq, "rating": _ratings(model.pair_appeal(user_ids, seq), choice_rng),
        "timestamp": times.astype(np.int64),
    })
    users = pd.DataFrame({f"favourite_{a}": np.array(VOCAB[a])[model.log_preference[a].argmax(1)]
                          for a in _TASTE})
    return inter, users, model


def _ratings(appeal: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """1-5 stars rising with the user's standardised appeal of the item, plus noise."""
    z = (appeal - appeal.mean()) / (appeal.std() + 1e-9) + rng.normal(0, 0.7, len(appeal))
    return (1 + np.searchsorted([-1.2, -0.5, 0.2, 0.9], z)).astype(np.float32)


# ------------------------------------------------------------------------------------------- assembling
def make_catalogue(cfg: CatalogueConfig, render: bool = True) -> RecDataset:
    """Generate the catalogue without encoding: items, images (unless ``render=False``), interactions,
    planted user tastes (``dataset.users``) and the choice model (``dataset.choice_model``);
    ``dataset.features`` is empty."""
    items = generate_items(cfg, np.random.default_rng([cfg.seed, _ITEM_STREAM]))
    images = render_items(items, cfg.image_size, np.random.default_rng([cfg.seed, _IMAGE_STREAM])) if render else None
    inter, users, model = generate_interactions(items, cfg)
    return RecDataset(
        name=f"synthetic-{cfg.n_items}i-{cfg.n_users}u-s{cfg.seed}",
        interactions=inter, n_users=cfg.n_users, n_items=cfg.n_items, items=items, users=users, images=images,
        choice_model=model,
        description="SYNTHETIC catalogue generated by workbench.synthetic (planted attributes, rendered images, "
                    "template texts, taste-driven long-tailed sequential interactions); not real data",
    )


def load_synthetic(profile: str | None = None, config: CatalogueConfig | None = None, use_cache: bool = True,
                   device: str | None = None, progress: bool = False) -> RecDataset:
    """The synthetic catalogue with EfficientNet-Lite0 ``image`` and MiniLM ``text`` features.

    Generated from ``config`` (or the active profile's preset) on every call (seconds); only the encoded
    features are cached, in ``data/cache``, keyed by the images' bytes, the texts and the encoder versions, so a
    config that changes only the users' behaviour (popularity strength, sequence lengths...) reuses them. A
    damaged or mismatched cache is rebuilt. The planted item attributes are in ``dataset.items``, the planted
    user tastes in ``dataset.users``, the choice model in ``dataset.choice_model``."""
    from dataclasses import replace

    from .encoders import cached_image_features, cached_text_features

    cfg = config if config is not None else catalogue_config(profile)
    ds = make_catalogue(cfg)
    features = {"image": cached_image_features(ds.images, "synthetic", use_cache, device, progress),
                "text": cached_text_features(item_text(ds.items), "synthetic", use_cache, device, progress)}
    return replace(ds, features=features)
