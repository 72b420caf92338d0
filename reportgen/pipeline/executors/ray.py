"""The Ray executor (the ``reportgen[ray]`` extra): the shards of a build as a Ray Data
pipeline on an actor pool, merged into the site here.

Each actor of the pool (``ActorPoolStrategy``) builds whole shards with
:func:`~reportgen.pipeline.executors.local.build_shard`: it reads the data and loads the
model from ``model.path`` itself (the model is never pickled), so every worker must see the
same data and model paths. A shard's folder comes back to the driver as bytes, so the workers
need no shared file system for their output. An actor that dies is restarted by Ray Data
(its actor pool's default) and its shard retried, at most :data:`RETRIES` times (counted by
an :class:`Attempts` actor); a shard that fails for good (an error in it, or a worker dead
once too often) ends the build before the site is touched, naming the shard. Ray is shut
down in every case; its logging is quiet unless ``RAY_BACKEND_LOG_LEVEL`` is set.
"""

from __future__ import annotations

import io
import json
import logging
import os
import re
import shutil
import time
from pathlib import Path

from reportgen import progress as prog
from reportgen import scratch
from reportgen.config import Config
from reportgen.errors import ReportgenError, ShardError

#: Retries of a shard whose worker died (Ray Data restarts the dead actor).
RETRIES = 2


def require_ray() -> None:
    """Refuse ``--executor ray`` in one line when Ray Data is not installed."""
    try:
        import ray.data  # noqa: F401
    except ImportError:
        raise ReportgenError("--executor ray: Ray is not installed; pip install "
                             "'reportgen[ray]' (Ray Data, ray[data])", exit_code=2) from None


class Attempts:
    """A Ray actor counting the attempts at each shard (Ray Data restarts a dead actor and
    retries its shard without limit; :class:`ShardWorker` stops at :data:`RETRIES`)."""

    def __init__(self) -> None:
        self.seen: dict[int, int] = {}
        #: Workers started (the pool's, then one for each that died and was restarted).
        self.workers = 0

    def worker_started(self) -> int:
        """Count a worker started; return how many have been."""
        self.workers += 1
        return self.workers

    def start(self, index: int) -> int:
        """Count an attempt at shard ``index``; return how many there have been."""
        self.seen[index] = self.seen.get(index, 0) + 1
        return self.seen[index]

    def counts(self) -> tuple[int, dict[int, int]]:
        """(workers started, {shard: attempts}) so far."""
        return self.workers, dict(self.seen)


class ShardWorker:
    """A Ray Data actor: builds the shards of one config, returned as folder bytes. An
    attempt at a shard beyond 1 + :data:`RETRIES` (its earlier workers died) fails it for
    good, naming it."""

    def __init__(self, config: dict, count: int, attempts) -> None:
        from reportgen.pipeline.executors.shards import config_of

        import ray

        self.cfg: Config = config_of({"config": config})
        self.count = count
        self.attempts = attempts
        ray.get(attempts.worker_started.remote())

    def __call__(self, batch: dict) -> dict:
        import ray

        from reportgen.pipeline.executors.local import build_shard
        from reportgen.pipeline.executors.shards import ARRAYS, MANIFEST

        manifests, arrays = [], []
        for index in batch["index"]:
            tried = ray.get(self.attempts.start.remote(int(index)))
            if tried > 1 + RETRIES:
                raise ShardError(f"shard {index}/{self.count}: its worker died {tried - 1} "
                                 f"times (reportgen build --shard {index}/{self.count} "
                                 "rebuilds its images alone)")
            tmp = scratch.mkdtemp(".reportgen-ray-shard-")
            try:
                folder = build_shard(self.cfg, tmp / "shard", (int(index), self.count),
                                     show_progress=False)
                manifests.append((folder / MANIFEST).read_text())
                arrays.append((folder / ARRAYS).read_bytes())
            except Exception as err:  # named, in one line, for the driver to say
                from reportgen.guard import one_line

                raise ShardError(f"shard {index}/{self.count} failed: {one_line(err)}"
                                 ) from None
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        return {"index": list(batch["index"]), "manifest": manifests, "arrays": arrays}


