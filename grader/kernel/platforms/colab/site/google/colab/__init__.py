"""A stand-in for Google Colab's ``google.colab`` while a notebook is graded (see grader.kernel.platforms.colab)."""

from google.colab import drive, files, output, userdata  # noqa: F401


def _note(api, message):
    try:
        from grader.kernel.runtime import note
    except ImportError:
        return
    note(f"colab:{api}", message)
