"""A StaticStep captured once as a CUDA graph and replayed every step: one launch from the host per step.

    captured = CapturedStep(static_step)
    stats = captured(t, x, x_other)     # write the buffers (static_step.write), replay the whole step

The first call captures. Before the capture, run() goes once eagerly, so that every kernel is
compiled and every lazy allocation made outside the capture; its updates of the parameters and of
Adam's moments are undone (the flat buffers are copied and put back), so the run's numbers are the
same as without a graph. Everything the step allocates comes from a memory pool of its own, kept as
long as the graph: no memory the graph writes is handed to other code. The stats the graph writes
are 0-d device arrays, overwritten by each replay; they are fetched only when logged.

CuPy refuses cuBLAS, cuRAND and friends inside a capture, and nothing inside may wait for the host:
the step therefore runs on our own kernels (kernels.OPS: gemm.cu, im2col.cu; adam.cu), and its
per-step numbers come from buffers (static_step.py).

Several runs in one process (sweeps/together.py) capture on their own streams. While one captures, no
other thread may synchronize the device, which freeing device memory (cudaFree) and destroying a cuBLAS
handle do, nor load kernels for the first time: either would invalidate the capture. So a capture, with
its warm-up run, holds DEVICE_LOCK, and so does close(), which frees a run's graphs and their memory.
"""
import threading

import kernels
import refnet

DEVICE_LOCK = threading.Lock()   # a capture (with its warm-up) or a release of graph memory, one at a time
_RETIRED_POOLS = []              # pools of closed graphs whose memory is still in use somewhere (see close)


def current_capturable_stream(cupy):
    """The current stream where a caller chose one (`with stream:`), as several runs in one process do
    (sweeps/together.py: a stream each, so that their graphs run at the same time). On the default stream, a new
    blocking stream: work queued on the default stream (the next batch, a checkpoint's copies) is then
    ordered with the replays without events."""
    current = cupy.cuda.get_current_stream()
    if current.ptr != 0:
        return current
    return cupy.cuda.Stream(non_blocking=False)


class CapturedStep:
    def __init__(self, static_step, stream=None):
        """stream: the CUDA stream of every replay; the graphs of one run (a full and a short last batch, which
        share parameters and moments) must share it, so that their replays are ordered. By default the
        caller's current stream, unless that is the default stream, which cannot be captured."""
        import cupy   # here: only a GPU run needs CuPy
        self.cupy = cupy
        self.static = static_step
        if stream is None:
            stream = current_capturable_stream(cupy)
        self.stream = stream
        self.pool = cupy.cuda.MemoryPool()
        self.graph = self.stats = None

    def __call__(self, step, x, x_other=None):
        """Step `step`: write its buffers, launch the graph (capturing it first, the first time) -> the graph's
        stats (device arrays; reading them on the host waits for the replay)."""
        with self.stream:
            self.static.write(step, x, x_other)     # stream-ordered: after the previous replay
        if self.graph is None:
            self._capture()
        self.graph.launch(self.stream)
        return self.static.stats_for_log(self.stats)

    def close(self):
        """Wait for the replays, then drop the graph and free its memory pool, under DEVICE_LOCK: another
        thread's capture must not see the device synchronized.

        Arrays of the pool may outlive the graph (the stats a raised exception's frame still holds); were the pool
        to die with them in use, their memory would be freed with cudaFree whenever they go, outside the lock. So
        a closed pool stays in _RETIRED_POOLS until it holds nothing, emptied at each close under the lock."""
        self.stream.synchronize()
        with DEVICE_LOCK:
            self.graph = self.stats = None
            _RETIRED_POOLS.append(self.pool)
            for pool in _RETIRED_POOLS:
                pool.free_all_blocks()
            _RETIRED_POOLS[:] = [pool for pool in _RETIRED_POOLS if pool.used_bytes()]

    def _capture(self):
        cupy, networks = self.cupy, self.static.networks.values()
        with DEVICE_LOCK, cupy.cuda.using_allocator(self.pool.malloc), self.stream, refnet.use_ops(kernels.OPS):
            saved = [(n.params.copy(), n.optimizer.flat_m.copy(), n.optimizer.flat_v.copy()) for n in networks]
            self.static.run()                       # warm-up: compiles and allocates outside the capture
            for n, (params, m, v) in zip(networks, saved):
                n.params[...], n.optimizer.flat_m[...], n.optimizer.flat_v[...] = params, m, v
            self.stream.synchronize()
            self.stream.begin_capture()
            try:
                self.stats = self.static.run()
            except BaseException:
                try:
                    self.stream.end_capture()       # leave capture mode (it fails too: the capture is invalid)
                except Exception:
                    pass
                raise                               # the first error is the one that explains
            self.graph = self.stream.end_capture()