def run_shards(cfg: Config, workers: int, address: str | None, into: Path, *,
               show_progress: bool = True) -> list[Path]:
    """Build ``workers`` shards on Ray (started locally without ``address``) into folders
    under ``into``, saying each as it arrives; return them. Ray is shut down before returning
    or raising."""
    import ray
    import ray.data

    from reportgen.pipeline.executors.shards import config_payload

    # Ray Data logs each dataset's progress at INFO on stderr by its own handler, and Ray's
    # C++ core its warnings: quiet both, unless the user set Ray's own log level.
    for name in ("ray", "ray.data"):
        logging.getLogger(name).setLevel(logging.ERROR)
    os.environ.setdefault("RAY_BACKEND_LOG_LEVEL", "fatal")
    # A local Ray gets a logical CPU beyond the actors', for Ray Data's own tasks: with every
    # CPU held by an actor they would wait for ever.
    ray.init(address=address, num_cpus=None if address else workers + 1,
             logging_level=logging.ERROR, log_to_driver=False, include_dashboard=False,
             configure_logging=True)
    try:
        ray.data.DataContext.get_current().enable_progress_bars = False
        config = config_payload(cfg)
        shards = ray.data.from_items([{"index": i} for i in range(1, workers + 1)])
        attempts = ray.remote(num_cpus=0)(Attempts).remote()
        done = shards.repartition(workers).map_batches(
            ShardWorker, batch_size=1, compute=ray.data.ActorPoolStrategy(size=workers),
            fn_constructor_kwargs={"config": config, "count": workers, "attempts": attempts})
        t0, folders = time.perf_counter(), []
        for row in done.iter_rows():  # each shard as its worker finishes it
            folders.append(_write(into, row))
            prog.say(f"Ray: shard {row['index']}/{workers} done ({len(folders)} of {workers}, "
                     f"{time.perf_counter() - t0:.0f} s)", show_progress)
        started, tried = ray.get(attempts.counts.remote())  # type: ignore[attr-defined]
        _say_restarts(started, tried, workers, show_progress)
    except Exception as err:  # a Ray task error wraps the worker's
        raise ShardError(f"--executor ray: {_cause(err)}; nothing was written") from None
    finally:
        ray.shutdown()
    return folders


def _say_restarts(started: int, tried: dict[int, int], workers: int, show: bool) -> None:
    """Say how many workers died and were restarted, and which shards were retried."""
    if started > workers:
        died = started - workers
        prog.say(f"Ray: {died} worker{'s' if died > 1 else ''} died and "
                 f"{'were' if died > 1 else 'was'} restarted", show)
    for index, n in sorted(tried.items()):
        if n > 1:
            prog.say(f"Ray: shard {index}/{workers} was retried {n - 1} time"
                     f"{'s' if n > 2 else ''} (its worker died)", show)


def _cause(err: BaseException) -> str:
    """What failed, in one line: the worker's own :class:`ShardError` where Ray's errors
    wrap one (their ``cause`` and ``__cause__`` chain), else the error's first line."""
    seen: BaseException | None = err
    for _ in range(10):
        if seen is None:
            break
        if isinstance(seen, ShardError):
            return str(seen)
        found = re.search(r"(shard \d+/\d+ (failed: |: its worker died).*)", str(seen))
        if found:  # the worker's error, as the text of Ray's (its class not rebuilt)
            return found.group(1).strip()
        seen = getattr(seen, "cause", None) or seen.__cause__ or seen.__context__
    text = str(err).splitlines()[0] if str(err) else type(err).__name__
    return f"a shard failed for good ({type(err).__name__}: {text[:200]})"


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
