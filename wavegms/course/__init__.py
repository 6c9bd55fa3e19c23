"""The course wing: what the notebooks in ``notebooks/`` call.

A notebook opens with ``from wavegms import course`` and ``course.start(...)``
(:mod:`.session`: seed, device, data, the shared training run); :mod:`.exercises` checks what
a student wrote; :mod:`.widgets` holds the interactive figures; :mod:`.samples` the real BUSI
scans that ship with the package; :mod:`.runner` executes every notebook (``wavegms course``).
Nothing here is needed to train or use a model: that is :mod:`wavegms.engine`.
"""

from .session import (
    COURSE_DIR_ENV,
    NOTEBOOKS,
    PROFILES,
    REPO_URL,
    CourseSession,
    course_config,
    ensure_trained,
    read_history,
    run_dir_for,
    sample_batch,
    start,
)

__all__ = [
    "COURSE_DIR_ENV",
    "NOTEBOOKS",
    "PROFILES",
    "REPO_URL",
    "CourseSession",
    "course_config",
    "ensure_trained",
    "read_history",
    "run_dir_for",
    "sample_batch",
    "start",
]
