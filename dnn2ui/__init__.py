"""Streamlit helpers shared by the pages: URL-bound settings, the sidebar, live training.

Pages stay thin: widgets and layout here and in ``pages/``, every computation in ``dnn2core``.
"""
