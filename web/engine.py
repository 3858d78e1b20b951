"""The engine's lifecycle in the web app: opened once per process and shared read-only by every session;
built from the page only for the embedded demo or when the operator allows it (LOOKBOOK_ALLOW_BUILD=1),
otherwise the page shows the command to run."""
from __future__ import annotations

import os
import threading

import streamlit as st

from recommender.config import Settings
from recommender.errors import ArtifactError, InputError
from recommender.pipeline import Engine, build, open_engine, store_for

from .errors import log, public_message
from .text import md

ALLOW_BUILD = "LOOKBOOK_ALLOW_BUILD"
# The settings a build must share with the app, by the environment variables that carry them.
BUILD_FLAGS = {"LOOKBOOK_DATA": "--data", "LOOKBOOK_ARTIFACTS": "--artifacts", "LOOKBOOK_MODEL": "--model",
               "LOOKBOOK_PRETRAINED": "--pretrained"}  # fmt: skip


def build_allowed() -> bool:
    """Whether visitors may start a build (hours on a large catalogue) from the page."""
    value = os.environ.get(ALLOW_BUILD, "").strip().lower()
    if value in {"", "0", "false", "no", "off"}:
        return False
    if value in {"1", "true", "yes", "on"}:
        return True
    raise InputError(f"{ALLOW_BUILD}={os.environ[ALLOW_BUILD]!r} is not a switch; use 1 (allow) or 0 (default)")


def build_command() -> str:
    """The build command for the operator, naming settings by variable so no server path is shown."""
    flags = [f'{flag} "${name}"' for name, flag in BUILD_FLAGS.items() if os.environ.get(name)]
    return " ".join(["python -m recommender build", *flags])


RELEASE_AFTER_S = 60.0  # a replaced engine's artifacts are released this long after the switch


class Serving:
    """The process's engine for one settings, replaced when a newer complete build lands: each page run
    compares the artifacts' build id (a few small reads) with the served engine's; a new build is opened
    and checked once (an incomplete one is tried once per build id, and the current engine keeps
    serving); sessions keep working, each run taking one engine for the whole page."""

    def __init__(self):
        self.engine: Engine | None = None
        self.tried: str | None = None
        self.lock = threading.Lock()

    def current(self, settings: Settings) -> Engine:
        store = store_for(settings)
        build_id = store.build_id()
        engine = self.engine
        if engine is not None and (build_id in (engine.build_id, self.tried) or store.build_running()):
            return engine  # a build half-way is not opened: its first page run after it ends is
        with self.lock:
            if self.engine is not engine:  # another session switched meanwhile
                return self.engine
            self.tried = build_id
            try:
                with st.spinner("Loading the catalogue, the model and the indexes…"):
                    new = open_engine(settings)
                    new.check_built()  # a missing part must show here, not halfway through a page
            except ArtifactError:
                if engine is None:
                    raise
                log.warning("a newer build of %s is not servable yet; still serving the current one", settings.data_dir.name)
                return engine
            self.engine = new
        if engine is not None:
            log.info("switched from build %s to build %s", engine.build_info(), new.build_info())
            release = threading.Timer(RELEASE_AFTER_S, engine.close)
            release.daemon = True  # never holds the process open at exit (its leases die with it)
            release.start()
        return new


@st.cache_resource(show_spinner=False)
def _serving(settings: Settings) -> Serving:
    return Serving()


@st.cache_resource(show_spinner=False)
def _build_lock() -> threading.Lock:
    return threading.Lock()


def _open(settings: Settings) -> Engine:
    return _serving(settings).current(settings)


def engine() -> Engine:
    """The engine for the configured settings; stops the page (with what to do) when it is not built."""
    settings = Settings()
    demo_missing = settings.is_demo and not (settings.data_dir / "articles.csv").is_file()
    if not demo_missing:
        try:
            return _open(settings)
        except ArtifactError as exc:
            if not settings.is_demo:
                _not_built(str(exc))
    _build(settings)
    return _open(settings)


def _not_built(reason: str) -> None:
    """Missing or stale artifacts of an operator's dataset: the command, or a button where allowed."""
    problem = st.empty()
    with problem.container():
        st.error(public_message(reason), icon=":material/error:")
        if not build_allowed():
            st.markdown("This dataset has to be built before the app can serve it. On the server, run:")
            st.code(build_command(), language="bash")
            st.stop()
        if not st.button("Build it now", type="primary", help="Runs the build in this page"):
            st.stop()
    problem.empty()


def _build(settings: Settings) -> None:
    """The build with its progress in the page; once done, the page renders as on any later start."""
    setup = st.empty()
    with setup.container():
        st.title("Lookbook")
        st.markdown(
            f"Building **{md(settings.data_dir.name)}**: the catalogue is read, the CLIP model is loaded "
            "(or, offline, trained on this catalogue), every article is embedded and indexed, and the "
            "customer model is fitted. This happens once per dataset and model; later starts take seconds."
        )
        with st.status("Building the catalogue, the model and the indexes", expanded=True) as box:
            bar = st.progress(0.0, text="starting")
            lock = _build_lock()
            if not lock.acquire(blocking=False):
                bar.progress(0.0, text="another session is building these already; waiting for it")
                lock.acquire()
            try:
                def note(message: str) -> None:  # e.g. "another build is running …; waiting"
                    log.info(message)
                    st.caption(public_message(message))

                build(settings, log=note,
                      progress=lambda done, message: bar.progress(done, text=public_message(f"{message} ({done:.0%})")))
            except BaseException:
                box.update(label="The build stopped", state="error")
                raise
            finally:
                lock.release()
    setup.empty()


def status(engine: Engine) -> dict:
    """What the engine serves, with its build (counted once per engine)."""
    return _status(engine, engine.settings, engine.build_id)


def filter_values(engine: Engine) -> dict[str, list[str]]:
    return _filter_values(engine, engine.settings, engine.build_id)


# Cached per (settings, build): the engine itself (a leading underscore) is not hashed.
@st.cache_resource(show_spinner=False)
def _status(_engine: Engine, settings: Settings, build_id: str) -> dict:
    return {**_engine.status(), **_engine.build_info()}


@st.cache_resource(show_spinner=False)
def _filter_values(_engine: Engine, settings: Settings, build_id: str) -> dict[str, list[str]]:
    return _engine.search.filter_values()
