"""Generative retrieval: item code tuples compiled into a trie (:mod:`.trie`), vectorised constrained beam search
over a T5 (:mod:`.beam`) and the generator that trains it (:mod:`.generator`)."""
from . import generator  # noqa: F401  (registers the generator)
