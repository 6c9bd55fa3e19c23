"""The course wing: what the notebooks in ``notebooks/`` call.

A notebook opens with ``from wavegms import course`` and ``course.start(...)``
(:mod:`.session`: seed, device, data, the shared training run; :mod:`.notebooks`: which
notebooks, their parameters per profile); :mod:`.exercises` checks what
a student wrote; :mod:`.widgets` holds the interactive figures; :mod:`.samples` the real BUSI
scans that ship with the package; :mod:`.runner` executes every notebook (``wavegms course``).
Nothing here is needed to train or use a model: that is :mod:`wavegms.engine`.
"""

from typing import TYPE_CHECKING

from ..utils.lazy import lazy_exports

# Lazy (PEP 562): `wavegms course` imports the runner, which must not pay for torch.
_EXPORTS = {
    "COURSE_DIR_ENV": "notebooks",
    "NOTEBOOKS": "notebooks",
    "PROFILES": "notebooks",
    "REPO_URL": "notebooks",
    "CourseSession": "session",
    "course_config": "session",
    "ensure_trained": "session",
    "keep_runs_on_drive": "session",
    "read_history": "session",
    "run_dir_for": "session",
    "sample_batch": "session",
    "start": "session",
    "training_format": "session",
}

__all__ = list(_EXPORTS)  # every lazy name, in the order above

if TYPE_CHECKING:  # for type checkers and editors: at run time __getattr__ imports them
    from .notebooks import COURSE_DIR_ENV, NOTEBOOKS, PROFILES, REPO_URL  # noqa: F401
    from .session import *  # noqa: F403 - its __all__, every name _EXPORTS gives "session"

__getattr__, __dir__ = lazy_exports(__name__, {k: f"{__name__}.{m}" for k, m in _EXPORTS.items()})
