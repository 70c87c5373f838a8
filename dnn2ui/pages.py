"""The page registry: one place that lists every page, its section and its learning outcomes."""

from __future__ import annotations

from dataclasses import dataclass

from dnn2core.exercises import OUTCOMES


@dataclass(frozen=True)
class PageInfo:
    path: str
    title: str
    icon: str
    section: str
    outcomes: tuple[int, ...]
    blurb: str
    state: str = ""  # the page's UrlState name when it is not the file's name (widget keys start with it)
    course: str = ""  # where it is in the course ("Video 1", "Mini-lesson")

    @property
    def url_path(self) -> str:
        """The page's address, as st.Page derives it from the file name (``pages/mnist.py`` -> ``mnist``)."""
        return self.path.rsplit("/", 1)[-1].removesuffix(".py")

    @property
    def prefix(self) -> str:
        return self.state or self.url_path


LEARNING_OUTCOMES = OUTCOMES  # the course's eight outcomes: one table, in dnn2core/exercises.py

# In the course's order: Videos 1-4, the Tricks of the Trade mini-lesson, then Videos 5, 6 and 7.
VISION, TRICKS, INTERPRET, SEQUENCES, REGRESSION = (
    "Videos 1–4 · Vision", "Mini-lesson · Tricks", "Video 5 · Interpreting", "Video 6 · Sequences",
    "Video 7 · Regression")
PAGES = (
    PageInfo("pages/convolution.py", "Convolution playground", ":material/blur_on:", VISION, (1,),
             "Sweep a kernel over an image: stride, padding, bias, activation, pooling — the course's Video 1, live.",
             state="conv", course="Video 1"),
    PageInfo("pages/mnist.py", "MNIST: dense vs CNN", ":material/draw:", VISION, (1, 2),
             "Train the course's dense network and CNN on handwritten digits and see why the CNN wins.",
             course="Video 2"),
    PageInfo("pages/cats_dogs.py", "Cats vs dogs & VGG16", ":material/pets:", VISION, (1, 2, 3),
             "From scratch, with a frozen pretrained VGG16, then fine-tuned.", course="Videos 3–4"),
    PageInfo("pages/tricks.py", "Tricks of the trade", ":material/lightbulb:", TRICKS, (2,),
             "Shuffling, early stopping, rare classes and divide and conquer, each a one-minute experiment.",
             course="Mini-lesson"),
    PageInfo("pages/inside.py", "Inside the network", ":material/visibility:", INTERPRET, (4,),
             "Filter exemplars, feature maps, saliency and the one-pixel attack.", course="Video 5"),
    PageInfo("pages/sequences.py", "Forecasting traffic", ":material/timeline:", SEQUENCES, (5, 6),
             "Dense vs SimpleRNN vs LSTM against persistence, seasonal naive and ARIMA.", course="Video 6"),
    PageInfo("pages/housing.py", "House prices", ":material/home:", REGRESSION, (7, 8),
             "The course's regressor against linear models, k-NN, random forests and boosting.",
             course="Video 7"),
)

HOME = PageInfo("pages/home.py", "Home", ":material/school:", "", (), "Course map")
SECTIONS = (VISION, TRICKS, INTERPRET, SEQUENCES, REGRESSION)  # the navigation, in this order
INSTRUCTOR = PageInfo("pages/instructor.py", "Instructor", ":material/co_present:", "Instructor", (),
                      "The class control panel: jobs, load, pause, slots, pushed links, the pre-class check.")


def navigation() -> list[tuple[str, list[PageInfo]]]:
    """The sidebar's sections and their pages, in the course's order (what app.py hands st.navigation)."""
    return [(section, [p for p in PAGES if p.section == section]) for section in SECTIONS]


def instructor_enabled() -> bool:
    """The instructor page is in the navigation only when the server has a key (``DNN2_INSTRUCTOR_KEY``)."""
    from dnn2core.classroom import instructor_key

    return bool(instructor_key())


def by_url_path() -> dict[str, PageInfo]:
    """Every page by its address ("" is home), as pushed links name them."""
    return {"": HOME, **{p.url_path: p for p in PAGES}}
