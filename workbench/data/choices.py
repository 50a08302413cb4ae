"""How the synthetic catalogue's users choose items, and the oracle that knows it.

Each user makes a time-ordered sequence of choices. At a step at time ``t`` after an item of category ``c`` and
colour ``k``, the user picks one item not picked before, by a Gumbel-max draw (a softmax choice) over

    logit(u, i, t) = taste_weight * appeal(u, i) + popularity_weight * exposure(i) + sequence bonus(c, k -> i)

among the items already **released** at ``t``. The three causes of an item's degree are kept apart:

* ``appeal(u, i)``: content appeal, the user's log-preference for the item's planted attribute values, summed
  over attributes with fixed weights and centred per user. The item's image and text show those attributes,
  so appeal is what a content model can learn.
* ``exposure(i)``: how often the item is put in front of users, the log of a Zipf weight (exponent
  ``popularity_exponent``) mixed with an even share every item gets (``exposure_floor``), drawn independently
  of content and centred over items; ``popularity_weight`` sets its strength (0: no exposure bias).
* ``release(i)``: part of the catalogue (``release_fraction``) is released over the year instead of being there
  from the start, so late items have few interactions while being as appealing as any other: they are cold
  because they are new, and the users who pick them are those whose tastes they match.

:class:`ChoiceModel` keeps these parameters (not the sampled choices). Its :meth:`ChoiceModel.scores` is the
**oracle**: a user's static choice propensity for every item, ``taste_weight * appeal + popularity_weight *
exposure``, plus the log of the share of the user's steps at which the item was already released. It leaves out
the sequence bonus, which depends on which item came before, a draw the oracle does not see. No model can know
more than these parameters about a user's held-out items, so the oracle is the ceiling of every comparison.

For next-item prediction (leave-one-out) the choice is fully known: :meth:`ChoiceModel.next_item_scores` gives
the exact logits of one step, with the sequence bonus after the previous item, the items released by then and the
items already chosen removed (the next-item oracle, :class:`workbench.models.sequential.references.NextItemOracle`).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

UNRELEASED = -1e4  # oracle score offset for an item never released while the user was active (finite, ranks last)


@dataclass
class ChoiceModel:
    """The generator's parameters (``U`` users, ``I`` items, ``S`` choice steps in all).

    Attributes:
        item_codes: attribute -> ``(I,)`` value code of each item.
        log_preference: attribute -> ``(U, n_values)`` log-preference of each user for each value.
        attribute_weights: attribute -> weight of that attribute in the appeal.
        exposure: ``(I,)`` centred log exposure.
        release: ``(I,)`` release time of each item (unix seconds).
        step_times: ``(S,)`` time of every choice step, user by user, in time order (drawn before any choice).
        step_offsets: ``(U + 1,)`` user ``u``'s steps are ``step_times[step_offsets[u]:step_offsets[u + 1]]``.
        taste_weight, popularity_weight: the strengths of appeal and exposure in each choice.
        sequence_bonus: ``(R, I)`` the bonus of each item after a previous item of bonus row ``r`` (or ``None``).
        bonus_row: ``(I,)`` the bonus row each item sets up for the next step (its category and colour).
    """

    item_codes: dict[str, np.ndarray]
    log_preference: dict[str, np.ndarray]
    attribute_weights: dict[str, float]
    exposure: np.ndarray
    release: np.ndarray
    step_times: np.ndarray
    step_offsets: np.ndarray
    taste_weight: float
    popularity_weight: float
    sequence_bonus: np.ndarray | None = None
    bonus_row: np.ndarray | None = None

    @property
    def n_users(self) -> int:
        return len(self.step_offsets) - 1

    @property
    def n_items(self) -> int:
        return len(self.exposure)

    def appeal(self, user_ids: np.ndarray) -> np.ndarray:
        """Content appeal ``(B, I)`` float32 of every item for ``user_ids`` ``(B,)``, centred per user."""
        user_ids = self._users(user_ids)
        out = np.zeros((len(user_ids), self.n_items), dtype=np.float32)
        for attr, weight in self.attribute_weights.items():
            out += weight * self.log_preference[attr][user_ids][:, self.item_codes[attr]]   # (B, I)
        return out - self._mean_appeal(user_ids)[:, None]

    def pair_appeal(self, user_ids: np.ndarray, item_ids: np.ndarray) -> np.ndarray:
        """Content appeal ``(N,)`` of the pairs ``(user_ids[n], item_ids[n])``, as :meth:`appeal` gives it."""
        user_ids, item_ids = self._users(user_ids), np.asarray(item_ids, dtype=np.int64)
        raw = sum(weight * self.log_preference[attr][user_ids, self.item_codes[attr][item_ids]]
                  for attr, weight in self.attribute_weights.items())
        return (raw - self._mean_appeal(user_ids)).astype(np.float32)

    def _mean_appeal(self, user_ids: np.ndarray) -> np.ndarray:
        """Each user's mean raw appeal over all items ``(B,)``: per attribute, the log-preferences weighted by
        how many items carry each value."""
        mean = np.zeros(len(user_ids), dtype=np.float64)
        for attr, weight in self.attribute_weights.items():
            logp = self.log_preference[attr]
            share = np.bincount(self.item_codes[attr], minlength=logp.shape[1]) / self.n_items
            mean += weight * (logp[user_ids] @ share)
        return mean.astype(np.float32)

    def static_logits(self, user_ids: np.ndarray) -> np.ndarray:
        """``taste_weight * appeal + popularity_weight * exposure``: ``(B, I)`` float32, time and order aside."""
        return self.taste_weight * self.appeal(user_ids) + self.popularity_weight * self.exposure[None, :]

    def released_share(self, user_ids: np.ndarray) -> np.ndarray:
        """``(B, I)``: the share of each user's choice steps at which each item was already released."""
        user_ids = self._users(user_ids)
        starts, ends = self.step_offsets[user_ids], self.step_offsets[user_ids + 1]
        lengths = ends - starts
        before_b = np.r_[0, np.cumsum(lengths)[:-1]]                 # first position of user b's steps
        steps = self.step_times[np.arange(lengths.sum()) - np.repeat(before_b - starts, lengths)]
        # one sorted key per (user in batch, step): user b's steps live in [b * span, (b + 1) * span)
        t0 = min(self.step_times.min(initial=0.0), self.release.min(initial=0.0))
        span = max(self.step_times.max(initial=0.0), self.release.max(initial=0.0)) - t0 + 1.0
        owner = np.repeat(np.arange(len(user_ids)), lengths)
        keys = owner * span + (steps - t0)                           # sorted: users in order, steps in time order
        query = np.arange(len(user_ids))[:, None] * span + (self.release[None, :] - t0)   # (B, I)
        before = np.searchsorted(keys, query, side="left") - before_b[:, None]  # steps earlier than release
        return ((lengths[:, None] - before) / np.maximum(lengths[:, None], 1)).astype(np.float32)

    def scores(self, user_ids: np.ndarray) -> np.ndarray:
        """The oracle's scores ``(B, I)`` float32: static logits plus the log released share (an item never
        released during the user's activity gets :data:`UNRELEASED`: finite, ranked last)."""
        share = self.released_share(user_ids)
        with np.errstate(divide="ignore"):
            availability = np.where(share > 0, np.log(share), UNRELEASED).astype(np.float32)
        return self.static_logits(user_ids) + availability

    def next_item_scores(self, user_ids: np.ndarray, previous: np.ndarray, times: np.ndarray,
                         seen: np.ndarray) -> np.ndarray:
        """The exact logits ``(B, I)`` of one choice step of each user (module doc): static logits plus the
        sequence bonus after ``previous`` ``(B,)`` (``-1``: a first step, no bonus); items not released by
        ``times`` ``(B,)`` and the items in ``seen`` ``(B, L)`` (padded with ``-1``) get :data:`UNRELEASED`."""
        if self.sequence_bonus is None:
            raise ValueError("this choice model has no sequence bonus (made before it was recorded)")
        scores = self.static_logits(user_ids)
        previous = np.asarray(previous)
        has = previous >= 0
        scores[has] += self.sequence_bonus[self.bonus_row[previous[has]]]
        scores[self.release[None, :] > np.asarray(times, dtype=np.float64)[:, None]] = UNRELEASED
        rows, cols = np.nonzero(np.asarray(seen) >= 0)
        scores[rows, np.asarray(seen)[rows, cols]] = UNRELEASED
        return scores

    def _users(self, user_ids) -> np.ndarray:
        user_ids = np.asarray(user_ids, dtype=np.int64).reshape(-1)
        if len(user_ids) and (user_ids.min() < 0 or user_ids.max() >= self.n_users):
            raise ValueError(f"user ids must be in [0, {self.n_users}), got {user_ids.min()}..{user_ids.max()}")
        return user_ids


