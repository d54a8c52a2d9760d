"""Debian packages a server of the stack needs, installed with apt-get when missing (as root only).

The package's own system service is never used: the stack starts its own instance, with
its own configuration, ports and data folder.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import threading

from ops.exceptions import StackError

#: Servers start in parallel threads; dpkg takes one install at a time (other processes: its lock timeout).
_ONE_AT_A_TIME = threading.Lock()


def apt_install(server: str, package: str, binary: str, timeout_s: float, fallback: str) -> str:
    """The path of ``binary``, after ``apt-get install package`` when it is not on the PATH.

    Args:
        server: the stack server that needs it (named in errors).
        package: the Debian package that ships ``binary``.
        binary: the executable to find.
        timeout_s: how long each apt-get call may take.
        fallback: what else the operator can do, for the error's fix.

    Raises:
        StackError: the binary is missing and cannot be installed here (not root, no apt-get,
            or apt-get failed; its stderr is in the message).

    """
    found = shutil.which(binary)
    if found:
        return found
    apt = shutil.which("apt-get")
    if os.geteuid() != 0 or apt is None:
        fix = f"install it (apt-get install -y {package}) or {fallback}"
        raise StackError(server, f"{binary} is not installed", fix)
    lock_wait = ["-o", f"DPkg::Lock::Timeout={int(timeout_s)}"]
    with _ONE_AT_A_TIME:
        if shutil.which(binary) is None:
            for argv in (
                [apt, *lock_wait, "update", "-qq"],
                [apt, *lock_wait, "install", "-y", "-qq", "--no-install-recommends", package],
            ):
                _run(server, package, fallback, argv, timeout_s)
    found = shutil.which(binary)
    if found is None:
        raise StackError(server, f"{package} was installed but {binary} is not on the PATH", f"dpkg -L {package}")
    return found


def _run(server: str, package: str, fallback: str, argv: list[str], timeout_s: float) -> None:
    proc = subprocess.run(
        argv,
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout_s,
        env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"},
    )
    if proc.returncode != 0:
        failure = f"{' '.join(argv)} failed:\n{proc.stderr[-1500:]}"
        raise StackError(server, failure, f"install {package} by hand or {fallback}")
