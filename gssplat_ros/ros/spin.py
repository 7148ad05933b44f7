"""Spin rclpy nodes on one background thread that can be stopped before the nodes are destroyed.

Usage:
    spinner = BackgroundSpinner(ctx, node, peer)   # starts spinning
    ...
    spinner.stop()                                 # joins the thread; then destroy nodes, shut down ctx

One executor thread, as `gssplat_node` runs: its callbacks only convert and enqueue, and inference has
its own worker. `executor.spin()` in a daemon thread cannot be stopped cleanly, and destroying nodes
while it waits can abort the process, hence a loop of `spin_once` with a stop flag.
"""

from __future__ import annotations

import threading


class BackgroundSpinner:
    def __init__(self, context, *nodes, period_s: float = 0.05):
        from rclpy.executors import SingleThreadedExecutor

        self.executor = SingleThreadedExecutor(context=context)
        for node in nodes:
            self.executor.add_node(node)
        self._period_s = period_s
        self._running = threading.Event()
        self._running.set()
        self._thread = threading.Thread(target=self._spin, daemon=True, name="ros-spin")
        self._thread.start()

    def _spin(self) -> None:
        while self._running.is_set():
            self.executor.spin_once(timeout_sec=self._period_s)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Stop spinning and shut the executor down (idempotent)."""
        if self._running.is_set():
            self._running.clear()
            self._thread.join(timeout=timeout_s)
            self.executor.shutdown()
