"""mkdocs hook: serves MathJax from the built site, so the math renders offline.

The pages' math (``pymdownx.arithmatex``, generic mode: ``\\(...\\)`` and ``\\[...\\]`` in
elements of class ``arithmatex``) is typeset in the browser by MathJax 3. Instead of loading it
from a CDN, this hook takes the MathJax distribution that the ``django-static-mathjax`` package
installs (a pip package of the docs extra; its Python module is ``mathjax``, the files are
under ``mathjax/static/mathjax/``) and adds the files the ``tex-mml-chtml`` component needs to
the site under ``assets/mathjax/``, with MathJax's licence: the combined script, the TeX and
MathML extensions it loads on demand, the CHTML fonts, and the menu and accessibility
components. ``mkdocs.yml`` loads ``assets/mathjax/tex-mml-chtml.js`` after
``javascripts/mathjax.js`` (the configuration).

Without the package the build logs a warning, which fails ``mkdocs build --strict``. So does a
page that loads a script or a stylesheet from another host (a CDN): the site works offline.
"""

from __future__ import annotations

import importlib.util
import logging
import pathlib
import re

from mkdocs.structure.files import File

log = logging.getLogger("mkdocs.hooks.mathjax_assets")

_TAG = re.compile(r"<(script|link)\b[^>]*>", flags=re.I)
_URL = re.compile(r"\b(?:src|href)\s*=\s*[\"']?((?:https?:)?//[^\"'\s>]+)", flags=re.I)
# <link rel=...> values that load something (not rel="canonical", "alternate", ...).
_LOADING_REL = re.compile(
    r"\brel\s*=\s*[\"']?[^\"'>]*\b(?:stylesheet|preload|modulepreload|icon)\b", flags=re.I
)


def remote_assets(html: str) -> list[str]:
    """URLs on other hosts that a page's ``<script>`` and loading ``<link>`` tags fetch."""
    urls = set()
    for tag in _TAG.finditer(html):
        url = _URL.search(tag.group(0))
        if url and (tag.group(1).lower() == "script" or _LOADING_REL.search(tag.group(0))):
            urls.add(url.group(1))
    return sorted(urls)


SITE_DIR = "assets/mathjax"
COMPONENT = "tex-mml-chtml.js"
# Folders of es5/ that tex-mml-chtml.js loads from (relative to its own location).
FOLDERS = ("input/tex", "input/mml", "output/chtml", "a11y", "ui", "sre", "adaptors")


def mathjax_root() -> pathlib.Path | None:
    """The folder holding MathJax's ``es5/`` and ``LICENSE``, or ``None`` when not installed."""
    spec = importlib.util.find_spec("mathjax")
    if spec is None or not spec.submodule_search_locations:
        return None
    for location in spec.submodule_search_locations:
        root = pathlib.Path(location) / "static" / "mathjax"
        if (root / "es5" / COMPONENT).is_file():
            return root
    return None


def on_files(files, config, **kwargs):
    root = mathjax_root()
    if root is None:
        log.warning(
            "MathJax is not installed, so the site's math would not render offline: "
            "pip install django-static-mathjax (part of the docs extra)"
        )
        return files
    es5 = root / "es5"
    sources = [es5 / COMPONENT]
    for folder in FOLDERS:
        sources += sorted(p for p in (es5 / folder).rglob("*") if p.is_file())
    for path in sources:
        uri = f"{SITE_DIR}/{path.relative_to(es5).as_posix()}"
        files.append(File.generated(config, uri, abs_src_path=str(path)))
    files.append(File.generated(config, f"{SITE_DIR}/LICENSE", abs_src_path=str(root / "LICENSE")))
    return files


def on_post_page(output, page, config, **kwargs):
    for url in remote_assets(output):
        log.warning("%s loads %s from the network: serve it from the site", page.file.src_uri, url)
    return output
