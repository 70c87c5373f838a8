"""Home: what DNN2 Studio is, and the course's learning outcomes mapped to pages."""

import streamlit as st

from dnn2ui.pages import LEARNING_OUTCOMES, PAGES
from dnn2ui.router import ensure_navigation

ensure_navigation()

st.title("DNN2 Studio")
st.markdown(
    "Every experiment of the course module **Deep Neural Networks 2**, live on this server. "
    "Change a setting, train a network, and watch what happens. Each page shows the Keras code "
    "behind it, and every page's settings live in its link, so you can share an experiment.")

st.subheader("Learning outcomes")
for number, outcome in LEARNING_OUTCOMES.items():
    pages = [p for p in PAGES if number in p.outcomes]
    cols = st.columns([3, 4])
    cols[0].markdown(f"**{number}.** {outcome}")
    with cols[1]:
        for p in pages:
            st.page_link(p.path, label=p.title, icon=p.icon)

st.subheader("Experiments, in the course's order")
for p in PAGES:
    with st.container(border=True):
        st.page_link(p.path, label=f"{p.course} · {p.title}", icon=p.icon)
        st.caption(p.blurb)
