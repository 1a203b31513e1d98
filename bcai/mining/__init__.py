"""bcai.mining — PoUW miners (compute layer): the transcript of noisy int8
products on CPU threads (`bcai_native`, Rust + rayon) or on a GPU (CUDA
kernel in native/cuda/pouw.cu through CuPy). The rules and the verifier are
in `bcai.pouw`; every miner produces the reference's bytes exactly."""

from bcai.mining._miner import MINERS, CpuMiner, Miner, MiningStats, mine, new_miner, sealer

__all__ = ["MINERS", "CpuMiner", "Miner", "MiningStats", "mine", "new_miner", "sealer"]
