"""``drive.mount``: the notebook's working folder already has ``drive/MyDrive`` (empty)."""


def mount(mountpoint="/content/drive", force_remount=False, timeout_ms=120000, readonly=False):
    from google.colab import _note

    _note("drive.mount", "`drive.mount(...)`: Google Drive is not available while grading; `drive/MyDrive` is an empty folder in the notebook's working folder.")
    print(f"Mounted at {mountpoint}")


def flush_and_unmount(timeout_ms=86400000):
    from google.colab import _note

    _note("drive.flush_and_unmount", "`drive.flush_and_unmount()`: nothing to unmount while grading.")
