"""Lookbook's entry point (`streamlit run app.py`): declares the pages; each is a thin view over the
engine in recommender/, with what they share in web/."""
from __future__ import annotations

import streamlit as st

from web.layout import CSS


@st.cache_resource(show_spinner=False)
def _threads_configured() -> bool:
    """BLAS / OpenMP / torch thread counts, set once per server process (not per rerun).

    One core per query: every session reruns in its own script thread and nothing bounds how many run
    at once, so a forward pass over all cores per session oversubscribed them as soon as sessions
    overlapped (the HTTP API, whose pool bounds its calls to the cores, lets one call use them all)."""
    from recommender.runtime import configure_threads

    configure_threads("serve", cores=1)
    return True


_threads_configured()
st.set_page_config(page_title="Lookbook", page_icon=":material/checkroom:", layout="wide")
st.html(CSS)
st.navigation([
    st.Page("pages/search.py", title="Search", icon=":material/search:", default=True),
    st.Page("pages/customers.py", title="Customers", icon=":material/group:", url_path="customers"),
    st.Page("pages/insights.py", title="Insights", icon=":material/insights:", url_path="insights"),
]).run()  # fmt: skip
