"""The normalized user-item adjacency and LightGCN propagation.

Normalized adjacency (LightGCN; MoToRec eq. 7 with self-loops)::

    A = [[0, R], [R^T, 0]]            (n_users + n_items) square, R the binary training matrix
    A~ = A + I  if self_loops else A
    A_hat = D^-1/2 A~ D^-1/2          D = diag(row sums of A~)

:class:`NormalizedAdjacency` stores only the two off-diagonal blocks ``R_hat`` ``(n_users, n_items)`` and
``R_hat^T`` as CSR tensors plus the diagonal (self-loop) weights, so one propagation step is two sparse products
and a scaling. Its autograd backward uses the same two blocks (``A_hat`` is symmetric), which avoids the
transposition that ``torch.sparse.mm``'s own backward performs on every call: on a 2-core CPU this halves the
time of a LightGCN epoch.
"""
from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from ..core.sparse import csr_tensor, spmm


class _Bipartite(torch.autograd.Function):
    """``(out_u, out_i) = (R e_i + d_u e_u, R^T e_u + d_i e_i)``; backward by the same (symmetric) operator."""

    @staticmethod
    def forward(ctx, e_u, e_i, fwd_ui, fwd_iu, diag_u, diag_i):
        ctx.save_for_backward(fwd_ui, fwd_iu, diag_u, diag_i)
        return _apply(e_u, e_i, fwd_ui, fwd_iu, diag_u, diag_i)

    @staticmethod
    def backward(ctx, g_u, g_i):
        fwd_ui, fwd_iu, diag_u, diag_i = ctx.saved_tensors
        gu, gi = _apply(g_u.contiguous(), g_i.contiguous(), fwd_ui, fwd_iu, diag_u, diag_i)
        return gu, gi, None, None, None, None


class _FromItems(torch.autograd.Function):
    """One step from item embeddings alone (users at zero): ``(R e_i, d_i e_i)``; backward ``R^T g_u + d_i g_i``.
    Half the sparse products of a full step, and no gradient is formed for the all-zero user input."""

    @staticmethod
    def forward(ctx, e_i, fwd_ui, fwd_iu, diag_i):
        ctx.save_for_backward(fwd_iu, diag_i)
        return _apply(None, e_i, fwd_ui, fwd_iu, None, diag_i)

    @staticmethod
    def backward(ctx, g_u, g_i):
        fwd_iu, diag_i = ctx.saved_tensors
        grad = spmm(fwd_iu, g_u.contiguous())
        if diag_i.numel():
            grad = grad + diag_i[:, None] * g_i
        return grad, None, None, None


def _apply(e_u, e_i, fwd_ui, fwd_iu, diag_u, diag_i):
    """One step ``A_hat (e_u; e_i)``; ``e_u=None`` stands for all-zero users (the user-to-item product is
    skipped)."""
    out_u = spmm(fwd_ui, e_i)
    if e_u is None:
        out_i = diag_i[:, None] * e_i if diag_i.numel() else torch.zeros_like(e_i)
        return out_u, out_i
    out_i = spmm(fwd_iu, e_u)
    if diag_u.numel():
        out_u.addcmul_(diag_u[:, None], e_u)
        out_i.addcmul_(diag_i[:, None], e_i)
    return out_u, out_i


