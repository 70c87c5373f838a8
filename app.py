"""DNN2 Studio: the router. Sets up the page, the shared sidebar and the navigation.

No TensorFlow here: the first paint never waits for it.
"""

import streamlit as st

from dnn2ui import live, sidebar, uploads_ui
from dnn2ui.pages import HOME, PAGES, SECTIONS
from dnn2ui.runtime import protect_keras_state

protect_keras_state()  # Streamlit would otherwise reset Keras after every run, mid-training

st.set_page_config(page_title="DNN2 Studio", page_icon=":material/neurology:", layout="wide")
uploads_ui.sweep_stale_once()  # upload folders an earlier server (or CI run) left behind; once per process

home = st.Page(HOME.path, title=HOME.title, icon=HOME.icon, default=True)
nav = {"": [home]}
for section in SECTIONS:
    nav[section] = [st.Page(p.path, title=p.title, icon=p.icon) for p in PAGES if p.section == section]
page = st.navigation(nav)

st.sidebar.markdown("### DNN2 Studio")
sources_slot = st.sidebar.container()
sidebar.render_device()

page.run()

live.keep_alive()  # a run this learner watches keeps training while they read another page

sidebar.render_sources(sources_slot)
