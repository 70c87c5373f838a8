"""DNN2 Studio: the router. Sets up the page, the shared sidebar and the navigation.

No TensorFlow here: the first paint never waits for it.
"""

import streamlit as st

from dnn2ui import classroom_ui, live, present, sidebar, uploads_ui
from dnn2ui.pages import HOME, INSTRUCTOR, instructor_enabled, navigation
from dnn2ui.runtime import protect_keras_state, slow_config_polling

protect_keras_state()  # Streamlit would otherwise reset Keras after every run, mid-training
slow_config_polling()  # config.toml is polled every 5 s, not 5 times a second

present.setup()  # ?present=1: the presenter view (read before the page config: the sidebar starts collapsed)
st.set_page_config(page_title="DNN2 Studio", page_icon=":material/neurology:", layout="wide",
                   initial_sidebar_state=present.sidebar_state())
uploads_ui.sweep_stale_once()  # upload folders an earlier server (or CI run) left behind; once per process

home = st.Page(HOME.path, title=HOME.title, icon=HOME.icon, default=True)
nav = {"": [home]}
by_path = {"": home}  # each page by its address, for short links
for section, infos in navigation():  # the course's order: Videos 1-4, the Tricks mini-lesson, Videos 5-7
    nav[section] = [st.Page(p.path, title=p.title, icon=p.icon) for p in infos]
    by_path.update(zip((p.url_path for p in infos), nav[section]))
if instructor_enabled():  # only a server started with DNN2_INSTRUCTOR_KEY has the page
    nav[INSTRUCTOR.section] = [st.Page(INSTRUCTOR.path, title=INSTRUCTOR.title, icon=INSTRUCTOR.icon)]
page = st.navigation(nav)
classroom_ui.follow_short_link(by_path)  # /?go=<id>: the page and settings the instructor pushed

st.sidebar.markdown("### DNN2 Studio")
present.sidebar_toggle()
sources_slot = st.sidebar.container()
sidebar.render_device()
present.inject_css()
classroom_ui.banners(by_path, current=page.url_path)

live.begin_page_run()  # the page notes the live views it draws (the keep-alive fragment checks them)
page.run()

live.keep_alive()  # a run this learner watches keeps training while they read another page
present.exit_button()

sidebar.render_sources(sources_slot)
