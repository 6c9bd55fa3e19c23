"""Sphinx settings of the course book (``wavegms book``); its pages are written by
:mod:`wavegms.course.book.pages` into a staging folder, and this folder is Sphinx's confdir.

Nothing is executed (the notebooks come executed from ``wavegms course``) and nothing is
downloaded while building: no intersphinx, no remote images. Pages may still load MathJax from
its CDN in the reader's browser.
"""

from importlib import metadata  # not `version`: Sphinx reads that name as a setting

from wavegms.course.notebooks import REPO_URL

project = "Wave-GMS: the course"
author = "wavegms contributors"
release = metadata.version("wavegms")
extensions = ["myst_nb"]

# The notebooks hold the outputs of `wavegms course`: never run them again.
nb_execution_mode = "off"
myst_enable_extensions = ["dollarmath"]
myst_heading_anchors = 3
# _notebooks: the executed notebooks as they are, for the download links; not pages.
exclude_patterns = ["_notebooks", "**.ipynb_checkpoints"]
# The staged notebooks hold the frames of the browsers (several MB): the pages link to the
# executed notebooks themselves instead (build.py).
html_copy_source = False
html_show_sourcelink = False

html_theme = "sphinx_book_theme"
html_title = "Wave-GMS: the course"
html_static_path = ["_static"]
html_css_files = ["frames.css"]
html_js_files = ["frames.js"]
html_theme_options = {
    "repository_url": REPO_URL,
    "repository_branch": "main",
    "use_repository_button": True,
    "use_download_button": False,
    "home_page_in_toc": True,
    "show_toc_level": 2,
    # The theme's launch button opens <path_to_docs>/<page>.ipynb: the student edition, whose
    # notebooks have the same names as the pages.
    "path_to_docs": "notebooks/student",
    "launch_buttons": {"colab_url": "https://colab.research.google.com"},
}
