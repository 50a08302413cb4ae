"""Execute notebooks in place, as ``make demo`` does: ``python -m workbench.notebooks [--timeout S] NOTEBOOK...``.

Like ``jupyter nbconvert --execute --inplace``, with one difference: the client waits for each cell's execute reply
in short polls instead of one wait until the cell's deadline. After a cell that displays an ipywidgets ``Output``
with large content (notebook 06's explorer at the default profile), nbclient's single wait returns only when its
timeout expires, so with no timeout (``-1``, what long study cells need) the run hangs forever, and with one it idles
until the deadline (nbclient issue 312, nbconvert issues 2003 and 2029). A notebook is written back only when every
cell ran; a failing cell leaves the file as it was.
"""
from __future__ import annotations

import argparse
import asyncio
import sys
import time
from pathlib import Path
from queue import Empty

POLL_SECONDS = 1.0


def _client_class():
    from nbclient import NotebookClient
    from nbclient.exceptions import CellTimeoutError
    from nbclient.util import ensure_async

    class PollingClient(NotebookClient):
        """:class:`nbclient.NotebookClient` whose wait for an execute reply polls every ``POLL_SECONDS``."""

        async def _async_poll_for_reply(self, msg_id, cell, timeout, task_poll_output_msg, task_poll_kernel_alive):
            deadline = None if timeout is None else time.monotonic() + timeout
            while True:
                try:
                    msg = await ensure_async(self.kc.shell_channel.get_msg(timeout=POLL_SECONDS))
                except Empty:
                    await self._async_check_alive()
                    if deadline is not None and time.monotonic() > deadline:
                        task_poll_kernel_alive.cancel()
                        reply = await self._async_handle_timeout(timeout, cell)
                        if reply is not None:       # interrupt_on_timeout with error_on_timeout: nbclient's reply
                            reply["parent_header"] = {"msg_id": msg_id}
                            return reply
                        raise CellTimeoutError.error_from_timeout_and_cell("Cell execution timed out", timeout, cell)
                    continue
                if msg["parent_header"].get("msg_id") != msg_id:
                    continue
                try:
                    await asyncio.wait_for(task_poll_output_msg, self.iopub_timeout)
                except (asyncio.TimeoutError, Empty):
                    if self.raise_on_iopub_timeout:
                        task_poll_kernel_alive.cancel()
                        raise CellTimeoutError.error_from_timeout_and_cell(
                            "Timeout waiting for IOPub output", self.iopub_timeout, cell) from None
                    self.log.warning("Timeout waiting for IOPub output")
                task_poll_kernel_alive.cancel()
                return msg

    return PollingClient


def execute_notebook(path: str | Path, timeout: float | None = None, kernel_name: str = "python3") -> float:
    """Run every cell of the notebook at ``path`` in a fresh kernel started in its folder (``timeout``: seconds
    per cell, ``None`` or a negative value for none) and write it back with its outputs; returns the seconds taken.
    A cell that raises stops the run with nbclient's error, and the file is left unchanged."""
    import nbformat

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such notebook")
    nb = nbformat.read(path, as_version=4)
    timeout = None if timeout is None or timeout < 0 else int(timeout)
    client = _client_class()(nb, timeout=timeout, kernel_name=kernel_name, record_timing=False,
                             resources={"metadata": {"path": str(path.parent)}})
    start = time.perf_counter()
    client.execute()
    seconds = time.perf_counter() - start
    tmp = path.with_name(path.name + ".tmp")
    nbformat.write(nb, tmp)
    tmp.replace(path)
    return seconds


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m workbench.notebooks", description=__doc__.splitlines()[0])
    parser.add_argument("notebooks", nargs="+", help="the .ipynb files, run in the order given")
    parser.add_argument("--timeout", type=float, default=-1, help="seconds per cell; -1 (default): no limit")
    args = parser.parse_args(argv)
    for nb in args.notebooks:
        print(f"{nb}: running", flush=True)
        print(f"{nb}: {execute_notebook(nb, args.timeout):.0f} s", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
