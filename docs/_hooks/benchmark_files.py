"""mkdocs hook: publishes the plots in ``benchmarks/results/`` with the site.

The benchmark page includes the result tables verbatim (``pymdownx.snippets``); the plots the
runner draws beside them are added here as site files under the same path, so the page can link
``benchmarks/results/<name>.png`` without copying them into ``docs/``.
"""

from __future__ import annotations

import pathlib

from mkdocs.structure.files import File

RESULTS = pathlib.Path("benchmarks/results")


def on_files(files, config, **kwargs):
    root = pathlib.Path(config["config_file_path"]).parent
    for png in sorted((root / RESULTS).glob("*.png")):
        files.append(File.generated(config, (RESULTS / png.name).as_posix(), abs_src_path=str(png)))
    return files
