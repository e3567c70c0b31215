"""``labkit figures``: run every notebook headless and write every figure (the engine of ``make figures``)."""

from __future__ import annotations

import argparse
from pathlib import Path

from labkit.report.notebooks import (
    CAPTIONS,
    FIGURE_FORMATS,
    NOTEBOOK_DIR,
    NOTEBOOKS,
    run_all,
    update_captions,
)

#: The committed images and captions (``--update-docs``) and the README that shows them, in a checkout.
DOCS = Path("docs")
#: Pages that show the tour images: their captions are rewritten with the images.
PAGES_WITH_IMAGES = (Path("README.md"), DOCS / "index.md", DOCS / "guides" / "notebooks.md")

NAME = "figures"
HELP = "run the notebooks headless; write every figure to figures/ (HTML, PNG, SVG, PDF); --update-docs: docs/ images"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "notebooks",
        nargs="*",
        metavar="NOTEBOOK",
        help=f"names or numbers (default: all of {', '.join(NOTEBOOKS)})",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("figures"), help="output folder (default: figures/ in the working directory)"
    )
    parser.add_argument(
        "--docs",
        type=Path,
        default=None,
        help="folder of the tour PNGs and their captions (default: OUT/docs/, ignored by git)",
    )
    parser.add_argument(
        "--update-docs",
        action="store_true",
        help="rewrite the committed tour images docs/0*.png, docs/captions.json and the README's image captions",
    )
    parser.add_argument("--no-docs", action="store_true", help="do not write the tour PNGs")
    parser.add_argument(
        "--formats",
        default=",".join(FIGURE_FORMATS),
        help="comma-separated formats (default: html,png,svg,pdf)",
    )
    parser.add_argument("--fast", action="store_true", help="each notebook's small parameter set (as the tests)")
    parser.add_argument(
        "--jobs",
        type=int,
        default=None,
        help=(
            "notebooks run at the same time (default: one per core, at most 4), at idle priority beside the live"
            " notebooks, which run one at a time"
        ),
    )
    parser.add_argument(
        "--keep-notebooks",
        type=Path,
        default=None,
        metavar="DIR",
        help="also write each executed notebook (with outputs) to DIR (the docs site renders them)",
    )
    parser.add_argument("--timeout", type=float, default=600.0, help="seconds allowed per cell (default: 600)")


def tour_folder(args: argparse.Namespace) -> Path | None:
    """Where the tour images go. Results go to ignored folders unless asked: `make figures` leaves the committed
    images alone (``OUT/docs/``); ``--update-docs`` rewrites them (``docs/``)."""
    if args.update_docs and (args.no_docs or args.docs):
        raise ValueError("update-docs: writes docs/; give it without --docs and --no-docs")
    if args.no_docs:
        return None
    return DOCS if args.update_docs else (args.docs or args.out / "docs")


def run(args: argparse.Namespace) -> int:
    if not NOTEBOOK_DIR.is_dir():
        # Checked before any folder is made: the notebooks are files of a checkout, not of the installed package.
        raise ValueError(
            f"no {NOTEBOOK_DIR}/ folder in {Path.cwd()}; run `labkit figures` from the root of a labkit checkout"
        )
    formats = tuple(f.strip() for f in args.formats.split(",") if f.strip())
    bad = [f for f in formats if f not in FIGURE_FORMATS]
    if bad or not formats:
        raise ValueError(f"formats: unknown {', '.join(bad) or '(none)'}; choose from {', '.join(FIGURE_FORMATS)}")
    docs_dir = tour_folder(args)
    runs = run_all(
        args.notebooks or None,
        out_root=args.out,
        docs_dir=docs_dir,
        formats=formats,
        fast=args.fast,
        jobs=args.jobs,
        timeout=args.timeout,
        keep_dir=args.keep_notebooks,
    )
    failed = [r.name for r in runs if r.error]
    if args.update_docs and (DOCS / CAPTIONS).is_file():
        for page in PAGES_WITH_IMAGES:
            if page.is_file() and update_captions(page, DOCS):
                print(f"labkit figures: {page}: image captions rewritten from {DOCS / CAPTIONS}")
    total = sum(r.seconds for r in runs)
    print(f"labkit figures: {len(runs) - len(failed)}/{len(runs)} notebooks ok, {total:.1f} s of notebook time")
    return 1 if failed else 0
