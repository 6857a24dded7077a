"""An embedding where related texts are close: a sparse random projection of word counts.

Each word (lower-cased, English stop words dropped, a plural `s` trimmed) adds ±(1 + log
count) to a few slots chosen by hashing the word; the sum is L2-normalised. Two texts that
share words get a high cosine, texts that share none are near orthogonal, and the same text
always gets the same vector. It needs no model and no network, so the fake providers serve
it (FakeOpenAI(embeddings="words")) and the retrieval benchmark embeds 100k chunks with it.
"""

from __future__ import annotations

import hashlib
import math
import re
from collections import Counter
from functools import lru_cache

SLOTS_PER_WORD = 8
_WORD = re.compile(r"[a-z0-9]+")
STOP_WORDS = frozenset(
    """a about an and are as at be been but by can could do does did for from had has have
    how i if in into is it its me my no not of on or our so than that the their them then
    there these they this to too was we were what when where which who why will with would
    you your""".split()
)


def words(text: str) -> list[str]:
    found = []
    for word in _WORD.findall(text.lower()):
        if word in STOP_WORDS:
            continue
        if len(word) > 3 and word.endswith("s") and not word.endswith("ss"):
            word = word[:-1]
        found.append(word)
    return found


@lru_cache(maxsize=500_000)
def _slots(word: str, dimension: int) -> tuple[tuple[int, float], ...]:
    digest = hashlib.blake2b(word.encode(), digest_size=4 * SLOTS_PER_WORD).digest()
    slots = []
    for i in range(SLOTS_PER_WORD):
        value = int.from_bytes(digest[4 * i : 4 * i + 4], "big")
        slots.append((value % dimension, 1.0 if value >> 31 else -1.0))
    return tuple(slots)


def word_vector(text: str, dimension: int) -> list[float]:
    vector = [0.0] * dimension
    for word, count in Counter(words(text)).items():
        weight = 1.0 + math.log(count)
        for slot, sign in _slots(word, dimension):
            vector[slot] += sign * weight
    norm = math.sqrt(sum(x * x for x in vector))
    if not norm:  # nothing but stop words: a fixed direction of its own
        vector[hash_slot(text, dimension)] = 1.0
        return vector
    return [x / norm for x in vector]


def hash_slot(text: str, dimension: int) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:4], "big") % dimension


# --- With topics: closer to a real model's geometry --------------------------------------
# Real embedding models put texts on a low-dimensional surface (texts about one subject
# share directions); word hashing alone spreads them over every dimension, the hardest
# case for an approximate-nearest-neighbour graph. Here each word also pulls its text
# towards one of TOPICS shared directions, so texts cluster by subject while those that
# share words stay closest.
TOPICS = 48
TOPIC_SLOTS = 32  # non-zero slots of a topic direction
TOPIC_SHARE = 0.6  # of a word's pull that goes to its topic


@lru_cache(maxsize=4096)
def _topic(index: int, dimension: int) -> tuple[tuple[int, float], ...]:
    digest = hashlib.shake_256(f"topic{index}".encode()).digest(4 * TOPIC_SLOTS)
    slots = []
    for i in range(TOPIC_SLOTS):
        value = int.from_bytes(digest[4 * i : 4 * i + 4], "big")
        slots.append((value % dimension, (1.0 if value >> 31 else -1.0) / math.sqrt(TOPIC_SLOTS)))
    return tuple(slots)


def topic_vector(text: str, dimension: int) -> list[float]:
    vector = [0.0] * dimension
    topics: Counter = Counter()
    word_part = math.sqrt(1 - TOPIC_SHARE**2) / math.sqrt(SLOTS_PER_WORD)
    for word, count in Counter(words(text)).items():
        weight = 1.0 + math.log(count)
        for slot, sign in _slots(word, dimension):
            vector[slot] += sign * weight * word_part
        topics[hash_slot(word, TOPICS)] += weight * TOPIC_SHARE
    for index, weight in topics.items():
        for slot, value in _topic(index, dimension):
            vector[slot] += value * weight
    norm = math.sqrt(sum(x * x for x in vector))
    if not norm:
        vector[hash_slot(text, dimension)] = 1.0
        return vector
    return [x / norm for x in vector]
