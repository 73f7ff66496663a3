"""Offline stand-in for pip's get-pip.py bootstrap script, used by ansible-test.

ansible-test downloads get-pip.py from a host this machine cannot reach. It runs the script as
``python get_pip.py [pip options] [packages] [--no-setuptools] [--no-wheel]``. This stand-in
bootstraps pip from the interpreter's bundled wheel (ensurepip) and then lets that pip install
the requested packages from the package index that is reachable.
"""

from __future__ import annotations

import subprocess
import sys

GET_PIP_ONLY = {"--no-setuptools", "--no-wheel"}


def main(argv: list[str]) -> int:
    """Install pip with ensurepip, then the requested packages with that pip."""
    subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade", "--default-pip"])
    args = [arg for arg in argv if arg not in GET_PIP_ONLY]
    if not any(not arg.startswith("-") for arg in args):
        return 0
    return subprocess.call([sys.executable, "-m", "pip", "install", *args])


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
