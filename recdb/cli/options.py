"""Options that read their default from a RECDB_* variable and name it in --help."""

from __future__ import annotations

import argparse
import logging
import os
from typing import Any

from recdb.config import DEVICES, WORKER_USER_ENCODERS

_TRUE = {"1", "true", "yes", "on"}


def env_name(option: str) -> str:
    return "RECDB_" + option.lstrip("-").replace("-", "_").upper()


def add_option(
    parser: argparse.ArgumentParser,
    option: str,
    *,
    flag: bool = False,
    env_var: str | None = None,
    **kwargs: Any,
) -> None:
    """An option whose default comes from its RECDB_* variable, named in the help text."""
    var = env_var or env_name(option)
    raw = os.environ.get(var)
    help_text = kwargs.pop("help", "")
    if flag:
        default = (raw or "").strip().lower() in _TRUE
        parser.add_argument(
            option, action="store_true", default=default, help=f"{help_text} [env: {var}]"
        )
        return
    conv = kwargs.get("type", str)
    default = kwargs.pop("default", None)
    if raw not in (None, ""):
        try:
            default = conv(raw)
        except (TypeError, ValueError):
            parser.error(f"{var}={raw!r} is not a valid value for {option}")
    shown = "" if default is None else f" (default: {default})"
    parser.add_argument(option, default=default, help=f"{help_text}{shown} [env: {var}]", **kwargs)


def add_encoder_options(parser: argparse.ArgumentParser) -> None:
    """--device and --user-encoder, shared by every command that runs a worker."""
    add_option(
        parser,
        "--device",
        default="auto",
        choices=DEVICES,
        help="auto (cuda if present), cpu or cuda",
    )
    add_option(
        parser,
        "--user-encoder",
        default="auto",
        choices=WORKER_USER_ENCODERS,
        help="how user vectors are built (auto: the active trained model, else mean)",
    )


def add_movielens_path_option(parser: argparse.ArgumentParser) -> None:
    """--path for the commands that read MovieLens-100K."""
    add_option(
        parser,
        "--path",
        metavar="DIR",
        env_var="RECDB_MOVIELENS_PATH",
        help="MovieLens-100K folder (GroupLens u.data/u.item or RecBole atomic files);"
        " unset = the copy inside an installed recbole wheel",
    )


def add_common_options(parser: argparse.ArgumentParser) -> None:
    add_option(
        parser,
        "--database-url",
        metavar="URL",
        help="PostgreSQL URL; unset = the embedded server under RECDB_HOME",
    )
    add_option(
        parser, "--home", metavar="DIR", help="where the embedded server, caches and results live"
    )
    add_option(parser, "--log-level", default="INFO", help="logging level")


NOISY_LOGGERS = ("alembic", "httpx", "urllib3", "filelock", "huggingface_hub", "transformers")


def apply_common_options(args: argparse.Namespace) -> None:
    # Children (worker subprocesses, alembic env.py) read the same settings from the env.
    if args.database_url:
        os.environ["RECDB_DATABASE_URL"] = args.database_url
    if args.home:
        os.environ["RECDB_HOME"] = args.home
    level = args.log_level.upper()
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if level != "DEBUG":
        # Libraries' INFO lines (alembic's plugin setup, HTTP clients) say nothing to an
        # operator; recdb's own INFO lines do.
        for name in NOISY_LOGGERS:
            logging.getLogger(name).setLevel(max(logging.WARNING, logging.getLogger().level))
