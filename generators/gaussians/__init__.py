"""3D Gaussian splatting for facebench: a model, ``rasterize()`` (torch on CPU, gsplat on CUDA), ``fit()``."""

from .rasterize import choose_backend, rasterize

__all__ = ["rasterize", "choose_backend"]
