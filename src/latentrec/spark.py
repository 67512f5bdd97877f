"""Train ALS on Apache Spark MLlib and use the result like any latentrec model.

When interactions outgrow one machine, :class:`SparkALS` hands training to
Spark's distributed ALS and collects the user and item factors into the same
arrays as latentrec's own models (``user_factors_``, ``item_factors_``,
``user_bias_``, ``item_bias_``, ``global_mean_``), so ``predict``,
``recommend``, ``similar_items``, ``save``/``load``, ``evaluate``, the report and
the web service work unchanged on the result. Scoring all users of a catalogue
too large to collect stays on Spark: :meth:`SparkALS.recommend_all_to_parquet`.

Semantics to know when comparing with :class:`latentrec.models.ALS` /
:class:`latentrec.models.ImplicitALS`:

* Spark's ``regParam`` is scaled by each user's / item's number of ratings
  (ALS-WR): the penalty on p_u is λ·|I_u|·‖p_u‖², in explicit and implicit
  mode. latentrec's explicit :class:`~latentrec.models.ALS` scales λ the same
  way, so one λ means the same on both engines; :class:`~latentrec.models.ImplicitALS`
  (like the ``implicit`` library) uses a fixed λ, so tune it separately.
  ``regularization`` here is passed to Spark as is.
* Spark's implicit confidence is c_ui = 1 + α·|d_ui| (Hu–Koren–Volinsky), the
  same as ``ImplicitALS(confidence="linear")``.
* Spark's ALS has no biases. With ``biased=True`` (explicit only) SparkALS
  first fits damped biases μ + b_u + b_i with Spark aggregations (alternating
  sweeps, as :class:`latentrec.models.Biases`) and trains ALS on the residuals,
  so the model has latentrec ALS's form μ + b_u + b_i + p_u·q_i.
* Spark's ALS needs int32 ids. Integer ids that fit int32 are used directly;
  any other ids (strings, int64 beyond 2^31−1) are indexed to int32 codes first;
  more than 2^31−1 distinct users or items cannot be trained and raise DataError.

Seen items stay on the cluster. A fit on a Spark DataFrame or a path keeps the
(user, item) pairs there: ``recommend`` fetches only the requested users' pairs,
and :meth:`SparkALS.recommend_all_to_parquet` joins each user's list of seen
items to their factors inside Spark. The whole ``seen_`` matrix comes to the
driver only when something needs all of it there (``save``, the web service's
history, reading ``model.seen_``).
"""

from __future__ import annotations

import os
import re
import shutil
import sys

import numpy as np
import pandas as pd
import scipy.sparse as sp

from .data.interactions import Interactions
from .data.vocab import Vocabulary
from .errors import DataError, ModelError, require
from .models.base import FactorModel, Interval, Options

_MASTER = re.compile(r"^(local(\[(\*|\d+)(,\s*\d+)?\])?|spark://[^\s/]+(:\d+)?(,[^\s/]+(:\d+)?)*|yarn|k8s://\S+|mesos://\S+)$")
INT32_MAX = 2**31 - 1
_ISIN_MAX = 5000  # users fetched with an isin filter; more go through a broadcast join


def _check_java() -> None:
    java_home = os.environ.get("JAVA_HOME")
    if java_home and os.path.exists(os.path.join(java_home, "bin", "java")):
        return
    if shutil.which("java") is None:
        raise ModelError("SparkALS needs a Java runtime (Java 17 for Spark 4) and none was found: "
                         "install one (e.g. apt-get install openjdk-17-jre-headless) or set JAVA_HOME")


