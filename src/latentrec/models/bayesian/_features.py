"""Feature blocks of :class:`BayesianFM`: relations, groups and the arrays the kernels read.

A rating row points at one user, one item and (with ``"day"``) one day. Each of
these *relations* carries its own sparse feature rows (Rendle 2013's repeated
blocks), built here once per fit:

========================  =========  ====================================================
preset                    relation   features of the entity (one prior group each)
========================  =========  ====================================================
(always)                  user       the user's id (one-hot)
(always)                  item       the item's id (one-hot)
``"implicit_user"``       user       the items the user rated, each 1/sqrt(|N(u)|) (SVD++)
``"implicit_item"``       item       the users who rated the item, each 1/sqrt(|N(i)|) ("flipped")
``"day"``                 day        the day of the rating (one-hot; days since the epoch)
``"user_day"``            user_day   the (user, day) pair of the rating, one-hot (timeSVD++'s
                                     day-specific user bias and factor); one more entity
                                     without rows stands for every pair not seen in training
``"user_attributes"``     user       one group per column of ``user_metadata`` (one-hot;
                                     numbers with many values in up to 10 quantile bins)
``"item_attributes"``     item       ``genres`` (multi-hot, each 1/sqrt(#genres)) and
                                     ``year`` (one-hot decade) of ``item_metadata``
========================  =========  ====================================================
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import pandas as pd
import scipy.sparse as sp

from ...data.interactions import Interactions
from ...data.vocab import Vocabulary
from ...errors import DataError

PRESETS = ("implicit_user", "implicit_item", "day", "user_day", "user_attributes", "item_attributes")
SECONDS_PER_DAY = 86_400
#: user_metadata columns with more distinct values than this (zip codes, names) are not used
MAX_CATEGORIES = 100


@dataclass
class Design:
    """The relational design of one fit (all arrays as the kernels take them)."""

    relations: list[str]
    ent_start: np.ndarray           # (R + 1,) global entity range of each relation
    rel_groups: np.ndarray          # (R + 1,) group range of each relation
    group_names: list[str]
    g_start: np.ndarray             # (G + 1,) feature range of each group
    g_onehot: np.ndarray            # (G,) every entity has at most one feature of the group
    ef: sp.csr_matrix               # entity x feature (global ids)
    fe: sp.csc_matrix               # the same, by column
    days: np.ndarray | None = None  # sorted training day numbers (relation "day")
    day_weights: np.ndarray | None = None  # share of training rows on each day
    session_users: np.ndarray | None = None  # (user code, day number) of every training pair, sorted
    session_days: np.ndarray | None = None   # (relation "user_day"; its last entity is the unseen pair)

    @property
    def n_features(self) -> int:
        return int(self.g_start[-1])

    @property
    def n_entities(self) -> int:
        return int(self.ent_start[-1])


def check_features(features) -> tuple[str, ...]:
    """The presets as a tuple of known names (ModelError-free: the estimator reports)."""
    if isinstance(features, str):
        features = (features,)
    return tuple(features)


def day_numbers(timestamps: np.ndarray) -> np.ndarray:
    return np.floor_divide(np.asarray(timestamps, dtype=np.int64), SECONDS_PER_DAY)


def _onehot(codes: np.ndarray, n: int, n_rows: int) -> sp.csr_matrix:
    rows = np.flatnonzero(codes >= 0)
    return sp.csr_matrix((np.ones(len(rows)), (rows, codes[rows])), shape=(n_rows, n))


def _row_normalised(m: sp.csr_matrix) -> sp.csr_matrix:
    m = sp.csr_matrix(m, dtype=np.float64, copy=True)
    m.data[:] = 1.0
    n = np.diff(m.indptr)
    m.data /= np.sqrt(np.repeat(np.maximum(n, 1), n))
    return m


def _user_attribute_blocks(meta: pd.DataFrame | None, users, n_users: int):
    if meta is None or len(meta.columns) == 0:
        raise DataError("BayesianFM: feature 'user_attributes' needs a user side table: the training data's "
                        "user_metadata is missing (columns such as 'age', 'gender', 'occupation')")
    table = meta.reindex(pd.Index(users.ids))
    blocks = []
    for col in meta.columns:
        values = table[col]
        known = meta[col].dropna()
        if pd.api.types.is_numeric_dtype(known) and known.nunique() > 20:
            edges = np.unique(np.quantile(known.to_numpy(np.float64), np.linspace(0, 1, 11)[1:-1]))
            codes = np.where(values.isna(), -1, np.searchsorted(edges, values.to_numpy(np.float64), side="right"))
            n_cat = len(edges) + 1
        else:
            if known.nunique() > MAX_CATEGORIES:
                continue
            cats = pd.Index(sorted(known.astype(str).unique()))
            codes = np.where(values.isna(), -1, cats.get_indexer(values.astype(str)))
            n_cat = len(cats)
        blocks.append((f"user:{col}", _onehot(np.asarray(codes, np.int64), n_cat, n_users), True))
    if not blocks:
        raise DataError("BayesianFM: feature 'user_attributes': user_metadata has no usable column "
                        f"(columns {list(meta.columns)}; each needs at most {MAX_CATEGORIES} values or be numeric)")
    return blocks


def _item_attribute_blocks(meta: pd.DataFrame | None, items, n_items: int):
    wanted = ("genres", "year")
    if meta is None or not any(c in meta.columns for c in wanted):
        have = [] if meta is None else list(meta.columns)
        raise DataError("BayesianFM: feature 'item_attributes' needs item_metadata with a 'genres' or 'year' "
                        f"column; the training data has {'no item_metadata' if meta is None else have}")
    table = meta.reindex(pd.Index(items.ids))
    blocks = []
    if "genres" in meta.columns:
        lists = table["genres"].fillna("").astype(str).str.split("|")
        names = sorted({g for gs in lists for g in gs if g})
        pos = {g: j for j, g in enumerate(names)}
        rows, cols = [], []
        for r, gs in enumerate(lists):
            for g in gs:
                if g:
                    rows.append(r)
                    cols.append(pos[g])
        m = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n_items, len(names)))
        blocks.append(("item:genres", _row_normalised(m), False))
    if "year" in meta.columns:
        year = pd.to_numeric(table["year"], errors="coerce")
        decade = (year // 10).to_numpy(np.float64)
        ok = np.isfinite(decade)
        cats = np.unique(decade[ok]).astype(np.int64)
        codes = np.full(n_items, -1, np.int64)
        codes[ok] = np.searchsorted(cats, decade[ok].astype(np.int64))
        blocks.append(("item:year", _onehot(codes, len(cats), n_items), True))
    return blocks


def add_side_only_entities(data: Interactions, features: tuple[str, ...]) -> Interactions:
    """``data`` with the users (items) of its side table that have no training row appended to its
    vocabulary, when ``user_attributes`` (``item_attributes``) is among the features.

    Such an entity has no rows, so the sampler draws its id's parameters from their group prior
    and its prediction comes from its attributes (cold start); without the attribute preset it
    stays unknown and gets the bias fallback.
    """
    def extend(vocab, meta, preset):
        if preset not in features or meta is None:
            return vocab
        extra = pd.Index(meta.index).difference(pd.Index(vocab.ids), sort=False)
        if len(extra) == 0:
            return vocab
        return Vocabulary(np.concatenate([vocab.ids, np.asarray(extra, dtype=vocab.ids.dtype)]))

    users = extend(data.users, data.user_metadata, "user_attributes")
    items = extend(data.items, data.item_metadata, "item_attributes")
    if users is data.users and items is data.items:
        return data
    return replace(data, users=users, items=items, _csr=None)


def build_design(data: Interactions, features: tuple[str, ...]) -> tuple[Design, np.ndarray]:
    """The design of ``data`` (model codes) and the (N, R) entity index of its rows."""
    n_u, n_i = data.n_users, data.n_items
    R = data.to_csr().astype(np.float64)
    rel_blocks: dict[str, list] = {
        "user": [("user", sp.identity(n_u, format="csr"), True)],
        "item": [("item", sp.identity(n_i, format="csr"), True)],
    }
    if "implicit_user" in features:
        rel_blocks["user"].append(("implicit_user", _row_normalised(R), False))
    if "user_attributes" in features:
        rel_blocks["user"] += _user_attribute_blocks(data.user_metadata, data.users, n_u)
    if "implicit_item" in features:
        rel_blocks["item"].append(("implicit_item", _row_normalised(R.T.tocsr()), False))
    if "item_attributes" in features:
        rel_blocks["item"] += _item_attribute_blocks(data.item_metadata, data.items, n_i)
    row_codes = [data.user_codes.astype(np.int64), data.item_codes.astype(np.int64)]
    days = weights = s_users = s_days = None
    for preset in ("day", "user_day"):
        if preset in features and data.timestamps is None:
            raise DataError(f"BayesianFM: feature '{preset}' needs rating timestamps; the training data has no "
                            "'timestamp' column")
    d = day_numbers(data.timestamps) if {"day", "user_day"} & set(features) else None
    if "day" in features:
        days, day_codes, counts = np.unique(d, return_inverse=True, return_counts=True)
        weights = counts / counts.sum()
        rel_blocks["day"] = [("day", sp.identity(len(days), format="csr"), True)]
        row_codes.append(day_codes.astype(np.int64))
    if "user_day" in features:
        pairs = np.column_stack([data.user_codes.astype(np.int64), d])
        uniq, pair_codes = np.unique(pairs, axis=0, return_inverse=True)
        s_users, s_days = uniq[:, 0].copy(), uniq[:, 1].copy()
        rel_blocks["user_day"] = [("user_day", sp.identity(len(uniq) + 1, format="csr"), True)]
        row_codes.append(pair_codes.reshape(-1).astype(np.int64))

    relations = list(rel_blocks)
    group_names, sizes, onehot, mats = [], [], [], []
    ent_start, rel_groups = [0], [0]
    for rel in relations:
        blocks = [b for b in rel_blocks[rel] if b[1].shape[1] > 0]
        ent_start.append(ent_start[-1] + blocks[0][1].shape[0])
        rel_groups.append(rel_groups[-1] + len(blocks))
        for name, m, is_onehot in blocks:
            group_names.append(name)
            sizes.append(m.shape[1])
            onehot.append(bool(is_onehot and (np.diff(sp.csr_matrix(m).indptr) <= 1).all()))
        mats.append(sp.hstack([b[1] for b in blocks], format="csr"))
    ef = sp.block_diag(mats, format="csr", dtype=np.float64)
    ef.sort_indices()
    fe = ef.tocsc()
    fe.sort_indices()
    idx = np.column_stack([c + ent_start[r] for r, c in enumerate(row_codes)]).astype(np.int32)
    design = Design(relations=relations, ent_start=np.asarray(ent_start, np.int64),
                    rel_groups=np.asarray(rel_groups, np.int64), group_names=group_names,
                    g_start=np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64),
                    g_onehot=np.asarray(onehot, np.bool_), ef=ef, fe=fe, days=days, day_weights=weights,
                    session_users=s_users, session_days=s_days)
    return design, idx


def rows_index(design: Design, user_codes, item_codes, timestamps) -> np.ndarray:
    """(n, R) entity index of rows given in the design's user and item codes (-1 = no entity: an
    unknown user or item). The day is the nearest training day; a (user, day) pair unseen in
    training (or of an unknown user) is the user_day relation's last, row-less entity."""
    u, i = np.asarray(user_codes, np.int64), np.asarray(item_codes, np.int64)
    cols = [np.where(u >= 0, u + design.ent_start[0], -1), np.where(i >= 0, i + design.ent_start[1], -1)]
    for r, rel in enumerate(design.relations[2:], start=2):
        if timestamps is None:
            raise DataError(f"BayesianFM with feature '{rel}' needs the timestamps of the evaluation rows")
        if rel == "day":
            cols.append(nearest_day(design.days, timestamps) + design.ent_start[r])
        else:
            cols.append(session_codes(design.session_users, design.session_days, u, timestamps) + design.ent_start[r])
    return np.column_stack(cols).astype(np.int32)