class _LayerMean(torch.autograd.Function):
    """LightGCN's layer mean and the first layer in one autograd node:
    ``mean = sum_{l<=L} A_hat^l E / (L + 1)`` and ``first = A_hat E``, optionally at some rows only
    (``rows = (mean users, mean items, first users, first items)``, each an index tensor or ``None`` for all).

    Both are linear in ``E`` and ``A_hat`` is symmetric, so the backward is the same polynomial applied to the
    incoming gradients, evaluated by Horner's scheme: ``grad = g + A_hat(g + ... A_hat(g + G_first))`` with
    ``g = G_mean / (L + 1)`` (scattered to full size when rows were selected). Nothing but the adjacency is kept
    for the backward (no layer is stored) and sums are accumulated in place or over the selected rows: on a CPU
    the full-size element-wise passes of a layer-by-layer autograd graph (and the full-size zero-filled
    gradient of every row gather) cost as much as the sparse products themselves. ``e_u=None``: users start
    at zero."""

    @staticmethod
    def forward(ctx, e_u, e_i, n_layers, adjacency, rows):
        ctx.adjacency, ctx.n_layers, ctx.from_zero, ctx.rows = adjacency, n_layers, e_u is None, rows
        ctx.set_materialize_grads(False)
        ops = adjacency.operators()
        first = _apply(e_u, e_i, *ops)
        layers, layer = [first], first
        for _ in range(n_layers - 1):
            layer = _apply(*layer, *ops)
            layers.append(layer)
        scale = 1.0 / (n_layers + 1)
        means = []
        for side, start in ((0, e_u), (1, e_i)):
            idx = rows[side]
            parts = [layer[side] if idx is None else layer[side].index_select(0, idx) for layer in layers]
            if start is not None:
                parts.append(start if idx is None else start.index_select(0, idx))
            total = parts[0] + parts[1] if len(parts) > 1 else parts[0].clone()
            for part in parts[2:]:
                total += part
            means.append(total.mul_(scale))
        firsts = [first[side] if rows[2 + side] is None else first[side].index_select(0, rows[2 + side])
                  for side in (0, 1)]
        return means[0], means[1], firsts[0], firsts[1]

    @staticmethod
    def backward(ctx, g_mean_u, g_mean_i, g_first_u, g_first_i):
        adjacency, n_layers, rows = ctx.adjacency, ctx.n_layers, ctx.rows
        fwd_ui, fwd_iu, diag_u, diag_i = ops = adjacency.operators()
        given = [g for g in (g_mean_u, g_mean_i, g_first_u, g_first_i) if g is not None]
        if not given:
            return None, None, None, None, None
        ref, scale = given[0], 1.0 / (n_layers + 1)
        sizes = (adjacency.n_users, adjacency.n_items)

        def full(g, idx, side):
            """The incoming gradient of a mean output at full size, times ``1 / (L + 1)`` (a fresh tensor)."""
            if g is None:
                return ref.new_zeros(sizes[side], ref.shape[1])
            if idx is None:
                return (g * scale).contiguous()
            return ref.new_zeros(sizes[side], g.shape[1]).index_add_(0, idx, g, alpha=scale)

        g_u, g_i = full(g_mean_u, rows[0], 0), full(g_mean_i, rows[1], 1)
        h_u, h_i = g_u, g_i
        for _ in range(n_layers - 1):
            h_u, h_i = _apply(h_u, h_i, *ops)
            h_u += g_u
            h_i += g_i
        def add_first(h, g_first, idx, g):
            """``h + G_first`` (scattered to ``idx`` rows), in place unless ``h`` is still ``g`` (L = 1)."""
            if g_first is None:
                return h
            h = h.clone() if h is g else h
            return h.add_(g_first) if idx is None else h.index_add_(0, idx, g_first)

        h_u, h_i = add_first(h_u, g_first_u, rows[2], g_u), add_first(h_i, g_first_i, rows[3], g_i)
        grad_i = spmm(fwd_iu, h_u)
        if diag_i.numel():
            grad_i.addcmul_(diag_i[:, None], h_i)
        grad_i += g_i
        grad_u = None
        if not ctx.from_zero and ctx.needs_input_grad[0]:
            grad_u = spmm(fwd_ui, h_i)
            if diag_u.numel():
                grad_u.addcmul_(diag_u[:, None], h_u)
            grad_u += g_u
        return grad_u, grad_i, None, None, None