def _check_reachable(master: str, timeout: float = 5.0) -> None:
    """A standalone master URL (``spark://host:port[,host:port]``) must accept a TCP connection:
    Spark itself would otherwise retry for minutes before failing the first job."""
    import socket

    if not master.startswith("spark://"):
        return
    errors = []
    for hostport in master[len("spark://"):].split(","):
        host, _, port = hostport.partition(":")
        try:
            with socket.create_connection((host, int(port or 7077)), timeout=timeout):
                return
        except OSError as exc:
            errors.append(f"{host}:{port or 7077} ({exc})")
    raise ModelError(f"cannot reach the Spark master {master!r}: {'; '.join(errors)}; check the URL, "
                     "that the master is running and that this machine may connect to it")


#: ``LATENTREC_SPARK_LOG_LEVEL``: unset, the JVM's output goes to a log file; set, to stderr at this log4j level
LOG_LEVEL_VARIABLE = "LATENTREC_SPARK_LOG_LEVEL"
_LOG_LEVELS = ("ALL", "TRACE", "DEBUG", "INFO", "WARN", "ERROR", "FATAL", "OFF")
#: the file the JVM of this process writes its output to (set when a quiet session starts its JVM)
log_file: str | None = None


def _log_level() -> str | None:
    """The log4j level asked for with ``LATENTREC_SPARK_LOG_LEVEL`` (None: unset, Spark runs quiet)."""
    raw = os.environ.get(LOG_LEVEL_VARIABLE, "").strip()
    if not raw:
        return None
    if raw.upper() not in _LOG_LEVELS:
        raise ModelError(f"{LOG_LEVEL_VARIABLE} must be a log4j level, one of {', '.join(_LOG_LEVELS)} "
                         f"(or unset: Spark's messages go to a log file), got {raw!r}")
    return raw.upper()


def _start_quiet_jvm(conf) -> None:
    """Start Spark's JVM with its stdout and stderr (log4j's console, the JVM's and native
    libraries' warnings, the Python workers' stderr) in ``$TMPDIR/latentrec-spark-*.log``, and
    say where in one line on stderr. PySpark's FutureWarning that it "does not yet fully support
    pandas >= 3" is not shown either (docs/spark.md: everything SparkALS uses is tested with pandas 3)."""
    import tempfile
    import warnings

    from pyspark import SparkContext
    from pyspark.java_gateway import launch_gateway

    global log_file
    warnings.filterwarnings("ignore", message="PySpark does not yet fully support pandas", category=FutureWarning)
    fd, path = tempfile.mkstemp(prefix="latentrec-spark-", suffix=".log")
    with os.fdopen(fd, "wb") as out:  # the JVM keeps its own copy of the descriptor
        try:
            gateway = launch_gateway(conf, popen_kwargs={"stdout": out, "stderr": out})
        except Exception as exc:
            raise ModelError(f"could not start Spark's JVM: {exc}; its output is in {path}") from exc
    SparkContext(conf=conf, gateway=gateway)
    log_file = path
    print(f"Spark's JVM and log messages go to {path} ({LOG_LEVEL_VARIABLE}=WARN shows them here)",
          file=sys.stderr)