def entity_rows(idx: np.ndarray, n_entities: int) -> tuple[np.ndarray, np.ndarray]:
    """CSR of entity -> the rows that point at it (every relation's column of ``idx``)."""
    flat = idx.ravel(order="F").astype(np.int64)
    rows = np.tile(np.arange(idx.shape[0], dtype=np.int32), idx.shape[1])
    keep = flat >= 0
    flat, rows = flat[keep], rows[keep]
    order = np.argsort(flat, kind="stable")
    counts = np.bincount(flat, minlength=n_entities)
    ptr = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return ptr, rows[order].astype(np.int32)


def nearest_day(days: np.ndarray, timestamps: np.ndarray) -> np.ndarray:
    """Code of each timestamp's day among the sorted training ``days``; an unseen day maps to the
    nearest training day (the earlier one on a tie)."""
    d = day_numbers(timestamps)
    pos = np.searchsorted(days, d)
    lo = np.clip(pos - 1, 0, len(days) - 1)
    hi = np.clip(pos, 0, len(days) - 1)
    return np.where(np.abs(days[hi] - d) < np.abs(d - days[lo]), hi, lo).astype(np.int64)


def session_codes(session_users: np.ndarray, session_days: np.ndarray, user_codes, timestamps) -> np.ndarray:
    """Code of each row's (user, day) pair among the sorted training pairs; a pair not seen in
    training (or an unknown user, code -1) gets ``len(session_users)``, the unseen-pair entity."""
    n_pairs = len(session_users)
    u = np.asarray(user_codes, np.int64)
    d = day_numbers(timestamps)
    out = np.full(len(u), n_pairs, np.int64)
    if n_pairs == 0 or len(u) == 0:
        return out
    lo, span = int(session_days.min()), int(session_days.max() - session_days.min()) + 1
    keys = session_users * span + (session_days - lo)  # sorted: the pairs are sorted by (user, day)
    ok = (u >= 0) & (d >= lo) & (d < lo + span)
    q = u[ok] * span + (d[ok] - lo)
    pos = np.minimum(np.searchsorted(keys, q), n_pairs - 1)
    out[np.flatnonzero(ok)] = np.where(keys[pos] == q, pos, n_pairs)
    return out
