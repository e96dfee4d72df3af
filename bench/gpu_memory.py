"""How much GPU memory a benchmark candidate takes: the device's own count, around the candidate's set-up.

Both libraries keep freed blocks in a pool (CuPy's memory pools, torch's caching allocator) rather than
giving them back to the device, so after a candidate's set-up and warm-up steps the memory the process
holds includes the largest working set a step needed. Measured as

    device memory in use (cudaMemGetInfo: total - free) after the candidate's set-up and warm-up steps
    - the same before it, with every pool's free blocks given back first

it counts alike for ours (CuPy's default pool, a CUDA graph's own pool) and for torch (its caching
allocator, torch.compile's CUDA-graph pools), like torch.cuda.max_memory_reserved. Each candidate has its
own networks, optimiser state and batch, so they are in its figure. torch's own peak of allocated
bytes (torch.cuda.max_memory_allocated, reset before the set-up) is recorded beside it for torch.
"""
import refnet

MB = 1 << 20


class GPUMemory:
    """Snapshots of the device's memory in use; `torch` is the torch module when torch is loaded, else None."""

    def __init__(self, torch=None):
        self.cupy = refnet.backend.require_gpu()
        self.torch = torch if torch is not None and torch.cuda.is_available() else None

    def snapshot(self):
        """Give back every pool's free blocks, then -> {'device': bytes in use[, 'torch': bytes torch allocated]}."""
        self.cupy.cuda.Device().synchronize()
        self.cupy.get_default_memory_pool().free_all_blocks()
        snapshot = {}
        if self.torch is not None:
            self.torch.cuda.synchronize()
            self.torch.cuda.empty_cache()
            self.torch.cuda.reset_peak_memory_stats()
            snapshot["torch"] = self.torch.cuda.memory_allocated()
        free, total = self.cupy.cuda.runtime.memGetInfo()
        snapshot["device"] = total - free
        return snapshot

    def growth(self, before):
        """MB taken since the snapshot `before`: {'gpu_mb'[, 'torch_peak_allocated_mb']}."""
        self.cupy.cuda.Device().synchronize()
        free, total = self.cupy.cuda.runtime.memGetInfo()
        growth = {"gpu_mb": (total - free - before["device"]) / MB}
        if self.torch is not None:
            self.torch.cuda.synchronize()
            growth["torch_peak_allocated_mb"] = (self.torch.cuda.max_memory_allocated() - before["torch"]) / MB
        return growth


class NoGPUMemory:
    """On the CPU: no per-candidate figure (the process's peak RSS is in the summary line)."""

    def snapshot(self):
        return {}

    def growth(self, before):
        return {}