def get_spark(master: str = "local[*]", *, app_name: str = "latentrec", driver_memory: str = "4g",
              config: dict | None = None):
    """A SparkSession for latentrec (an existing active session is reused).

    Quiet by default: when this call starts Spark's JVM, everything the JVM prints goes to a log
    file (:data:`log_file`, named in one line on stderr) instead of some hundred lines of
    warnings on stderr. ``LATENTREC_SPARK_LOG_LEVEL=WARN`` (or INFO, DEBUG, ERROR, ...) leaves
    the JVM's output on stderr and sets Spark's log level to it. With a ``local`` master and
    no ``PYSPARK_PYTHON`` set, the Python workers run this interpreter (``sys.executable``).
    """
    require("pyspark", "spark", "SparkALS")
    if not isinstance(master, str) or not _MASTER.match(master.strip()):
        raise ModelError(f"master must be a Spark master URL such as 'local[2]', 'local[*]', "
                         f"'spark://host:7077', 'yarn' or 'k8s://...', got {master!r}")
    level = _log_level()
    _check_java()
    from pyspark import SparkConf, SparkContext
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:
        return active
    _check_reachable(master.strip())
    if master.strip().startswith("local"):
        # local Python workers run this interpreter (with its pandas and numpy), not whatever
        # `python3` is first on PATH (PySpark's default), unless the user chose one
        os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    conf = (SparkConf().setMaster(master).setAppName(app_name)
            .set("spark.driver.memory", driver_memory)
            .set("spark.ui.enabled", "false")
            .set("spark.ui.showConsoleProgress", "false")
            .set("spark.sql.execution.arrow.pyspark.enabled", "true")
            .set("spark.sql.shuffle.partitions", "8")
            .set("spark.driver.bindAddress", "127.0.0.1")
            .set("spark.driver.host", "127.0.0.1"))
    for key, value in (config or {}).items():
        conf.set(key, str(value))
    try:
        if level is None and SparkContext._gateway is None:  # no JVM in this process yet: start it quiet
            _start_quiet_jvm(conf)
        session = SparkSession.builder.config(conf=conf).getOrCreate()
    except ModelError:
        raise
    except Exception as exc:  # py4j / JVM start-up failures
        where = f" (Spark's output is in {log_file})" if log_file else ""
        raise ModelError(f"could not start Spark with master {master!r}: {exc}{where}") from exc
    if level is not None:
        session.sparkContext.setLogLevel(level)
    return session


def _is_spark_frame(X) -> bool:
    return type(X).__module__.startswith("pyspark.sql") and hasattr(X, "schema")


