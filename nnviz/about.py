"""The About text, shared by the app and the docs."""

from nnviz import __version__


def about_text() -> str:
    """Who made nnviz's pieces and under which licences (MNIST's credit is required)."""
    return (
        f"nnviz {__version__}: watch a small neural network learn to read handwritten "
        "digits, and look inside it.\n\n"
        "Bundled data: the MNIST database of handwritten digits by Yann LeCun, "
        "Corinna Cortes and Christopher J.C. Burges, distributed under the Creative "
        "Commons Attribution-Share Alike 3.0 license (CC BY-SA 3.0). "
        "Fashion-MNIST (downloaded on request) is by Zalando Research, MIT license."
    )
