"""The real MovieLens files in the data home (../shared/datasets here): counts, metadata, errors.

Never downloads: every call passes ``download=False`` or a ``path``.
"""

from __future__ import annotations

import numpy as np
import pytest
from conftest import require_dataset

from latentrec.data.filters import kcore
from latentrec.data.movielens import dataset_status, load_movielens, verify_files
from latentrec.errors import DownloadError

pytestmark = pytest.mark.realdata


def test_ml100k_counts_and_metadata():
    folder = require_dataset("ml-100k")
    data = load_movielens("ml-100k", data_home=folder.parent, download=False, verify=True)
    assert (len(data), data.n_users, data.n_items) == (100_000, 943, 1682)
    assert data.rating_scale == (1.0, 5.0)
    assert sorted(np.unique(data.values).tolist()) == [1.0, 2.0, 3.0, 4.0, 5.0]
    assert abs(float(data.values.mean()) - 3.52986) < 1e-4
    assert data.timestamps.min() == 874724710 and data.timestamps.max() == 893286638
    meta = data.item_metadata
    assert len(meta) == 1682
    assert meta.loc[1, "title"] == "Toy Story (1995)" and meta.loc[1, "year"] == 1995
    assert meta.loc[1, "genres"] == "Animation|Children's|Comedy"
    # u.item is Latin-1: byte 0xE9 must come out as an e-acute, not a replacement character
    assert meta.loc[543, "title"] == "Misérables, Les (1995)"
    assert not meta["title"].str.contains("\ufffd").any()
    assert data.user_metadata.shape == (943, 4) and data.user_metadata.loc[1, "occupation"] == "technician"
    assert kcore(data, user_k=20, item_k=1).n_users == 943  # every ml-100k user has >= 20 ratings (README)
    assert len(kcore(data, 20)) < len(data)


def test_ml_latest_small_counts():
    folder = require_dataset("ml-latest-small")
    data = load_movielens("ml-latest-small", data_home=folder.parent, download=False, verify=True)
    assert (len(data), data.n_users, data.n_items) == (100_836, 610, 9724)
    assert data.rating_scale == (0.5, 5.0)
    meta = data.item_metadata
    assert len(meta) == 9742
    assert meta.loc[1, "imdb_id"] == "tt0114709" and meta.loc[1, "tmdb_id"] == 862
    assert meta["year"].notna().mean() > 0.99


def test_ml_latest_small_2016_by_path_autodetect():
    folder = require_dataset("ml-latest-small-2016")
    data = load_movielens(path=folder)
    assert (len(data), data.n_users, data.n_items) == (100_004, 671, 9066)
    assert data.name == "ml-latest-small-2016"
    first = data.to_frame().iloc[np.argmin(data.timestamps)]
    assert data.timestamps.dtype == np.int64 and int(first["timestamp"]) > 7e8


def test_ml100k_by_path_matches_by_name():
    folder = require_dataset("ml-100k")
    a = load_movielens(path=folder)
    b = load_movielens("ml-100k", data_home=folder.parent, download=False)
    assert a.checksum() == b.checksum()


def test_ml1m_without_ratings_says_what_to_place():
    folder = require_dataset("ml-1m")
    if (folder / "ratings.dat").exists():
        pytest.skip("ratings.dat is present here")
    with pytest.raises(DownloadError) as exc:
        load_movielens("ml-1m", data_home=folder.parent, download=False)
    msg = str(exc.value)
    assert "https://files.grouplens.org/datasets/movielens/ml-1m.zip" in msg
    assert f"place ratings.dat" in msg and str(folder) in msg
    status = {name: present for name, present, _ in dataset_status(folder.parent)}
    assert status["ml-1m"] is False and status["ml-100k"] is True
    assert verify_files(folder, "ml-1m") == {"ratings.dat": False, "movies.dat": True, "users.dat": True}
