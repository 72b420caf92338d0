"""The Ray executor (the ``reportgen[ray]`` extra): the shards of a build as a Ray Data
pipeline on an actor pool, merged into the site here.

Each actor of the pool (``ActorPoolStrategy``) builds whole shards with
:func:`~reportgen.pipeline.executors.local.build_shard`: it reads the data and loads the
model from ``model.path`` itself (the model is never pickled), so every worker must see the
same data and model paths. A shard's folder comes back to the driver as bytes, so the workers
need no shared file system for their output. An actor that dies is restarted and its shard
retried (``max_restarts``, ``max_task_retries``); a shard that fails for good ends the build
before the site is touched, naming the shard. Ray is shut down in every case.
"""

from __future__ import annotations

import io
import json
import logging
import shutil
import time
from pathlib import Path

from reportgen import progress as prog
from reportgen import scratch
from reportgen.config import Config
from reportgen.errors import ReportgenError, ShardError

#: Restarts of a dead actor, and retries of a shard on a restarted one.
RETRIES = 2


def require_ray() -> None:
    """Refuse ``--executor ray`` in one line when Ray Data is not installed."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise ReportgenError("--executor ray: Ray is not installed; pip install "
                             "'reportgen[ray]' (Ray Data, ray[data])", exit_code=2) from None


class ShardWorker:
    """A Ray Data actor: builds the shards of one config, returned as folder bytes."""

    def __init__(self, config: dict, count: int) -> None:
        from reportgen.pipeline.executors.shards import config_of

        self.cfg: Config = config_of({"config": config})
        self.count = count

    def __call__(self, batch: dict) -> dict:
        from reportgen.pipeline.executors.local import build_shard
        from reportgen.pipeline.executors.shards import ARRAYS, MANIFEST

        manifests, arrays = [], []
        for index in batch["index"]:
            tmp = scratch.mkdtemp(".reportgen-ray-shard-")
            try:
                folder = build_shard(self.cfg, tmp / "shard", (int(index), self.count),
                                     show_progress=False)
                manifests.append((folder / MANIFEST).read_text())
                arrays.append((folder / ARRAYS).read_bytes())
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return {"index": list(batch["index"]), "manifest": manifests, "arrays": arrays}


def run_shards(cfg: Config, workers: int, address: str | None, into: Path, *,
               show_progress: bool = True) -> list[Path]:
    """Build ``workers`` shards on Ray (started locally without ``address``) into folders
    under ``into``, saying each as it arrives; return them. Ray is shut down before returning
    or raising."""
    import ray

    from reportgen.pipeline.executors.shards import config_payload

    # A local Ray gets a logical CPU beyond the actors', for Ray Data's own tasks: with every
    # CPU held by an actor they would wait for ever.
    ray.init(address=address, num_cpus=None if address else workers + 1,
             logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False,
             configure_logging=True)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        config = config_payload(cfg)
        shards = ray.data.from_items([{"index": i} for i in range(1, workers + 1)])
        done = shards.repartition(workers).map_batches(
            ShardWorker, fn_constructor_kwargs={"config": config, "count": workers},
            batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
            max_restarts=RETRIES, max_task_retries=RETRIES)
        t0, folders = time.perf_counter(), []
        for row in done.iter_rows():  # each shard as its worker finishes it
            folders.append(_write(into, row))
            prog.say(f"Ray: shard {row['index']}/{workers} done ({len(folders)} of {workers}, "
                     f"{time.perf_counter() - t0:.0f} s)", show_progress)
    except Exception as err:  # a Ray task error wraps the worker's
        raise ShardError(f"--executor ray: a shard failed for good ({type(err).__name__}: "
                         f"{str(err).splitlines()[0][:200]}); nothing was written") from None
    finally:
        ray.shutdown()
    return folders


def _write(into: Path, row: dict) -> Path:
    """A shard folder under ``into`` from a worker's row."""
    from reportgen.pipeline.executors.shards import write_shard

    import numpy as np

    manifest = json.loads(row["manifest"])
    with np.load(io.BytesIO(row["arrays"])) as npz:
        arrays = {k: npz[k] for k in npz.files}
    folder = into / f"shard-{manifest['shard'][0]}"
    write_shard(folder, manifest, arrays)
    return folder


def build_on_ray(cfg: Config, out: str | Path, address: str | None = None, *,
                 workers: int = 2, show_progress: bool = True, strict: bool = False):
    """The build of ``cfg`` as ``workers`` shards on Ray, merged into the site ``out``
    (:func:`reportgen.pipeline.merge`); returns its BuildResult."""
    from reportgen.pipeline import merge
    from reportgen.pipeline.executors.local import refuse_training

    require_ray()
    refuse_training(cfg)
    into = scratch.mkdtemp(".reportgen-ray-")
    try:
        prog.say(f"Ray: {workers} shards on {address or 'a local Ray'}", show_progress)
        folders = run_shards(cfg, workers, address, into, show_progress=show_progress)
        return merge(folders, out, show_progress=show_progress, strict=strict)
    finally:
        shutil.rmtree(into, ignore_errors=True)
