"""The engine's lifecycle in the web app: opened once per process and shared read-only by every session;
built from the page only for the embedded demo or when the operator allows it (LOOKBOOK_ALLOW_BUILD=1),
otherwise the page shows the command to run."""
from __future__ import annotations

import os
import threading

import streamlit as st

from recommender.config import Settings
from recommender.errors import ArtifactError, InputError
from recommender.pipeline import Engine, build, open_engine

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


@st.cache_resource(show_spinner="Loading the catalogue, the model and the indexes…")
def _open(settings: Settings) -> Engine:
    engine = open_engine(settings)
    engine.check_built()  # parts load lazily: a missing part must show here, not halfway through a page
    return engine


@st.cache_resource(show_spinner=False)
def _build_lock() -> threading.Lock:
    return threading.Lock()


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


@st.cache_resource(show_spinner=False)
def status(settings: Settings) -> dict:
    return _open(settings).status()


@st.cache_resource(show_spinner=False)
def filter_values(settings: Settings) -> dict[str, list[str]]:
    return _open(settings).search.filter_values()