class SparkALS(FactorModel):
    """Alternating least squares trained by Spark MLlib, collected into a latentrec model.

    Parameters
    ----------
    n_factors : int, default 10
        Rank k of the factorisation (Spark's ``rank``).
    regularization : float, default 0.1
        Spark's ``regParam`` (scaled by each row's count by Spark, see module docs).
    n_epochs : int, default 10
        ALS sweeps (Spark's ``maxIter``).
    implicit : bool, default False
        Train weighted ALS on implicit feedback (``implicitPrefs``).
    alpha : float, default 1.0
        Implicit confidence scaling, c_ui = 1 + α·d_ui.
    nonnegative : bool, default False
        Non-negative least squares for the factors.
    biased : bool, default True
        Explicit only: fit damped biases first and factorise the residuals.
    item_damping, user_damping : float, default 2 and 5
        Pseudo-counts shrinking each item's / user's bias towards zero (the
        defaults of :class:`~latentrec.models.Biases`, chosen on validation).
    bias_sweeps : int, default 3
        Alternating item/user sweeps fitting the biases (each is two Spark
        aggregations; the RMSE gain flattens after 3 on ml-100k).
    master : str, default "local[*]"
        Spark master URL, used to start a session when none is active (an active
        SparkSession, e.g. one made by :func:`get_spark` or a cluster's notebook, is used as is).
    checkpoint_dir : str, optional
        Where Spark checkpoints long runs (every ``checkpoint_interval`` sweeps).
    checkpoint_interval : int, default 10
    n_blocks : int, optional
        Spark's numUserBlocks/numItemBlocks (default: Spark's default parallelism).
    random_state : int, default 0
        Spark's ``seed``.
    """

    _constraints = {
        "n_factors": Interval(int, 1, None),
        "regularization": Interval(float, 0, None),
        "n_epochs": Interval(int, 1, None),
        "implicit": Options(True, False),
        "alpha": Interval(float, 0, None),
        "nonnegative": Options(True, False),
        "biased": Options(True, False),
        "item_damping": Interval(float, 0, None),
        "user_damping": Interval(float, 0, None),
        "bias_sweeps": Interval(int, 1, None),
        "checkpoint_interval": Interval(int, 1, None),
        "n_blocks": Interval(int, 1, None, none_ok=True),
        "random_state": Interval(int, 0, None),
    }

    def __init__(self, *, n_factors: int = 10, regularization: float = 0.1, n_epochs: int = 10,
                 implicit: bool = False, alpha: float = 1.0, nonnegative: bool = False, biased: bool = True,
                 item_damping: float = 2.0, user_damping: float = 5.0, bias_sweeps: int = 3, master: str = "local[*]", checkpoint_dir: str | None = None,
                 checkpoint_interval: int = 10, n_blocks: int | None = None, random_state: int = 0):
        self.n_factors = n_factors
        self.regularization = regularization
        self.n_epochs = n_epochs
        self.implicit = implicit
        self.alpha = alpha
        self.nonnegative = nonnegative
        self.biased = biased
        self.item_damping = item_damping
        self.user_damping = user_damping
        self.bias_sweeps = bias_sweeps
        self.master = master
        self.checkpoint_dir = checkpoint_dir
        self.checkpoint_interval = checkpoint_interval
        self.n_blocks = n_blocks
        self.random_state = random_state

    @property
    def task(self) -> str:  # evaluated as a ranking model when trained on implicit feedback
        return "implicit" if self.implicit else "explicit"

    # ------------------------------------------------------------------ fitting
    def fit(self, X, y=None, *, user: str = "user", item: str = "item", rating: str | None = "rating",
            **kwargs):
        """Fit on Interactions / a pandas DataFrame (collected locally, as every latentrec model),
        or on a Spark DataFrame or a Parquet/CSV path readable by Spark (indexed and trained on Spark).
        """
        old = self.__dict__.get("_seen_frame")
        if old is not None:
            old.unpersist()
        self._seen_frame = None
        if isinstance(X, (str, os.PathLike)) or _is_spark_frame(X):
            return self._fit_distributed(X, user=user, item=item, rating=rating)
        return super().fit(X, y, **kwargs)

    # ------------------------------------------------------------------ seen pairs kept on Spark
    def __getattr__(self, name):
        # only reached when ``name`` is not set: the seen matrix of a distributed fit, collected on demand
        if name == "seen_" and self.__dict__.get("_seen_frame") is not None:
            seen = self._seen_items().fetch(None)
            self.seen_ = seen
            return seen
        raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")

    def _seen_on_cluster(self) -> bool:
        return "seen_" not in self.__dict__ and self.__dict__.get("_seen_frame") is not None

    def _seen_items(self):
        # a distributed fit's seen pairs stay on Spark: recommend fetches only the rows it ranks
        if self._seen_on_cluster():
            return _SparkSeenItems(self._seen_frame, len(self.users_), len(self.items_))
        return super()._seen_items()

    def save(self, path, *, seen: bool = True):
        """Save as every latentrec model; a distributed fit first collects ``seen_`` unless ``seen=False``
        (then no interaction comes to the driver, and the loaded model takes ``recommend(seen=...)``)."""
        self._check_fitted()
        if seen:
            _ = self.seen_
        return super().save(path, seen=seen)

    def _session(self):
        return get_spark(self.master)

    def _fit(self, data: Interactions, eval_data):
        spark = self._session()
        frame = pd.DataFrame({"user": data.user_codes, "item": data.item_codes,
                              "rating": data.values.astype(np.float64)})
        sdf = spark.createDataFrame(frame)
        self._train(sdf, data.n_users, data.n_items)

    def _fit_distributed(self, X, *, user, item, rating):
        from pyspark.sql import functions as F

        self._validate_params()  # before any Spark work
        spark = self._session()
        if isinstance(X, (str, os.PathLike)):
            path = os.fspath(X)
            reader = spark.read
            sdf = reader.parquet(path) if path.endswith(".parquet") or os.path.isdir(path) else \
                reader.option("header", "true").option("inferSchema", "true").csv(path)
        else:
            sdf = X
        missing = [c for c in (user, item) + ((rating,) if rating else ()) if c not in sdf.columns]
        if missing:
            raise DataError(f"column(s) {missing} not found; columns are {sdf.columns}")
        cols = [F.col(user).alias("uid"), F.col(item).alias("iid")]
        cols.append(F.col(rating).cast("double").alias("rating") if rating else F.lit(1.0).alias("rating"))
        sdf = sdf.select(*cols)
        bad = sdf.filter(F.col("rating").isNull() | F.isnan("rating") | F.col("uid").isNull() | F.col("iid").isNull())
        first_bad = bad.limit(1).collect()
        if first_bad:
            raise DataError(f"a row has a missing or non-numeric rating or id: {first_bad[0].asDict()}; "
                            f"{bad.count()} such rows")
        users, sdf = self._index(sdf, "uid", "user")
        items, sdf = self._index(sdf, "iid", "item")
        stats = sdf.agg(F.avg("rating").alias("mu"), F.min("rating").alias("lo"),
                        F.max("rating").alias("hi")).collect()[0]
        counts = sdf.groupBy("item").count().toPandas()
        pop = np.zeros(len(items), dtype=np.int64)
        pop[counts["item"].to_numpy()] = counts["count"].to_numpy()
        # what Recommender.fit records for local data, computed on Spark; the seen pairs stay there
        self._start_fit(users, items, global_mean=float(stats["mu"]),
                        rating_scale=None if self.implicit else (float(stats["lo"]), float(stats["hi"])),
                        item_popularity=pop, checksum=None, item_metadata=None, seen=None)
        self.__dict__.pop("seen_", None)
        coded = sdf.select("user", "item", "rating")
        self._seen_frame = coded.persist()
        self._train(coded, len(users), len(items))
        self._build_caches()
        return self

    def _index(self, sdf, col: str, what: str):
        """Map arbitrary ids to dense int32 codes; returns the Vocabulary and the coded frame.

        The distinct ids are collected (a few million at most in practice) and joined
        back as a broadcast table; Spark's ALS then sees only int32 codes.
        """
        from pyspark.sql import functions as F

        distinct = sdf.select(col).distinct()
        n = distinct.count()
        if n > INT32_MAX:
            raise DataError(f"{n} distinct {what} ids: Spark's ALS needs int32 ids, so at most "
                            f"{INT32_MAX} distinct {what}s can be trained")
        vocab, _ = Vocabulary.factorize(distinct.toPandas()[col].to_numpy(), what=what)
        mapping = sdf.sparkSession.createDataFrame(
            pd.DataFrame({col: vocab.ids, what: np.arange(n, dtype=np.int32)}))
        return vocab, sdf.join(F.broadcast(mapping), on=col)

    def _train(self, sdf, n_users: int, n_items: int) -> None:
        from pyspark.ml.recommendation import ALS as SparkMLALS

        spark = sdf.sparkSession
        if self.checkpoint_dir:
            spark.sparkContext.setCheckpointDir(self.checkpoint_dir)
        user_bias = np.zeros(n_users, dtype=np.float32)
        item_bias = np.zeros(n_items, dtype=np.float32)
        train, cached = sdf, None
        use_bias = self.biased and not self.implicit
        if use_bias:
            train, cached, ub, ib = self._fit_biases(sdf)
            item_bias[ib["item"].to_numpy()] = ib["bi"].to_numpy()
            user_bias[ub["user"].to_numpy()] = ub["bu"].to_numpy()
        blocks = self.n_blocks or max(2, spark.sparkContext.defaultParallelism)
        als = SparkMLALS(rank=self.n_factors, maxIter=self.n_epochs, regParam=float(self.regularization),
                         implicitPrefs=self.implicit, alpha=float(self.alpha), nonnegative=self.nonnegative,
                         userCol="user", itemCol="item", ratingCol="rating", seed=int(self.random_state),
                         numUserBlocks=blocks, numItemBlocks=blocks,
                         checkpointInterval=self.checkpoint_interval if self.checkpoint_dir else -1,
                         coldStartStrategy="nan")
        try:
            fitted = als.fit(train)
        except Exception as exc:
            raise ModelError(f"Spark ALS training failed: {exc}") from exc
        finally:
            if cached is not None:
                cached.unpersist()
        self.user_factors_ = self._collect(fitted.userFactors, n_users)
        self.item_factors_ = self._collect(fitted.itemFactors, n_items)
        if use_bias:
            self.user_bias_, self.item_bias_ = user_bias, item_bias
        self._spark_model = fitted
        self.history_ = [{"epoch": self.n_epochs, "engine": "spark"}]

    def _fit_biases(self, sdf):
        """Damped biases μ + b_u + b_i by alternating sweeps, as :class:`~latentrec.models.Biases`,
        computed with Spark aggregations. Returns the residual frame, the cached frame it is
        computed from (to unpersist after training) and the biases (pandas)."""
        from pyspark.sql import functions as F

        res = sdf.select("user", "item", (F.col("rating") - float(self.global_mean_)).alias("res")).cache()
        ub = None
        for _ in range(self.bias_sweeps):
            with_u = res.withColumn("bu", F.lit(0.0)) if ub is None else res.join(ub, on="user")
            ib = (with_u.groupBy("item").agg((F.sum(F.col("res") - F.col("bu"))
                                               / (F.count("*") + float(self.item_damping))).alias("bi"))
                  .localCheckpoint())
            ub = (res.join(F.broadcast(ib), on="item").groupBy("user")
                  .agg((F.sum(F.col("res") - F.col("bi")) / (F.count("*") + float(self.user_damping))).alias("bu"))
                  .localCheckpoint())
        train = (res.join(F.broadcast(ib), on="item").join(ub, on="user")
                 .select("user", "item", (F.col("res") - F.col("bi") - F.col("bu")).alias("rating")))
        return train, res, ub.toPandas(), ib.toPandas()

    def _collect(self, factors, n: int) -> np.ndarray:
        frame = factors.toPandas()
        out = np.zeros((n, self.n_factors), dtype=np.float32)
        if len(frame):
            out[frame["id"].to_numpy()] = np.stack(frame["features"].to_numpy()).astype(np.float32)
        return out

    # ------------------------------------------------------------------ batch scoring on Spark
    def recommend_all_to_parquet(self, path: str, n: int = 10, *, exclude_seen: bool = True) -> str:
        """Top-``n`` for every user, computed on Spark and written to Parquet (user, rank, item, score).

        The item factors (and biases) are broadcast and each partition of user
        factors is scored block by block with NumPy inside ``mapInPandas``, so
        nothing of size users × items is ever collected. Scores are the model's
        predictions (biases included). With ``exclude_seen`` (the default, as in
        :meth:`recommend`) the items each user had in training are left out: each
        user's list of seen items is joined to their factors on Spark (a fit on a
        Spark DataFrame or path), or shipped with the broadcast (a local or loaded
        model, whose seen matrix is already on the driver). A user with fewer than
        ``n`` unseen items gets fewer rows.
        """
        self._check_fitted()
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ModelError(f"n must be a positive integer, got {n!r}")
        if not isinstance(exclude_seen, (bool, np.bool_)):
            raise ModelError(f"exclude_seen must be True or False, got {exclude_seen!r}")
        from pyspark.sql import functions as F

        spark = self._session()
        model = getattr(self, "_spark_model", None)
        if model is not None:
            users = model.userFactors.withColumnRenamed("id", "user")
        else:  # a model loaded from disk: ship its user factors
            users = spark.createDataFrame(pd.DataFrame({
                "user": np.arange(len(self.users_), dtype=np.int32),
                "features": list(self.user_factors_.astype(np.float64))}))
        k = int(min(n, len(self.items_)))
        item_bias = self.item_bias_
        user_bias = self.user_bias_
        offset = np.zeros(len(self.users_), np.float32) if user_bias is None else \
            user_bias + np.float32(self.global_mean_)
        local_seen = None
        users = users.select("user", "features")
        if exclude_seen and self._seen_on_cluster():  # the seen lists are joined on Spark
            lists = self._seen_frame.groupBy("user").agg(F.collect_list("item").alias("seen"))
            users = users.join(lists, on="user", how="left")
        elif exclude_seen:
            seen = self.seen_.tocsr()
            local_seen = (seen.indptr, seen.indices)
        shipped = spark.sparkContext.broadcast((self.item_factors_, item_bias, offset, self.users_.ids,
                                                self.items_.ids, local_seen))

        def score(batches):
            V, b, off, user_ids, item_ids, seen_csr = shipped.value
            for pdf in batches:
                codes = pdf["user"].to_numpy()
                U = np.stack(pdf["features"].to_numpy()).astype(np.float32)
                S = U @ V.T + (0 if b is None else b[None, :]) + off[codes][:, None]
                if "seen" in pdf.columns:
                    lists = [np.asarray(x if x is not None else [], dtype=np.int64) for x in pdf["seen"]]
                elif seen_csr is not None:
                    indptr, indices = seen_csr
                    lists = [indices[indptr[c]:indptr[c + 1]] for c in codes]
                else:
                    lists = None
                if lists is not None:
                    rows = np.repeat(np.arange(len(codes)), [len(x) for x in lists])
                    S[rows, np.concatenate(lists + [np.zeros(0, np.int64)]).astype(np.int64)] = -np.inf
                top = np.argpartition(-S, k - 1, axis=1)[:, :k]
                top_s = np.take_along_axis(S, top, axis=1)
                order = np.argsort(-top_s, axis=1, kind="stable")
                top, top_s = np.take_along_axis(top, order, axis=1), np.take_along_axis(top_s, order, axis=1)
                out = pd.DataFrame({"user": np.repeat(user_ids[codes], k), "rank": np.tile(np.arange(1, k + 1), len(codes)),
                                    "item": item_ids[top.ravel()], "score": top_s.ravel().astype(np.float64)})
                yield out[np.isfinite(out["score"].to_numpy())]

        def spark_type(ids):
            return "string" if ids.dtype.kind in "OUS" else "long"

        schema = (f"user {spark_type(self.users_.ids)}, rank int, item {spark_type(self.items_.ids)}, "
                  "score double")
        users.mapInPandas(score, schema=schema).write.mode("overwrite").parquet(path)
        shipped.unpersist()
        return path


class _SparkSeenItems:
    """Seen items of a distributed fit, read from the (user, item, rating) frame kept on Spark
    (the ``rows`` protocol of :mod:`latentrec.models.seen`)."""

    def __init__(self, frame, n_users: int, n_items: int):
        self.frame, self.shape = frame, (n_users, n_items)

    def fetch(self, users) -> sp.csr_matrix:
        """The user x item matrix holding the rows of ``users`` (codes; None = all)."""
        from pyspark.sql import functions as F

        frame = self.frame
        if users is not None:
            codes = sorted({int(c) for c in np.asarray(users).ravel()})
            if len(codes) <= _ISIN_MAX:
                frame = frame.filter(F.col("user").isin(codes))
            else:
                wanted = frame.sparkSession.createDataFrame(pd.DataFrame({"user": np.asarray(codes, np.int32)}))
                frame = frame.join(F.broadcast(wanted), on="user")
        pairs = frame.select("user", "item", "rating").toPandas()
        return sp.csr_matrix((pairs["rating"].to_numpy(np.float32),
                              (pairs["user"].to_numpy(), pairs["item"].to_numpy())), shape=self.shape)

    def rows(self, user_codes):
        return user_codes, self.fetch(user_codes)  # the fetched rows sit at the users' own codes
