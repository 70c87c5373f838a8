"""The page registry: one place that lists every page, its section and its learning outcomes."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str
    section: str
    outcomes: tuple[int, ...]
    blurb: str
    state: str = ""  # the page's UrlState name when it is not the file's name (widget keys start with it)

    @property
    def url_path(self) -> str:
        """The page's address, as st.Page derives it from the file name (``pages/mnist.py`` -> ``mnist``)."""
        return self.path.rsplit("/", 1)[-1].removesuffix(".py")

    @property
    def prefix(self) -> str:
        return self.state or self.url_path


LEARNING_OUTCOMES = {
    1: "Process images in preparation for training a neural network",
    2: "Train a neural network to recognize items and images",
    3: "Use a pretrained network to enhance model performance",
    4: "Interpret a neural network model",
    5: "Train an LSTM network for time series analysis",
    6: "Compare an LSTM network to time series analysis",
    7: "Apply neural network techniques to a linear regression problem",
    8: "Compare neural networks to other machine learning methods",
}

PAGES = (
    PageInfo("pages/convolution.py", "Convolution playground", ":material/blur_on:", "Vision", (1,),
             "Sweep a kernel over an image: stride, padding, bias, activation, pooling — the course's Video 1, live.",
             state="conv"),
    PageInfo("pages/mnist.py", "MNIST: dense vs CNN", ":material/draw:", "Vision", (1, 2),
             "Train the course's dense network and CNN on handwritten digits and see why the CNN wins."),
    PageInfo("pages/cats_dogs.py", "Cats vs dogs & VGG16", ":material/pets:", "Vision", (1, 2, 3),
             "From scratch, with a frozen pretrained VGG16, then fine-tuned."),
    PageInfo("pages/inside.py", "Inside the network", ":material/visibility:", "Vision", (4,),
             "Filter exemplars, feature maps, saliency and the one-pixel attack."),
    PageInfo("pages/sequences.py", "Forecasting traffic", ":material/timeline:", "Sequences", (5, 6),
             "Dense vs SimpleRNN vs LSTM against persistence, seasonal naive and ARIMA."),
    PageInfo("pages/housing.py", "House prices", ":material/home:", "Regression", (7, 8),
             "The course's regressor against linear models, k-NN, random forests and boosting."),
    PageInfo("pages/tricks.py", "Tricks of the trade", ":material/lightbulb:", "Training tricks", (2,),
             "Shuffling, early stopping and rare classes, each as a one-minute experiment."),
)

HOME = PageInfo("pages/home.py", "Home", ":material/school:", "", (), "Course map")
SECTIONS = ("Vision", "Sequences", "Regression", "Training tricks")
INSTRUCTOR = PageInfo("pages/instructor.py", "Instructor", ":material/co_present:", "Instructor", (),
                      "The class control panel: jobs, load, pause, slots, pushed links, the pre-class check.")


def instructor_enabled() -> bool:
    """The instructor page is in the navigation only when the server has a key (``DNN2_INSTRUCTOR_KEY``)."""
    from dnn2core.classroom import instructor_key

    return bool(instructor_key())


def by_url_path() -> dict[str, PageInfo]:
    """Every page by its address ("" is home), as pushed links name them."""
    return {"": HOME, **{p.url_path: p for p in PAGES}}