class NormalizedAdjacency:
    """Symmetric-normalized user-item adjacency of a binary ``(n_users, n_items)`` matrix (see module doc).

    ``step(e_u, e_i)`` applies ``A_hat`` once; ``propagate(e_u, e_i, layers)`` returns LightGCN's layer mean
    ``mean(E^(0..L))``; ``edge_weights`` are optional per-nonzero multipliers of ``R`` (FREEDOM's pruning passes
    a 0/1 mask)."""

    def __init__(self, matrix: sp.spmatrix, self_loops: bool = False, device: torch.device | str | None = None,
                 edge_weights: np.ndarray | None = None):
        R = sp.csr_matrix(matrix, dtype=np.float32, copy=True)
        R.sum_duplicates()
        R.data[:] = 1.0 if edge_weights is None else np.asarray(edge_weights, dtype=np.float32)
        R.eliminate_zeros()
        self.n_users, self.n_items = R.shape
        self.self_loops = self_loops
        loop = 1.0 if self_loops else 0.0
        deg_u = np.asarray(R.sum(1)).ravel() + loop
        deg_i = np.asarray(R.sum(0)).ravel() + loop
        with np.errstate(divide="ignore"):
            inv_u = np.where(deg_u > 0, deg_u ** -0.5, 0.0).astype(np.float32)
            inv_i = np.where(deg_i > 0, deg_i ** -0.5, 0.0).astype(np.float32)
        R_hat = sp.csr_matrix(sp.diags(inv_u) @ R @ sp.diags(inv_i))
        self.R_hat = R_hat
        self.fwd_ui = csr_tensor(R_hat, device)
        self.fwd_iu = csr_tensor(R_hat.T.tocsr(), device)
        if self_loops:
            self.diag_u = torch.as_tensor(inv_u ** 2 * loop, device=device)
            self.diag_i = torch.as_tensor(inv_i ** 2 * loop, device=device)
        else:
            self.diag_u = torch.zeros(0, device=device)
            self.diag_i = torch.zeros(0, device=device)

    @property
    def nnz(self) -> int:
        return int(self.R_hat.nnz)

    def to(self, device: torch.device | str) -> "NormalizedAdjacency":
        for name in ("fwd_ui", "fwd_iu", "diag_u", "diag_i"):
            setattr(self, name, getattr(self, name).to(device))
        return self

    def operators(self) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(R_hat, R_hat^T, self-loop weights of users, of items)``; the weights are empty without self-loops."""
        return self.fwd_ui, self.fwd_iu, self.diag_u, self.diag_i

    def step(self, e_u: torch.Tensor, e_i: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """One application of ``A_hat`` to user ``(n_users, d)`` and item ``(n_items, d)`` embeddings."""
        return _Bipartite.apply(e_u.contiguous(), e_i.contiguous(), self.fwd_ui, self.fwd_iu, self.diag_u, self.diag_i)

    def layers(self, e_u: torch.Tensor | None, e_i: torch.Tensor, n_layers: int
               ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """``[E^(0), ..., E^(L)]``. ``e_u=None`` means users start at zero (a content channel: users have no
        content of their own); the first step then skips the user-to-item product."""
        if e_u is None:
            zeros = e_i.new_zeros(self.n_users, e_i.shape[1])
            out = [(zeros, e_i)]
            if n_layers:
                out.append(_FromItems.apply(e_i.contiguous(), self.fwd_ui, self.fwd_iu, self.diag_i))
        else:
            out = [(e_u, e_i)]
        while len(out) <= n_layers:
            out.append(self.step(*out[-1]))
        return out

    def propagate(self, e_u: torch.Tensor | None, e_i: torch.Tensor, n_layers: int) -> tuple[torch.Tensor, torch.Tensor]:
        """LightGCN: the mean of ``E^(0..L)`` (layer averaging)."""
        mean_u, mean_i, _, _ = self.propagate_with_first(e_u, e_i, n_layers)
        return mean_u, mean_i

    def propagate_with_first(self, e_u: torch.Tensor | None, e_i: torch.Tensor, n_layers: int):
        """``(mean_u, mean_i, first_u, first_i)``: the layer mean and the first propagated layer ``A_hat E``
        (``E`` itself when ``n_layers == 0``), both differentiable."""
        return self.propagate_at(e_u, e_i, n_layers)

    def propagate_at(self, e_u: torch.Tensor | None, e_i: torch.Tensor, n_layers: int,
                     user_rows: torch.Tensor | None = None, item_rows: torch.Tensor | None = None,
                     first_user_rows: torch.Tensor | None = None, first_item_rows: torch.Tensor | None = None):
        """:meth:`propagate_with_first` at given rows only: ``(mean_u[user_rows], mean_i[item_rows],
        first_u[first_user_rows], first_i[first_item_rows])`` (``None``: every row). A training batch needs
        the embeddings of its own users and items alone; selecting them inside the propagation saves the
        full-size layer sums and the full-size gradient of each separate gather."""
        if n_layers == 0:
            e_u = e_i.new_zeros(self.n_users, e_i.shape[1]) if e_u is None else e_u

            def pick(t, idx):
                return t if idx is None else t.index_select(0, idx)
            return (pick(e_u, user_rows), pick(e_i, item_rows), pick(e_u, first_user_rows),
                    pick(e_i, first_item_rows))
        return _LayerMean.apply(None if e_u is None else e_u.contiguous(), e_i.contiguous(), n_layers, self,
                                (user_rows, item_rows, first_user_rows, first_item_rows))

    def dense(self) -> np.ndarray:
        """``A_hat`` as a dense ``(n, n)`` array (tests and teaching only)."""
        n = self.n_users + self.n_items
        out = np.zeros((n, n), dtype=np.float64)
        out[:self.n_users, self.n_users:] = self.R_hat.toarray()
        out[self.n_users:, :self.n_users] = self.R_hat.T.toarray()
        if self.self_loops:
            out[np.arange(n), np.arange(n)] = np.concatenate([self.diag_u.cpu().numpy(), self.diag_i.cpu().numpy()])
        return out


def layer_mean(layers: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over layers of ``[(users, items), ...]``."""
    users, items = layers[0]
    for u, i in layers[1:]:  # a running sum: no stacked copy of every layer
        users, items = users + u, items + i
    return users / len(layers), items / len(layers)
