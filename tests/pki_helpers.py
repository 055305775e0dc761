"""`cityops pki ...` through the real parser, for the TLS tests."""

from __future__ import annotations

import argparse
import asyncio
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from cityops.settings import Settings
from cityops_cli.main import build_parser


def pki(folder: Path, *argv: str) -> int:
    """`cityops pki ...` through the real parser (in a thread: a test's event loop may be running)."""
    args: argparse.Namespace = build_parser().parse_args(["pki", *argv, "--dir", str(folder)])
    with ThreadPoolExecutor(1) as pool:
        return int(pool.submit(asyncio.run, args.handler(args, Settings())).result())
