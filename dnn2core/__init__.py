"""DNN2 Studio's tested library: every computation behind the pages.

Nothing here imports Streamlit, and TensorFlow is imported lazily inside the functions
that need it, so the home page and the convolution playground never wait for it.
"""

__all__ = ["adversarial", "catsdogs", "check", "classroom", "convolution", "data", "device", "digits", "evaluation",
           "experiments", "forecasting", "hierarchy", "interpret", "jobs", "keras_code", "models", "plots", "prefetch", "pretrained",
           "reference", "regression", "runs", "training", "tricks", "uploads"]
