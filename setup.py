from setuptools import find_packages, setup

setup(
    name="jointvae",
    version="0.1.0",
    description="JointVAE and FactorVAE with hand-written backward passes on NumPy and CuPy (no autograd)",
    long_description=open("README.md", encoding="utf-8").read(),
    long_description_content_type="text/markdown",
    license="MIT",
    python_requires=">=3.10",
    packages=find_packages(include=["refnet", "refnet.*", "kernels", "kernels.*", "jointvae", "jointvae.*",
                                    "verify", "verify.*"]),
    package_data={"kernels": ["*.cu", "*.h"]},
    # threadpoolctl: the BLAS thread count chosen at run time (a busy machine must not make a run collapse).
    install_requires=["numpy>=1.23", "imageio>=2.20", "threadpoolctl>=3.1"],
    extras_require={
        "gpu": ["cupy-cuda12x>=13"],
        # NVRTC (CUDA's runtime compiler, no GPU needed) lets CI compile every kernel in kernels/.
        "test": ["pytest>=7", "hypothesis>=6.80", "nvidia-cuda-nvrtc-cu12>=12.0; sys_platform == 'linux'"],
        "plots": ["matplotlib>=3.5"],   # only for kl_per_unit.png and sweep collect's collect.png and collect-scatter.png
        "cluster": ["submitit>=1.5"],   # sweeps on SLURM (jointvae/sweeps/slurm.py)
    },
)