def draw_choices(model: ChoiceModel, bonus: np.ndarray, bonus_row: np.ndarray,
                 rng: np.random.Generator) -> np.ndarray:
    """Sample every user's sequence of choices (module doc): Gumbel-max without repeats, one step at a time for
    all users active at that step at once.

    Args:
        model: the parameters; ``model.step_times`` and ``model.step_offsets`` give each user's steps.
        bonus: ``(R, I)`` sequence bonus of each item after a previous item of bonus row ``r``.
        bonus_row: ``(I,)`` the bonus row an item sets up for the next step (e.g. its category and colour).
        rng: the random stream of the choices.

    Returns the chosen item ids ``(S,)``, user by user, in time order (aligned with ``model.step_times``).
    """
    lengths = np.diff(model.step_offsets)
    n_users = model.n_users
    if (lengths > (model.release <= model.release.min()).sum()).any():
        raise ValueError("a user makes more choices than there are items released from the start")
    base = model.static_logits(np.arange(n_users))                           # (U, I)
    out = np.zeros((n_users, lengths.max(initial=0)), dtype=np.int64)
    for t in range(out.shape[1]):
        active = np.flatnonzero(lengths > t)  # users still active were active at t - 1 too
        logits = base[active]                                                  # (A, I) copy
        if t > 0:
            prev = out[active, t - 1]
            logits += bonus[bonus_row[prev]]
            logits[np.repeat(np.arange(len(active)), t), out[active, :t].ravel()] = -np.inf  # no repeats
        now = model.step_times[model.step_offsets[active] + t]
        logits[model.release[None, :] > now[:, None]] = -np.inf               # not released yet
        # Gumbel noise in float32 (half the cost of rng.gumbel's float64 at Baby's size)
        logits -= np.log(-np.log(rng.random(logits.shape, dtype=np.float32) + 1e-12) + 1e-12)
        out[active, t] = logits.argmax(1)
    return out[np.arange(out.shape[1])[None, :] < lengths[:, None]]
