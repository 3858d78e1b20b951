"""A SparkSession for the build: master URL, checkpoint folder, and the settings the jobs rely on."""
from __future__ import annotations

import os
import shutil
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

from ..errors import LookbookError

DEFAULT_MASTER = "local[*]"


class SparkUnavailable(LookbookError):
    """pyspark or Java is missing, or the Spark master cannot be reached."""


def _require_pyspark():
    try:
        import pyspark
    except ImportError:
        raise SparkUnavailable(
            "build --engine spark needs pyspark: pip install -r requirements-spark.txt (and a Java 17+ runtime)"
        ) from None
    if not (os.environ.get("JAVA_HOME") or shutil.which("java")):
        raise SparkUnavailable(
            "build --engine spark needs a Java runtime (17 or later): e.g. apt-get install default-jre-headless"
        )
    return pyspark


@contextmanager
def spark_session(master: str | None, work_dir: Path, *, app_name: str = "lookbook-build") -> Iterator:
    """A session on ``master`` (None: the one spark-submit was given, else local[*]), stopped afterwards;
    a session the caller already started is used as it is and left running.

    ``work_dir`` holds ALS checkpoints: on a cluster it must be on storage every node sees (the artifacts
    folder is, see README). Executors run this interpreter's Python so they import the same packages.
    """
    _require_pyspark()
    from pyspark.sql import SparkSession

    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    builder = SparkSession.builder.appName(app_name)
    if master or "PYSPARK_GATEWAY_PORT" not in os.environ:  # not launched by spark-submit: we pick the master
        builder = builder.master(master or DEFAULT_MASTER)
    builder = (
        builder.config("spark.ui.showConsoleProgress", "false")
        .config("spark.ui.enabled", os.environ.get("LOOKBOOK_SPARK_UI", "false"))
        # The catalogue cache stores t_dat as parquet TIMESTAMP(NANOS); read it as its int64 nanoseconds.
        .config("spark.sql.legacy.parquet.nanosAsLong", "true")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        # Executors inherit the repository on their path (a local or loopback cluster; see README for others).
        .config("spark.executorEnv.PYTHONPATH", os.pathsep.join(filter(None, [_repo_root(), os.environ.get("PYTHONPATH")])))
    )
    for key, value in _conf_from_env().items():
        builder = builder.config(key, value)
    active = SparkSession.getActiveSession()
    try:
        spark = active or builder.getOrCreate()
    except Exception as exc:  # py4j / JVM start-up failures: one line for the user
        raise SparkUnavailable(f"cannot start Spark on {master or DEFAULT_MASTER}: {_first_line(exc)}") from None
    spark.sparkContext.setLogLevel("ERROR")
    if "spark.sql.shuffle.partitions" not in _conf_from_env():  # Spark's 200 is thousands of tiny tasks on 2 cores
        spark.conf.set("spark.sql.shuffle.partitions", str(max(4, 2 * spark.sparkContext.defaultParallelism)))
    checkpoints = Path(work_dir) / "spark-checkpoints"
    checkpoints.mkdir(parents=True, exist_ok=True)
    spark.sparkContext.setCheckpointDir(str(checkpoints))
    try:
        yield spark
    finally:
        if active is None:
            spark.stop()
        shutil.rmtree(checkpoints, ignore_errors=True)


def _conf_from_env() -> dict[str, str]:
    """LOOKBOOK_SPARK_CONF="spark.driver.memory=8g,spark.executor.memory=8g": extra settings without flags."""
    pairs = [item.split("=", 1) for item in os.environ.get("LOOKBOOK_SPARK_CONF", "").split(",") if "=" in item]
    return {key.strip(): value.strip() for key, value in pairs}


def _repo_root() -> str:
    return str(Path(__file__).resolve().parents[2])


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip() or type(exc).__name__
    return text.splitlines()[0][:300]
