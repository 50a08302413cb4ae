"""A small dataset with a known answer, shared by the graph, engine and distributed tests."""
import numpy as np
import pandas as pd

import workbench as wb


def planted_dataset(seed: int = 0, groups: int = 6, users_per_group: int = 30, items_per_group: int = 20):
    """Users in groups, each group liking its own items (8 of its group's 20 each, plus one random item);
    item features = the group's centre + noise in two modalities; random 8:1:1 split. Popularity is nearly flat,
    so only a personalised model ranks a user's group items first."""
    rng = np.random.default_rng(seed)
    n_users, n_items = groups * users_per_group, groups * items_per_group
    rows = []
    for u in range(n_users):
        g = u // users_per_group
        own = rng.choice(items_per_group, 8, replace=False) + g * items_per_group
        rows += [(u, int(i)) for i in own] + [(u, int(rng.integers(n_items)))]
    inter = pd.DataFrame(rows, columns=["user_id", "item_id"]).drop_duplicates()
    inter["rating"], inter["timestamp"] = 1.0, np.arange(len(inter))
    item_group = np.arange(n_items) // items_per_group
    feats = {m: (rng.normal(0, 1, (groups, d))[item_group] + 0.3 * rng.normal(0, 1, (n_items, d))).astype(np.float32)
             for m, d in (("image", 24), ("text", 16))}
    ds = wb.RecDataset("planted-groups", inter.reset_index(drop=True), n_users, n_items, feats)
    return ds.with_split(wb.random_split(ds.interactions, seed=seed))
